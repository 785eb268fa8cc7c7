"""QKeras-style quantization (fixed widths) through HGQ2's QKeras shim (``qkeras.qlayers``).

The old ``qkeras`` package is not used: HGQ2 ships ``qkeras.qlayers`` / ``qkeras.quantizers``, which
rebuild QKeras's ``QDense``/``QActivation``/``quantized_bits``/``quantized_relu`` on HGQ2 layers.

**Process isolation.** Importing ``qkeras.qlayers`` rewrites HGQ2's native layer classes *in place*
(native layers lose input quantizers and EBOPs, native ``.keras`` files stop loading). The shim is
therefore imported only inside this module's functions, :func:`check_qkeras_ok` refuses when native
HGQ2 was already used in the process, and callers that mix styles score in a subprocess.

**Bit convention.** Configs use QKeras's convention: ``bits`` is the total width *including* the sign
bit, ``integer`` excludes it (:meth:`FixedPoint.from_qkeras`). The shim's ``quantized_bits(b, i, k)``
counts ``b`` *without* the sign (KBI: ``f = b - i``), so :func:`shim_quantizer` maps a
:class:`FixedPoint` onto it (``b = i + f``). The shim rounds half to even (``RND_CONV``) and saturates.

**Types.** Input: one common type for all 57 inputs, ``fixed<13,6>`` (k=1, i=5, f=7): it holds pT
``ufixed<12,5>`` and eta/phi ``fixed<8,3>`` exactly, so quantizing encoded inputs is the identity
(per-feature types are not possible with a non-trainable ``quantized_bits``). It is a leading
``QActivation`` (an input quantizer on the first ``QDense`` is ignored by hls4ml). Weights and biases:
``quantized_bits(bits, weight_integer)``; hidden activations: ReLU then an unsigned
``quantized_bits(bits, act_integer)``; reconstruction / VAE mean: ``score_path.RECON_TYPE``. The score
path (subtract, square, fixed 0/1-weight sum) quantizes the difference and the square to
``score_path.SCORE_DIFF_TYPE`` / ``SCORE_SQ_TYPE`` widths, chosen so that every value is exact in
float32 and therefore in the C simulation. All shim quantizers round half to even and saturate,
whatever modes the FixedPoint they are built from names (:func:`shim_quantizer`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import keras
import numpy as np

from l1ad.core.fixed_point import FixedPoint
from l1ad.events.encoding import INPUT_COMMON_TYPE

logger = logging.getLogger(__name__)

#: The common input type of the QKeras style (holds every type of ``encoding.INPUT_TYPES``); the shim's
#: quantizers round half to even, hence RND_CONV.
INPUT_TYPE = dataclasses.replace(INPUT_COMMON_TYPE, rounding="RND_CONV")


def check_qkeras_ok() -> None:
    from l1ad.quantization.hgq_style import native_used

    if native_used():
        raise RuntimeError(
            "native HGQ2 models were built or loaded in this process; importing HGQ2's qkeras shim now would "
            "rewrite their layer classes. Build/load 'qkeras' models in a fresh process "
            "(l1ad.models.registry.score scores each Keras model in its own process)."
        )


def import_shim() -> tuple[Any, Any]:
    """Import (after the safety check) and return the ``qkeras.qlayers`` and ``qkeras.quantizers`` modules."""
    check_qkeras_ok()
    import qkeras.qlayers as qlayers
    import qkeras.quantizers as quantizers

    return qlayers, quantizers


def shim_quantizer(fp: FixedPoint) -> Any:
    """The shim ``quantized_bits`` with the width of ``fp``; it always rounds half to even and saturates."""
    _, quantizers = import_shim()
    return quantizers.quantized_bits(fp.i + fp.f, fp.i, keep_negative=bool(fp.k), alpha=None)


def qkeras_type(bits: int, integer: int, signed: bool) -> FixedPoint:
    """QKeras ``quantized_bits(bits, integer)`` as a FixedPoint, ``integer`` clipped to fit ``bits``."""
    k = int(signed)
    integer = max(min(integer, bits - k), 0)
    return FixedPoint.from_qkeras(bits, integer, keep_negative=signed, overflow="SAT", rounding="RND_CONV")


class QKerasStyle:
    """Builds QKeras-style layers (see the module docstring)."""

    name = "qkeras"

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self.ql, _ = import_shim()

    @property
    def weight_type(self) -> FixedPoint:
        return qkeras_type(self.cfg.bits, self.cfg.weight_integer, signed=True)

    @property
    def act_type(self) -> FixedPoint:
        return qkeras_type(self.cfg.bits, self.cfg.act_integer, signed=False)

    def input(self, x: Any) -> Any:
        return self.ql.QActivation(shim_quantizer(INPUT_TYPE), name="input_quantizer")(x)

    def _qdense(self, x: Any, units: int, name: str, batchnorm: bool) -> Any:
        cls = self.ql.QBatchNormDense if batchnorm else self.ql.QDense
        wq = shim_quantizer(self.weight_type)
        return cls(units, kernel_quantizer=wq, bias_quantizer=shim_quantizer(self.weight_type), name=name)(x)

    def dense(self, x: Any, units: int, name: str, relu: bool = True, batchnorm: bool = False) -> Any:
        x = self._qdense(x, units, name, batchnorm)
        if relu:
            return self.ql.QActivation(shim_quantizer(self.act_type), name=f"{name}_relu")(x)
        return x

    def output_dense(self, x: Any, units: int, name: str) -> Any:
        from l1ad.quantization.score_path import RECON_TYPE

        x = self._qdense(x, units, name, False)
        return self.ql.QActivation(shim_quantizer(RECON_TYPE), name=f"{name}_q")(x)

    def _ones(self, x: Any, name: str, weights: np.ndarray | None = None) -> Any:
        from l1ad.quantization.score_path import set_fixed_kernel

        one = shim_quantizer(FixedPoint(k=0, i=1, f=0))
        layer = self.ql.QDense(1, use_bias=False, kernel_initializer="ones", trainable=False, kernel_quantizer=one,
                               name=name)  # fmt: skip
        return set_fixed_kernel(layer, layer(x), weights)

    def sq_err_sum(self, a: Any, b: Any, name: str, weights: np.ndarray | None = None) -> Any:
        from l1ad.quantization.score_path import SCORE_DIFF_TYPE

        d = self.ql.QSubtract(name=f"{name}_diff")([a, b])
        d = self.ql.QActivation(shim_quantizer(SCORE_DIFF_TYPE), name=f"{name}_diff_q")(d)
        return self.sq_sum(d, name, weights)

    def sq_sum(
        self, a: Any, name: str, weights: np.ndarray | None = None, sq_type: FixedPoint | None = None
    ) -> Any:
        from l1ad.quantization.score_path import SCORE_SQ_TYPE

        d2 = self.ql.QMultiply(name=f"{name}_sq")([a, a])
        d2 = self.ql.QActivation(shim_quantizer(sq_type or SCORE_SQ_TYPE), name=f"{name}_sq_q")(d2)
        return self._ones(d2, name, weights)

    def callbacks(self, x: np.ndarray | None = None) -> list:
        return []

    def ebops(self, model: keras.Model, x: np.ndarray | None = None) -> int | None:
        return None

    def calibrate_ranges(self, model: keras.Model, x: np.ndarray) -> dict | None:
        return None  # the bit widths are the style's declared ones (the bit-width scan), never learned
