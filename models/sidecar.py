"""The ``meta.json`` sidecar of every trained model directory: the one reader and writer.

Every model directory holds ``meta.json`` naming at least ``model``, ``quantization`` and
``framework`` (``keras``, ``torch`` or ``sklearn`` for models l1ad trained; ``hgq2`` for a plain HGQ2 Keras
model brought to the firmware flow from elsewhere) beside training metadata (config, seed, data
hash, metrics, tool versions). :mod:`l1ad.models.registry` decides from it how to load and score
the model; the trainers write it through :func:`write_meta`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from l1ad.core.files import atomic_write_text

META_FILE = "meta.json"
FRAMEWORKS = ("keras", "torch", "sklearn", "hgq2")
REQUIRED = ("model", "quantization", "framework")


def read_meta(path: str | Path, framework: str | None = None) -> dict[str, Any]:
    """The validated ``meta.json`` of model directory ``path`` (optionally of one ``framework``)."""
    meta_path = Path(path) / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path}: no {META_FILE}; not a trained l1ad model directory")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{meta_path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_path}: must hold a JSON object")
    missing = sorted(set(REQUIRED) - set(meta))
    if missing:
        raise ValueError(f"{meta_path}: missing keys {missing}")
    if meta["framework"] not in FRAMEWORKS:
        raise ValueError(
            f"{meta_path}: unknown framework {meta['framework']!r} (known: {', '.join(FRAMEWORKS)})"
        )
    if framework is not None and meta["framework"] != framework:
        raise ValueError(f"{meta_path}: framework is {meta['framework']!r}, not {framework!r}")
    return meta


def write_meta(path: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``meta.json`` into model directory ``path`` atomically (sorted keys)."""
    missing = sorted(set(REQUIRED) - set(meta))
    if missing:
        raise ValueError(f"meta.json for {path}: missing keys {missing}")
    return atomic_write_text(Path(path) / META_FILE, json.dumps(meta, indent=1, sort_keys=True) + "\n")
