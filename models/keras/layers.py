"""The custom Keras objects the L1 models share, and the masked-MSE weights.

Custom objects (registered under the ``l1ad`` package so saved models reload): the losses
``masked_mse`` and ``score_mean``, the VAE layers :class:`KLDivergence` and :class:`Sampling`.
The layer building blocks of each quantization style are in :mod:`l1ad.quantization.styles`;
the fixed types of the score path in :mod:`l1ad.quantization.score_path`.
"""

from __future__ import annotations

import logging
from typing import Any

import keras
import numpy as np
from keras import ops

from l1ad.events import encoding, schema

logger = logging.getLogger(__name__)

#: Per-input squared-error weights of the masked MSE: pT errors in input units (64 GeV); eta and phi
#: errors divided by their acceptance half-range (eta: slot |eta| max, phi: pi) in input units.
#: MET eta is always 0 and gets weight 0.
_eta_half = schema.SLOT_ETA_MAX / encoding.ETA_SCALE.unit
_phi_half = np.full(schema.N_OBJECTS, np.pi / encoding.PHI_SCALE.unit)
FEATURE_WEIGHTS = np.stack(
    [
        np.ones(schema.N_OBJECTS),
        np.divide(1.0, _eta_half**2, out=np.zeros_like(_eta_half), where=_eta_half > 0),
        1.0 / _phi_half**2,
    ],
    axis=1,
).reshape(schema.N_INPUTS)


def mask57(mask: np.ndarray) -> np.ndarray:
    """(N, 19) object mask (or an (N, n) per-input one) -> (N, 57) (or (N, n)) float64 per-input mask."""
    mask = np.asarray(mask)
    if mask.shape[1] == schema.N_OBJECTS:
        mask = np.repeat(mask, 3, axis=1)
    return mask.astype(np.float64)


#: Fixed weights of the compact autoencoder's error sum: pT errors only. Angles are (nearly) unpredictable
#: for an autoencoder and, weighted in, they drown the pT/occupancy pattern that carries the anomaly;
#: zero weights also remove 38 of the 57 squarers from the firmware.
PT_ERROR_WEIGHTS = np.tile(np.array([1.0, 0.0, 0.0], dtype=np.float32), schema.N_OBJECTS)


def masked_mse_target(x: np.ndarray, mask: np.ndarray, weights: np.ndarray = FEATURE_WEIGHTS) -> np.ndarray:
    """The ``y_true`` of :func:`masked_mse`: ``[x, w]`` (N, 2n) with the normalised per-input weights.

    ``w = mask * weights / n_present_inputs``, so ``sum(w * (x - r)**2)`` is the masked MSE.
    """
    m = mask57(mask)
    w = m * weights / np.maximum(m.sum(axis=1, keepdims=True), 1.0)
    return np.concatenate([x, w], axis=1).astype(np.float32)


@keras.saving.register_keras_serializable(package="l1ad")
def masked_mse(y_true: Any, y_pred: Any) -> Any:
    """Masked, weighted MSE; ``y_true = [x, w]`` from :func:`masked_mse_target`."""
    n = y_pred.shape[-1]  # 57 for the L1 models, the representation's size for the float references
    x, w = y_true[:, :n], y_true[:, n:]
    return ops.sum(w * ops.square(x - y_pred), axis=-1)


@keras.saving.register_keras_serializable(package="l1ad")
def score_mean(y_true: Any, y_pred: Any) -> Any:
    """Loss of models that output their own score: the score itself (``y_true`` is ignored)."""
    return ops.mean(y_pred, axis=-1) + 0.0 * ops.mean(y_true, axis=-1)


@keras.saving.register_keras_serializable(package="l1ad")
class KLDivergence(keras.layers.Layer):
    """Identity on ``[mu, logvar]`` that adds ``weight * KL(N(mu, var) || N(0, 1))`` (batch mean) as a loss."""

    def __init__(self, weight: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weight = float(weight)

    def call(self, inputs: Any) -> Any:
        mu, logvar = inputs
        kl = -0.5 * ops.sum(1.0 + logvar - ops.square(mu) - ops.exp(logvar), axis=-1)
        self.add_loss(self.weight * ops.mean(kl))
        return mu, logvar

    def compute_output_shape(self, input_shape: Any) -> Any:
        return tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "weight": self.weight}


@keras.saving.register_keras_serializable(package="l1ad")
class Sampling(keras.layers.Layer):
    """Reparameterisation ``z = mu + exp(logvar / 2) * eps`` with a seeded generator."""

    def __init__(self, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def call(self, inputs: Any) -> Any:
        mu, logvar = inputs
        eps = keras.random.normal(ops.shape(mu), seed=self.seed_generator)
        return mu + ops.exp(0.5 * logvar) * eps

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape[0]

    def get_config(self) -> dict:
        return {**super().get_config(), "seed": self.seed}
