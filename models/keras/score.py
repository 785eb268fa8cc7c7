"""Anomaly scores of trained Keras L1 models (higher = more anomalous), in-process or in a subprocess.

* ``ae_ref``: the deployed model outputs the reconstruction; the score is the masked MSE of
  :func:`ae_ref_score`, computed identically (numpy, float64) for float, quantized and C-sim outputs.
  The mask is ``schema.input_mask(particles)``: the object valid bits (class != 0, i.e. the object
  exists in the L1 record) for each of its three inputs, MET's always-zero eta excluded, so padded
  slots never contribute.
* ``ae_compact``, ``vae``, ``student``: the deployed model outputs the score itself (N, 1).
* ``vae`` offline: :func:`vae_kl_score` on the encoder's ``[mu, logvar]`` (``variant="kl"``).

:func:`score_in_subprocess` scores in a fresh Python process (``multiprocessing`` spawn), needed
when one process must score both native-HGQ2 and QKeras-style models.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from l1ad.events import encoding, schema
from l1ad.models.keras import storage as keras_io
from l1ad.models.keras.model_inputs import load_standardizer, model_inputs

logger = logging.getLogger(__name__)


def ae_ref_score(
    x: np.ndarray, reconstruction: np.ndarray, mask: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """Masked, weighted MSE per event (float64).

    ``x``, ``reconstruction``: (N, 57) encoded inputs and model output; ``mask``: (N, 19) object valid
    bits (``schema.present``) or an (N, 57) per-input mask. Weights: :data:`l1ad.models.keras.layers.FEATURE_WEIGHTS`
    (eta/phi errors scaled by their ranges) unless given (the float references: their
    :class:`~l1ad.models.keras.model_inputs.ModelInputs` weights); normalised by the number of real inputs.
    """
    from l1ad.models.keras.layers import FEATURE_WEIGHTS, mask57

    w = FEATURE_WEIGHTS if weights is None else np.asarray(weights, dtype=np.float64)
    m = mask57(mask)
    d = np.asarray(x, dtype=np.float64) - np.asarray(reconstruction, dtype=np.float64)
    return (m * w * d**2).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)


def vae_kl_score(mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per event (float64): the offline VAE score."""
    mu = np.asarray(mu, dtype=np.float64)
    logvar = np.asarray(logvar, dtype=np.float64)
    return -0.5 * np.sum(1.0 + logvar - mu**2 - np.exp(logvar), axis=1)


def predict(model: Any, x: np.ndarray, batch_size: int = 32768) -> Any:
    """``model.predict`` without the progress bar."""
    return model.predict(x, batch_size=batch_size, verbose=0)


def score(
    model_dir: str | Path, particles: np.ndarray, batch_size: int = 32768, variant: str = "deployed"
) -> np.ndarray:
    """(N,) float64 anomaly scores of ``particles`` (N, 19, 4) under the model in ``model_dir``.

    ``variant="kl"`` (VAE only): the offline KL score instead of the deployed ``sum(mu**2)``.
    """
    if variant == "kl":
        if keras_io.read_meta(model_dir)["model"] != "vae":
            raise ValueError("variant='kl' exists only for the vae")
        x = encoding.encode(np.asarray(particles))
        mu, logvar = predict(keras_io.load_model(model_dir, which="aux"), x, batch_size)
        return vae_kl_score(mu, logvar)
    if variant != "deployed":
        raise ValueError(f"unknown variant {variant!r}; use 'deployed' or 'kl'")
    return KerasScorer(model_dir, batch_size)(particles)


def postprocess(name: str, output: np.ndarray, particles: np.ndarray) -> np.ndarray:
    """Deployed-model (or C-sim) output -> (N,) float64 score; the same for every backend."""
    output = np.asarray(output, dtype=np.float64)
    if name == "ae_ref":
        x = encoding.encode(np.asarray(particles))
        return ae_ref_score(x, output.reshape(len(x), schema.N_INPUTS), schema.input_mask(particles))
    return output.reshape(len(output), -1)[:, 0]


class KerasScorer:
    """A Keras model directory loaded once and scoring many batches (in this process)."""

    def __init__(self, model_dir: str | Path, batch_size: int = 32768) -> None:
        self.meta = keras_io.read_meta(model_dir)
        self.model = keras_io.load_model(model_dir)
        self.batch_size = batch_size
        self.standardizer = load_standardizer(model_dir)  # float references only

    def __call__(self, particles: np.ndarray) -> np.ndarray:
        if self.standardizer is None:
            out = np.asarray(predict(self.model, encoding.encode(np.asarray(particles)), self.batch_size))
            return postprocess(self.meta["model"], out, particles)
        inputs = model_inputs(particles, self.standardizer)
        out = np.asarray(predict(self.model, inputs.x, self.batch_size), dtype=np.float64)
        return ae_ref_score(inputs.x, out, inputs.mask, inputs.weights)


_WORKER: KerasScorer | None = None


def _worker_init(model_dir: str) -> None:
    global _WORKER
    _WORKER = KerasScorer(model_dir)


def _worker_score(particles: np.ndarray) -> np.ndarray:
    assert _WORKER is not None, "worker not initialized"
    return _WORKER(particles)


class IsolatedKerasScorer:
    """:class:`KerasScorer` in a long-lived worker process of its own (``spawn``): a quantized model
    keeps its quantization style's layers out of the calling process, loaded once."""

    def __init__(self, model_dir: str | Path) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(
            1, mp_context=ctx, initializer=_worker_init, initargs=(str(model_dir),)
        )

    def __call__(self, particles: np.ndarray) -> np.ndarray:
        return self.pool.submit(_worker_score, np.asarray(particles, dtype=np.float32)).result()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class FirmwareModel(NamedTuple):
    """The Keras model whose output firmware computes, and what numpy does with that output."""

    model: Any
    postprocessing: str
    meta: dict


def keras_model_for_firmware(model_dir: str | Path) -> FirmwareModel:
    """The deployed model of ``model_dir`` (ae_ref: the reconstruction model) + its post-processing."""
    from l1ad.models.keras.architectures import POSTPROCESSING

    meta = keras_io.read_meta(model_dir)
    return FirmwareModel(keras_io.load_model(model_dir), POSTPROCESSING[meta["model"]], meta)


def _score_files(model_dir: str, inp: str, out: str, batch_size: int, variant: str) -> None:
    """Child-process side of :func:`score_in_subprocess`: particles from ``inp`` (.npy), scores to ``out``."""
    np.save(out, score(model_dir, np.load(inp), batch_size, variant))


def score_in_subprocess(
    model_dir: str | Path,
    particles: np.ndarray,
    batch_size: int = 32768,
    variant: str = "deployed",
    timeout: float | None = None,
) -> np.ndarray:
    """:func:`score` run in a fresh Python process (keeps HGQ2 and its QKeras shim apart).

    The process is started by ``multiprocessing``'s ``spawn`` method (a new interpreter, nothing
    inherited); events and scores travel as temporary ``.npy`` files, and an exception in the child
    is raised here.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with tempfile.TemporaryDirectory(prefix="l1ad_score_") as tmp:
        inp, out = Path(tmp) / "particles.npy", Path(tmp) / "scores.npy"
        np.save(inp, np.asarray(particles, dtype=np.float32))
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            job = pool.submit(_score_files, str(model_dir), str(inp), str(out), batch_size, variant)
            try:
                job.result(timeout=timeout)
            except Exception as exc:
                raise RuntimeError(f"scoring {model_dir} in a subprocess failed: {exc}") from exc
        return np.load(out)
