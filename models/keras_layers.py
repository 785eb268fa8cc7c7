"""Layer factories per quantization style, and the custom Keras objects the L1 models share.

Every architecture in :mod:`l1ad.models.keras_architectures` is written once against the small
:class:`Style` interface; a style decides how each building block is realised:

==============  ===================  ==============================  ===============================
block           ``float``            ``hgq`` (HGQ2 native)           ``qkeras`` (HGQ2's QKeras shim)
==============  ===================  ==============================  ===============================
input           identity             fixed per-feature ``Quantizer``  ``QActivation(quantized_bits)``
dense           ``Dense``            ``QDense`` (learned bits)       ``QDense`` + ``QActivation``
score           Subtract/Multiply    ``QSubtract``/``QMultiply``     same, shim classes
                + Dense(1) ones      + fixed ``QDense(1)`` of ones
==============  ===================  ==============================  ===============================

The quantized styles live in :mod:`l1ad.quantization.hgq_style` and
:mod:`l1ad.quantization.qkeras_style` (imported lazily: importing the QKeras shim rewrites HGQ2's
layer classes process-wide, see there).

Custom objects (registered under the ``l1ad`` package so saved models reload): the losses
``masked_mse`` and ``score_mean``, the VAE layers :class:`KLDivergence` and :class:`Sampling`.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import keras
import numpy as np
from keras import ops

from l1ad.events import encoding, schema
from l1ad.quantization.fixed_point import FixedPoint

logger = logging.getLogger(__name__)

# Fixed types of the in-model score path (all styles but float). Keras computes in float32, so every
# intermediate must fit 24 significant bits for the model to equal the firmware bit for bit:
#: reconstruction / VAE mean: one common grid holding every input type (fixed<13,6>).
RECON_TYPE = FixedPoint(k=1, i=5, f=7, overflow="SAT", rounding="RND")
#: x - reconstruction, saturated at +-16 input units (1 TeV in pT): fixed<12,5>.
SCORE_DIFF_TYPE = FixedPoint(k=1, i=4, f=7, overflow="SAT", rounding="RND")
#: squared error per input (exact square has 22 bits, truncated to f=10): ufixed<18,8>.
SCORE_SQ_TYPE = FixedPoint(k=0, i=8, f=10, overflow="SAT", rounding="TRN")
#: the score: the exact sum of 57 squared errors, ufixed<24,14> (< 57 * 256).
SCORE_TYPE = FixedPoint(k=0, i=14, f=10)

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
    """(N, 19) object mask (or an (N, 57) one) -> (N, 57) float64 per-input mask."""
    mask = np.asarray(mask)
    if mask.shape[1] == schema.N_OBJECTS:
        mask = np.repeat(mask, 3, axis=1)
    return mask.astype(np.float64)


#: Fixed weights of the compact autoencoder's error sum: pT errors only. Angles are (nearly) unpredictable
#: for an autoencoder and, weighted in, they drown the pT/occupancy pattern that carries the anomaly;
#: zero weights also remove 38 of the 57 squarers from the firmware.
PT_ERROR_WEIGHTS = np.tile(np.array([1.0, 0.0, 0.0], dtype=np.float32), schema.N_OBJECTS)


def set_fixed_kernel(layer: Any, output: Any, weights: np.ndarray | None) -> Any:
    """Overwrite the (non-trainable, all-ones) kernel of a fixed sum layer with ``weights`` (0/1 values)."""
    if weights is not None:
        kernel = next(v for v in layer.weights if v.path.endswith("kernel"))
        kernel.assign(np.asarray(weights, dtype="float32").reshape(tuple(kernel.shape)))
    return output


def masked_mse_target(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The ``y_true`` of :func:`masked_mse`: ``[x, w]`` (N, 114) with the normalised per-input weights.

    ``w = mask * FEATURE_WEIGHTS / n_present_inputs``, so ``sum(w * (x - r)**2)`` is the masked MSE.
    """
    m = mask57(mask)
    w = m * FEATURE_WEIGHTS / np.maximum(m.sum(axis=1, keepdims=True), 1.0)
    return np.concatenate([x, w], axis=1).astype(np.float32)


@keras.saving.register_keras_serializable(package="l1ad")
def masked_mse(y_true: Any, y_pred: Any) -> Any:
    """Masked, weighted MSE; ``y_true = [x, w]`` from :func:`masked_mse_target`."""
    x, w = y_true[:, : schema.N_INPUTS], y_true[:, schema.N_INPUTS :]
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


class Style(Protocol):
    """The building blocks an architecture needs; one implementation per quantization style."""

    name: str

    def input(self, x: Any) -> Any: ...

    def dense(self, x: Any, units: int, name: str, relu: bool = True, batchnorm: bool = False) -> Any: ...

    def output_dense(self, x: Any, units: int, name: str) -> Any:
        """A linear layer whose output is quantized (reconstruction, VAE mean): feeds the score."""
        ...

    def sq_err_sum(self, a: Any, b: Any, name: str, weights: np.ndarray | None = None) -> Any:
        """(N, 1) ``sum(weights * (a - b)**2)`` computed exactly from the (quantized) operands."""
        ...

    def sq_sum(self, a: Any, name: str, weights: np.ndarray | None = None) -> Any:
        """(N, 1) ``sum(weights * a**2)`` (weights 0/1, default all ones) computed exactly."""
        ...

    def callbacks(self) -> list: ...

    def ebops(self, model: keras.Model, x: np.ndarray | None = None) -> int | None: ...


class FloatStyle:
    """Plain Keras 3 layers: the float twins of the quantized models."""

    name = "float"

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    def input(self, x: Any) -> Any:
        return x

    def dense(self, x: Any, units: int, name: str, relu: bool = True, batchnorm: bool = False) -> Any:
        x = keras.layers.Dense(units, name=name)(x)
        if batchnorm:
            x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
        return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x

    def output_dense(self, x: Any, units: int, name: str) -> Any:
        return keras.layers.Dense(units, name=name)(x)

    def _ones(self, x: Any, name: str, weights: np.ndarray | None = None) -> Any:
        layer = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones", trainable=False, name=name)
        return set_fixed_kernel(layer, layer(x), weights)

    def sq_err_sum(self, a: Any, b: Any, name: str, weights: np.ndarray | None = None) -> Any:
        d = keras.layers.Subtract(name=f"{name}_diff")([a, b])
        d2 = keras.layers.Multiply(name=f"{name}_sq")([d, d])
        return self._ones(d2, name, weights)

    def sq_sum(self, a: Any, name: str, weights: np.ndarray | None = None) -> Any:
        return self._ones(keras.layers.Multiply(name=f"{name}_sq")([a, a]), name, weights)

    def callbacks(self) -> list:
        return []

    def ebops(self, model: keras.Model, x: np.ndarray | None = None) -> int | None:
        return None


def get_style(quantization: str, cfg: Any) -> Style:
    """The :class:`Style` of ``quantization`` ("float", "hgq", "qkeras") configured by ``cfg``."""
    if quantization == "float":
        return FloatStyle(cfg)
    if quantization == "hgq":
        from l1ad.quantization.hgq_style import HGQStyle

        return HGQStyle(cfg)
    if quantization == "qkeras":
        from l1ad.quantization.qkeras_style import QKerasStyle

        return QKerasStyle(cfg)
    raise ValueError(f"unknown quantization {quantization!r}; choose one of ('hgq', 'qkeras', 'float')")
