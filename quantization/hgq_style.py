"""HGQ2-native quantization style: high-granularity quantizers with learned bit widths + EBOPs.

Choices (all converted bit-exactly by hls4ml's HGQ2 front end):

* **Input quantizer first**: a standalone, non-trainable ``hgq.quantizer.Quantizer`` whose per-feature
  ``(k, i, f)`` are :data:`l1ad.events.encoding.INPUT_TYPES` (pT ``ufixed<12,5>``, eta/phi
  ``fixed<8,3>``, RND, SAT). Encoded inputs lie on that grid, so quantizing them is the identity.
* **Datalanes saturate** (``overflow_mode='SAT'``, trainable integer bits) instead of HGQ2's default
  WRAP: an event outside the background's range must saturate (large score), not wrap to a small one.
* **Score path is exact and fixed**: ``QSubtract`` -> ``QMultiply`` -> ``QDense(1)`` of ones have their
  input quantizers disabled (so training cannot shrink the score by coarsening it) and no EBOPs; the
  operands are already quantized (input quantizer, the reconstruction's output quantizer).
  ``QSum``/``QMeanPow2`` are avoided: they fail in hls4ml 1.3.
* **Ranges calibrated after training**: the EBOPs penalty shrinks the learned SAT integer bits until the
  background's rare tail saturates; :meth:`HGQStyle.calibrate_ranges` widens them to hold it
  (:mod:`l1ad.quantization.hgq_ranges`).
* **EBOPs regularizer**: ``beta`` ramps from ``cfg.beta0`` to ``cfg.beta_final`` over
  ``cfg.beta_ramp_epochs`` (HGQ2 ``BetaScheduler`` + ``PieceWiseSchedule``); ``FreeEBOPs`` logs it.

Never use this style in a process that imported ``qkeras.qlayers`` (HGQ2's shim rewrites the native
layer classes in place): :func:`check_native_ok` raises, :func:`mark_native_used` records use so the
QKeras style can refuse in turn.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import keras
import numpy as np

from l1ad.core.fixed_point import FixedPoint
from l1ad.events.encoding import INPUT_COMMON_TYPE, INPUT_TYPES

logger = logging.getLogger(__name__)

_NATIVE_USED = False


def qkeras_imported() -> bool:
    """True when HGQ2's QKeras shim was imported in this process (native layers are then broken)."""
    return "qkeras.qlayers" in sys.modules


def native_used() -> bool:
    return _NATIVE_USED


def check_native_ok() -> None:
    if qkeras_imported():
        raise RuntimeError(
            "HGQ2's qkeras shim (qkeras.qlayers) was imported in this process; it rewrites the native HGQ2 "
            "layer classes, so native 'hgq' models cannot be built or loaded here. Use a fresh process "
            "(l1ad.models.registry.score scores each Keras model in its own process)."
        )


def mark_native_used() -> None:
    global _NATIVE_USED
    check_native_ok()
    _NATIVE_USED = True


def input_quantizer(name: str = "input_quantizer") -> Any:
    """The fixed per-feature input quantizer (types from ``encoding.INPUT_TYPES``); set after build."""
    from hgq.quantizer import Quantizer

    return Quantizer(fixed_quantizer_config(INPUT_COMMON_TYPE), name=name)


def set_input_types(q: Any) -> None:
    """Assign the per-feature ``(k, i, f)`` of ``INPUT_TYPES`` to a built input quantizer."""
    iq = q.quantizer
    for var, values in ((iq._k, [t.k for t in INPUT_TYPES]), (iq._i, [t.i for t in INPUT_TYPES]),
                        (iq._f, [t.f for t in INPUT_TYPES])):  # fmt: skip
        var.assign(np.asarray(values, dtype=var.dtype).reshape(var.shape))


def fixed_quantizer_config(fp: FixedPoint) -> Any:
    """A non-trainable HGQ2 ``kif`` quantizer config realising the fixed-point type ``fp``."""
    from hgq.config import QuantizerConfig

    return QuantizerConfig(
        "kif", "datalane", k0=fp.k, i0=fp.i, f0=fp.f, round_mode=fp.rounding, overflow_mode=fp.overflow,
        ir=None, fr=None, trainable=False,
    )  # fmt: skip


