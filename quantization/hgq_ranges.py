"""Integer-bit calibration of HGQ2's saturating datalanes: the tail of the background must not saturate.

HGQ2 trains the integer bits ``i`` of a saturating (``SAT``) datalane quantizer by gradient, against an
EBOPs penalty that pays for every bit. The few background events in the trigger's tail (1e-4 and below)
barely move the loss, so training shrinks ``i`` until they saturate: the student's score then piles up
at its largest value (64 of 1M background events tied at the maximum, none firing at 1e-5). Saturation
is right for an event *outside* the background's range (it must stay large, never wrap), wrong inside it.

:func:`widen_saturating_ranges` runs the trained model over background calibration events, takes each
quantizer's largest ``|input|`` per bit-width group (HGQ2's own ``bw_mapper`` and ``get_minimal_i``) and
raises ``i`` to cover it plus ``headroom_bits`` (only ever raises: events that did not saturate keep their
exact values, so quantized model, C-sim and RTL stay bit-identical to one another). The fixed quantizers
(input types, score path) and WRAP quantizers (HGQ2 traces those itself) are left alone.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import keras
import numpy as np

logger = logging.getLogger(__name__)

#: Bits added above the calibration maximum: covers events up to twice the background's largest value.
HEADROOM_BITS = 1


@dataclass(frozen=True)
class RangeChange:
    """One layer's input quantizer: integer bits before/after; bit-width groups that clipped background
    events before (``clipped``) and that were widened (``widened``: clipped, or without the headroom)."""

    layer: str
    groups: int
    clipped: int
    widened: int
    i_max_before: int
    i_max_after: int


def saturating_layers(model: keras.Model) -> list[Any]:
    """The model's HGQ2 layers whose enabled input quantizer saturates with trainable integer bits."""
    from hgq.layers import QLayerBase
    from hgq.quantizer.internal.fixed_point_quantizer import FixedPointQuantizerBase

    found = []
    for layer in model._flatten_layers(include_self=False):
        if not isinstance(layer, QLayerBase) or not layer.enable_iq:
            continue
        iq = getattr(layer.iq, "quantizer", None)
        if isinstance(iq, FixedPointQuantizerBase) and iq.overflow_mode.startswith("SAT") and iq._i.trainable:
            found.append(layer)
    return found


def _absmax_per_group(
    model: keras.Model, layers: list[Any], x: np.ndarray, batch_size: int
) -> list[np.ndarray]:
    """Per layer, the largest |input| over ``x`` (at least one event) reduced to the shape of its
    quantizer's bit widths."""
    probe = keras.Model(model.inputs[0], [layer.input for layer in layers])
    best: list[np.ndarray] = []
    for start in range(0, len(x), batch_size):
        outs = probe(x[start : start + batch_size], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        m = [keras.ops.convert_to_numpy(layer.iq.quantizer.bw_mapper.x_to_bw_absmax(out))
             for layer, out in zip(layers, outs, strict=True)]  # fmt: skip
        best = m if not best else [np.maximum(b, v) for b, v in zip(best, m, strict=True)]
    return best


def widen_saturating_ranges(
    model: keras.Model,
    x: np.ndarray,
    headroom_bits: int = HEADROOM_BITS,
    batch_size: int = 16384,
    log_level: int = logging.INFO,
) -> list[RangeChange]:
    """Raise each saturating datalane's integer bits to hold ``x``'s largest value plus ``headroom_bits``.

    ``x``: encoded background calibration events (never signal). Returns one :class:`RangeChange` per
    saturating layer (also logged). Pass the training model: the VAE's deployed encoder shares its layers,
    so widening them there widens it too.
    """
    if len(x) == 0:
        raise ValueError("range calibration needs at least one background event")
    layers = saturating_layers(model)
    if not layers:
        return []
    changes = []
    for layer, absmax in zip(layers, _absmax_per_group(model, layers, x, batch_size), strict=True):
        q = layer.iq.quantizer
        old = np.asarray(keras.ops.convert_to_numpy(q.i), dtype=np.float64)
        need = np.asarray(keras.ops.convert_to_numpy(q.get_minimal_i(absmax)), dtype=np.float64).reshape(
            old.shape
        )
        new = np.maximum(old, need + headroom_bits)
        if q._i.constraint is not None:
            new = np.asarray(keras.ops.convert_to_numpy(q._i.constraint(new)), dtype=np.float64)
        q._i.assign(new.astype(q._i.dtype))
        change = RangeChange(layer.name, int(old.size), int(np.count_nonzero(need > old)),
                             int(np.count_nonzero(new > old)), int(old.max()), int(new.max()))  # fmt: skip
        logger.log(log_level, "range calibration %s: %d of %d groups clipped background, %d widened, max i %d -> %d",
                    change.layer, change.clipped, change.groups, change.widened, change.i_max_before,
                    change.i_max_after)  # fmt: skip
        changes.append(change)
    return changes


class RangeCalibration(keras.callbacks.Callback):
    """Widens the ranges at the end of every epoch, so that training goes on with the tail unclipped
    (the final calibration after training, on all calibration events, is what the firmware gets)."""

    def __init__(self, x: np.ndarray, max_events: int = 65536) -> None:
        super().__init__()
        self.x = x[:max_events]

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        changes = widen_saturating_ranges(self.model, self.x, log_level=logging.DEBUG)
        logger.debug("epoch %d: %d groups clipped background", epoch + 1, sum(c.clipped for c in changes))


def describe(changes: list[RangeChange], n_events: int, headroom_bits: int = HEADROOM_BITS) -> dict:
    """The ``meta.json`` record of a calibration."""
    return {
        "events": int(n_events),
        "headroom_bits": int(headroom_bits),
        "layers": [asdict(c) for c in changes],
    }
