"""Layer factories per quantization style: every architecture is written once against :class:`Style`.

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
"""

from __future__ import annotations

from typing import Any, Protocol

import keras
import numpy as np

from l1ad.core.fixed_point import FixedPoint
from l1ad.quantization.score_path import set_fixed_kernel

STYLES = ("hgq", "qkeras", "float")


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

    def sq_sum(
        self, a: Any, name: str, weights: np.ndarray | None = None, sq_type: FixedPoint | None = None
    ) -> Any:
        """(N, 1) ``sum(weights * a**2)`` (weights 0/1, default all ones) computed exactly; each square in
        ``sq_type`` (default :data:`~l1ad.quantization.score_path.SCORE_SQ_TYPE`, the squared-error type)."""
        ...

    def callbacks(self, x: np.ndarray | None = None) -> list: ...

    def ebops(self, model: keras.Model, x: np.ndarray | None = None) -> int | None: ...

    def calibrate_ranges(self, model: keras.Model, x: np.ndarray) -> dict | None:
        """After training: widen learned saturating ranges to hold background ``x`` (``None``: nothing learned)."""
        ...


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

    def sq_sum(
        self, a: Any, name: str, weights: np.ndarray | None = None, sq_type: FixedPoint | None = None
    ) -> Any:
        return self._ones(keras.layers.Multiply(name=f"{name}_sq")([a, a]), name, weights)

    def callbacks(self, x: np.ndarray | None = None) -> list:
        return []

    def ebops(self, model: keras.Model, x: np.ndarray | None = None) -> int | None:
        return None

    def calibrate_ranges(self, model: keras.Model, x: np.ndarray) -> dict | None:
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
    raise ValueError(f"unknown quantization {quantization!r}; choose one of {STYLES}")
