"""The description of a generated project: ``metadata.json`` beside every HLS project.

It names the target and its configuration, the model (file hash for staleness, weights hash for
reproducibility, model name, quantization, training-data hash), the input and output types, part,
backend, clock, strategy, budgets, trigger thresholds, the traced layers, what the cost estimate
needs from each layer (``estimate_layers``) and the tool versions. No timestamps: the same model and
target give the same bytes. Every later stage (emulation, reports) reads a project through
:func:`read_metadata`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.core.files import sha256_file
from l1ad.core.fixed_point import FixedPoint
from l1ad.core.versions import FIRMWARE_TOOLS, tool_versions
from l1ad.hls.target import FirmwareTarget
from l1ad.hls.thresholds import Threshold

METADATA_FILE = "metadata.json"


def weights_sha256(model: Any) -> str:
    """sha256 of a Keras model's content: ``get_weights()`` arrays (dtype, shape, bytes, in order)
    and the model's config JSON (``sort_keys``).

    Unlike ``model_sha256`` (the model file, a zip with timestamps: saving the same model twice
    changes it), this identifies the model for reproducibility: same weights and architecture, same hash.
    """
    h = hashlib.sha256()
    for w in model.get_weights():
        a = np.ascontiguousarray(w)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    h.update(json.dumps(model.get_config(), sort_keys=True).encode())
    return h.hexdigest()


def make_metadata(
    target: FirmwareTarget,
    model_file: Path,
    model: Any,
    model_meta: dict[str, Any],
    io: dict[str, Any],
    layers: list[dict[str, Any]],
    trigger: tuple[Threshold, ...],
    tb_events: int,
    stamp: str,
) -> dict[str, Any]:
    """The project's ``metadata.json`` content: hashes, precisions, part, clock, budgets, versions.

    ``weights_sha256`` (:func:`weights_sha256`) identifies the model for reproducibility;
    ``model_sha256`` identifies the exact model file the project was built from (the staleness check
    of ``l1ad firmware emulate``): re-saving an unchanged model changes it, not ``weights_sha256``.
    """
    return {
        "target": target.name,
        "target_config": target.to_dict(),
        "project_name": target.project_name,
        "namespace": target.namespace,
        "model_file": model_file.name,
        "model_sha256": sha256_file(model_file),
        "weights_sha256": weights_sha256(model),
        "model": model_meta.get("model"),
        "quantization": model_meta.get("quantization"),
        "data_sha256": model_meta.get("data_sha256"),
        "input": io["input"],
        "output": io["output"],
        "part": target.part,
        "backend": target.backend,
        "clock_period_ns": target.clock_period_ns,
        "strategy": target.strategy,
        "reuse_factor": target.reuse_factor,
        "io_type": target.io_type,
        "budgets": {
            "ii_ns": target.ii_budget_ns,
            "latency_ns": target.latency_budget_ns,
            "resource_fraction": target.resource_budget_fraction,
            "require_zero_dsp": target.require_zero_dsp,
        },
        "thresholds": [t.to_dict() for t in trigger],
        "thresholds_header": f"firmware/{target.namespace}_thresholds.h" if trigger else None,
        "trace_layers": layers,
        "tb_events": tb_events,
        "lib_stamp": stamp,
        "versions": tool_versions(FIRMWARE_TOOLS),
    }


def read_metadata(project_dir: str | Path) -> dict[str, Any]:
    path = Path(project_dir) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run `l1ad firmware build` first")
    return json.loads(path.read_text())


def input_fixed_point(meta: dict[str, Any]) -> FixedPoint:
    """The firmware input type of a project (all modes) as a :class:`FixedPoint`."""
    return FixedPoint.parse(meta["input"]["cpp"])
