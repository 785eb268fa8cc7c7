"""Persistence of the Keras L1 models: ``<out>/<name>-<quantization>/{model.keras, meta.json}``.

A model directory holds

* ``model.keras``: the *deployed* model (its output is what firmware computes; see
  :data:`l1ad.models.keras.architectures.POSTPROCESSING`),
* ``aux.keras`` (VAE only): the encoder's ``[mu, logvar]`` for the offline KL score,
* ``meta.json``: the sidecar (model, quantization, framework, config, seed, data hash, metrics,
  input/output types, versions),
* ``checkpoints/``: the last full training state (``last.keras``, ``state.json``) and the best
  weights, used by ``resume``.

Every file is written atomically (temporary file in the same folder, then ``os.replace``).

Style guard: HGQ2's QKeras shim rewrites the native HGQ2 layer classes when imported, so
:func:`load_model` refuses a ``qkeras`` model in a process that used native HGQ2 and vice versa
(:func:`l1ad.models.registry.score` scores each Keras model in a fresh process).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras

from l1ad.core.files import atomic_path
from l1ad.models import sidecar

logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
AUX_FILE = "aux.keras"
META_FILE = sidecar.META_FILE
CHECKPOINT_DIR = "checkpoints"


def save_keras(model: keras.Model, path: str | Path) -> None:
    """``model.save`` to ``path`` (a ``.keras`` file) atomically."""
    with atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)


def save_weights(model: keras.Model, path: str | Path) -> None:
    """``model.save_weights`` to ``path`` (a ``.weights.h5`` file) atomically."""
    with atomic_path(path, suffix=".weights.h5") as tmp:
        model.save_weights(tmp)


def read_meta(model_dir: str | Path) -> dict[str, Any]:
    """The ``meta.json`` sidecar of a Keras model directory (:func:`l1ad.models.sidecar.read_meta`)."""
    return sidecar.read_meta(model_dir, framework="keras")


def prepare_style(quantization: str) -> None:
    """Register the custom classes of ``quantization`` and check that this process can use them."""
    import l1ad.models.keras.layers  # noqa: F401  (registers l1ad custom objects)

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
