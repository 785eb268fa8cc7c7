"""Range calibration of HGQ2's saturating datalanes: the background's tail stops saturating, nothing else moves."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
pytest.importorskip("hgq")

from l1ad.quantization import hgq_ranges  # noqa: E402
from l1ad.quantization.hgq_style import HGQStyle, check_native_ok  # noqa: E402


def _toy(i0: int) -> keras.Model:
    """57 -> QDense(4, relu) -> QDense(1): the second layer's SAT input quantizer starts at ``i0`` bits."""
    from hgq.config import QuantizerConfig
    from hgq.layers import QDense

    check_native_ok()
    keras.utils.set_random_seed(3)
    inp = keras.Input((57,))
    sat = QuantizerConfig("kif", "datalane", i0=6, f0=6, overflow_mode="SAT")
    h = QDense(4, activation="relu", iq_conf=sat, kernel_initializer="ones", name="h")(inp)
    small = QuantizerConfig("kif", "datalane", i0=i0, f0=6, overflow_mode="SAT")
    out = QDense(1, iq_conf=small, kernel_initializer="ones", name="score")(h)
    return keras.Model(inp, out)


def _x(n: int, seed: int, scale: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.round(rng.uniform(0, scale, (n, 57)) * 64) / 64


def test_tail_no_longer_ties_at_the_maximum_and_in_range_events_keep_their_bits():
    model = _toy(i0=3)  # the score layer's inputs saturate at 8 - 2^-6; h = sum(x) reaches about 14
    x = _x(2000, 0, scale=0.4).astype(np.float32)
    h_max = x.sum(axis=1).max()
    before = np.asarray(model(x, training=False))
    top = before.max()
    assert np.count_nonzero(before == top) > 100  # the pile-up this module exists for

    changes = hgq_ranges.widen_saturating_ranges(model, x)
    after = np.asarray(model(x, training=False))
    by_layer = {c.layer: c for c in changes}
    assert set(by_layer) == {"h", "score"}
    assert (
        by_layer["score"].i_max_before == 3
        and by_layer["score"].i_max_after == np.ceil(np.log2(h_max + 2**-6)) + 1
    )
    assert by_layer["score"].clipped == 4
    assert by_layer["h"].widened == 0 and by_layer["h"].clipped == 0  # already wide enough: left as it was
    assert np.count_nonzero(after == after.max()) <= 2
    # the tail now equals the model that never saturated (same weights, wide integer bits)
    np.testing.assert_array_equal(after, np.asarray(_toy(i0=8)(x, training=False)))
    # events that did not saturate before are bit-identical after
    small = _x(500, 1, scale=0.05).astype(np.float32)
    fresh = _toy(i0=3)
    np.testing.assert_array_equal(
        np.asarray(fresh(small, training=False)), np.asarray(model(small, training=False))
    )


def test_widening_never_narrows_and_headroom_counts_bits():
    model = _toy(i0=10)
    x = _x(100, 2, scale=0.01).astype(np.float32)
    changes = {c.layer: c for c in hgq_ranges.widen_saturating_ranges(model, x, headroom_bits=1)}
    assert changes["score"].widened == 0 and changes["score"].i_max_after == 10
    model = _toy(i0=-2)
    x = np.full((10, 57), 0.25, dtype=np.float32)  # h = 57 * 0.25 = 14.25 -> needs i = 4, +1 headroom
    changes = {c.layer: c for c in hgq_ranges.widen_saturating_ranges(model, x, headroom_bits=1)}
    assert changes["score"].i_max_after == 5


def test_style_records_the_calibration_and_rejects_empty_input():
    from l1ad.models.keras.configs import load_config

    model = _toy(i0=3)
    record = HGQStyle(load_config("student", None)).calibrate_ranges(
        model, _x(300, 4, 0.4).astype(np.float32)
    )
    assert record["events"] == 300 and record["headroom_bits"] == hgq_ranges.HEADROOM_BITS
    assert {d["layer"] for d in record["layers"]} == {"h", "score"}
    with pytest.raises(ValueError, match="at least one background event"):
        hgq_ranges.widen_saturating_ranges(model, np.zeros((0, 57), dtype=np.float32))