def total_ebops(model: keras.Model) -> int:
    """Sum of the EBOPs recorded by the model's layers (updated by each training/tracing step)."""
    from hgq.layers import QLayerBase

    total = 0
    for layer in model._flatten_layers():
        if isinstance(layer, QLayerBase) and layer.enable_ebops:
            total += int(keras.ops.convert_to_numpy(layer._ebops))
    return total


class HGQStyle:
    """Builds HGQ2-native layers (see the module docstring)."""

    name = "hgq"

    def __init__(self, cfg: Any) -> None:
        mark_native_used()
        self.cfg = cfg

    def _datalane(self) -> Any:
        from hgq.config import QuantizerConfig

        return QuantizerConfig("kif", "datalane", i0=4, f0=6, overflow_mode="SAT")

    def input(self, x: Any) -> Any:
        q = input_quantizer()
        y = q(x)
        set_input_types(q)
        return y

    def dense(self, x: Any, units: int, name: str, relu: bool = True, batchnorm: bool = False) -> Any:
        from hgq.layers import QBatchNormDense, QDense

        cls = QBatchNormDense if batchnorm else QDense
        return cls(units, activation="relu" if relu else None, iq_conf=self._datalane(), name=name)(x)

    def output_dense(self, x: Any, units: int, name: str) -> Any:
        from hgq.layers import QDense

        from l1ad.quantization.score_path import RECON_TYPE

        oq = fixed_quantizer_config(RECON_TYPE)
        return QDense(units, iq_conf=self._datalane(), enable_oq=True, oq_conf=oq, name=name)(x)

    def _ones(self, x: Any, name: str, weights: np.ndarray | None = None) -> Any:
        from hgq.config import QuantizerConfig
        from hgq.layers import QDense

        from l1ad.quantization.score_path import set_fixed_kernel

        kq = QuantizerConfig("kbi", "weight", k0=0, b0=1, i0=1, overflow_mode="SAT", br=None, trainable=False)
        layer = QDense(1, use_bias=False, kernel_initializer="ones", trainable=False, enable_iq=False,
                       kq_conf=kq, name=name)  # fmt: skip
        return set_fixed_kernel(layer, layer(x), weights)

    def sq_err_sum(self, a: Any, b: Any, name: str, weights: np.ndarray | None = None) -> Any:
        from hgq.layers import QSubtract

        from l1ad.quantization.score_path import SCORE_DIFF_TYPE

        oq = fixed_quantizer_config(SCORE_DIFF_TYPE)
        d = QSubtract(enable_iq=False, enable_oq=True, oq_conf=oq, name=f"{name}_diff")([a, b])
        return self.sq_sum(d, name, weights)

    def sq_sum(
        self, a: Any, name: str, weights: np.ndarray | None = None, sq_type: FixedPoint | None = None
    ) -> Any:
        from hgq.layers import QMultiply

        from l1ad.quantization.score_path import SCORE_SQ_TYPE

        oq = fixed_quantizer_config(sq_type or SCORE_SQ_TYPE)
        d2 = QMultiply(enable_iq=False, enable_oq=True, oq_conf=oq, name=f"{name}_sq")([a, a])
        return self._ones(d2, name, weights)

    def callbacks(self, x: np.ndarray | None = None) -> list:
        """Beta schedule, EBOPs logging and, given background ``x``, the per-epoch range calibration."""
        from hgq.utils.sugar import BetaScheduler, FreeEBOPs, PieceWiseSchedule

        from l1ad.quantization.hgq_ranges import RangeCalibration

        cfg = self.cfg
        ramp = max(int(cfg.beta_ramp_epochs), 1)
        sched = PieceWiseSchedule([(0, cfg.beta0, "log"), (ramp, cfg.beta_final, "constant")])
        return [BetaScheduler(sched), FreeEBOPs(), *([RangeCalibration(x)] if x is not None else [])]

    def calibrate_ranges(self, model: keras.Model, x: np.ndarray) -> dict:
        """Widen the learned SAT integer bits to hold background ``x`` (see :mod:`l1ad.quantization.hgq_ranges`)."""
        from l1ad.quantization import hgq_ranges

        return hgq_ranges.describe(hgq_ranges.widen_saturating_ranges(model, x), len(x))

    def ebops(self, model: keras.Model, x: np.ndarray | None = None) -> int | None:
        """EBOPs of ``model``; with ``x``, first refreshed by one tracing pass (no weight change)."""
        if x is not None:
            from hgq.utils import trace_minmax

            return int(trace_minmax(model, x, reset=False, batch_size=max(len(x), 1)))
        return total_ebops(model)
