"""Persistence of the Keras L1 models: ``<out>/<name>-<quantization>/{model.keras, meta.json}``.

A model directory holds

* ``model.keras``: the *deployed* model (its output is what firmware computes; see
  :data:`l1ad.models.keras_architectures.POSTPROCESSING`),
* ``aux.keras`` (VAE only): the encoder's ``[mu, logvar]`` for the offline KL score,
* ``meta.json``: the sidecar (model, quantization, framework, config, seed, data hash, metrics,
  input/output types, versions),
* ``checkpoints/``: the last full training state (``last.keras``, ``state.json``) and the best
  weights, used by ``resume``.

Every file is written atomically (temporary file in the same folder, then ``os.replace``).

Style guard: HGQ2's QKeras shim rewrites the native HGQ2 layer classes when imported, so
:func:`load_model` refuses a ``qkeras`` model in a process that used native HGQ2 and vice versa
(use :func:`l1ad.models.keras_score.score_in_subprocess`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import keras

from l1ad.events.io import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
AUX_FILE = "aux.keras"
META_FILE = "meta.json"
CHECKPOINT_DIR = "checkpoints"


def model_dir_name(name: str, quantization: str) -> str:
    return f"{name}-{quantization}"


def save_keras(model: keras.Model, path: str | Path) -> None:
    """``model.save`` to ``path`` (a ``.keras`` file) atomically."""
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


def save_weights(model: keras.Model, path: str | Path) -> None:
    """``model.save_weights`` to ``path`` (a ``.weights.h5`` file) atomically."""
    with atomic_path(path, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)


def write_meta(model_dir: str | Path, meta: dict[str, Any]) -> None:
    atomic_write_text(Path(model_dir) / META_FILE, json.dumps(meta, indent=1, sort_keys=True) + "\n")


def read_meta(model_dir: str | Path) -> dict[str, Any]:
    """The ``meta.json`` sidecar of a model directory."""
    path = Path(model_dir) / META_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: no {META_FILE}; not a trained l1ad Keras model directory")
    meta = json.loads(path.read_text())
    if meta.get("framework") != "keras":
        raise ValueError(f"{path}: framework is {meta.get('framework')!r}, not 'keras'")
    return meta


def prepare_style(quantization: str) -> None:
    """Register the custom classes of ``quantization`` and check that this process can use them."""
    import l1ad.models.keras_layers  # noqa: F401  (registers l1ad custom objects)

    if quantization == "hgq":
        from l1ad.quantization.hgq_style import mark_native_used

        mark_native_used()
        import hgq  # noqa: F401
    elif quantization == "qkeras":
        from l1ad.quantization.qkeras_style import import_shim

        import_shim()
    elif quantization != "float":
        raise ValueError(f"unknown quantization {quantization!r}")


def load_keras(path: str | Path, quantization: str, compile: bool = False) -> keras.Model:
    """Load a ``.keras`` file of the given style (after :func:`prepare_style`)."""
    prepare_style(quantization)
    return keras.saving.load_model(Path(path), compile=compile, safe_mode=True)


def load_model(model_dir: str | Path, which: str = "deployed") -> keras.Model:
    """The deployed Keras model of a model directory (``which="aux"``: the VAE's ``[mu, logvar]`` model).

    Raises RuntimeError when the model's quantization style cannot be used in this process.
    """
    meta = read_meta(model_dir)
    fname = {"deployed": MODEL_FILE, "aux": AUX_FILE}[which]
    path = Path(model_dir) / fname
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return load_keras(path, meta["quantization"])
