"""The fixed-point vocabulary agrees with HGQ2's quantizers and with ap_fixed semantics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from quantizers import get_fixed_quantizer_np

from l1ad.quantization.fixed_point import FixedPoint


@pytest.mark.parametrize(
    "k,i,f,overflow,rounding",
    [
        (k, i, f, o, r)
        for k, (i, f), o, r in itertools.product(
            (0, 1), ((3, 4), (0, 6), (5, -1), (-2, 8)), ("WRAP", "SAT"), ("TRN", "RND")
        )
    ],
)
def test_quantize_matches_hgq2_quantizers(k, i, f, overflow, rounding):
    t = FixedPoint(k, i, f, overflow, rounding)
    if t.width < 1:
        pytest.skip("empty type")
    rng = np.random.default_rng(0)
    # values on a fine grid, half-LSB ties, and far outside the range (overflow on purpose)
    x = np.concatenate([rng.uniform(-3 * 2.0**i, 3 * 2.0**i, 5000), np.arange(-40, 40) * 2.0 ** -(f + 1)])
    ref = get_fixed_quantizer_np(rounding, overflow)(x, k, i, f)
    np.testing.assert_array_equal(t.quantize(x), ref)
    assert t.representable(t.quantize(x)).all()


def test_ranges_and_spelling():
    t = FixedPoint(k=1, i=2, f=5, overflow="SAT", rounding="RND")
    assert (t.width, t.integer, t.lsb, t.min, t.max) == (8, 3, 1 / 32, -4.0, 4 - 1 / 32)
    assert t.hls() == "ap_fixed<8,3,AP_RND,AP_SAT>"
    assert FixedPoint(0, 5, 7).hls() == "ap_ufixed<12,5>"
    assert FixedPoint.parse(t.hls()) == t
    assert FixedPoint.parse("ap_ufixed<12,5>") == FixedPoint(0, 5, 7)
    assert FixedPoint.parse("ap_fixed<16, 6, AP_TRN, AP_WRAP>") == FixedPoint(1, 5, 10)
    with pytest.raises(ValueError, match="not an ap_fixed"):
        FixedPoint.parse("float")
    with pytest.raises(ValueError, match="rounding"):
        FixedPoint.parse("ap_fixed<8,3,AP_RND_CONV,AP_SAT>")


def test_wrap_and_saturate_on_purpose():
    wrap = FixedPoint(1, 2, 0)  # integers -4..3
    np.testing.assert_array_equal(wrap.quantize([3, 4, 5, -5, -4]), [3, -4, -3, 3, -4])
    sat = FixedPoint(1, 2, 0, overflow="SAT")
    np.testing.assert_array_equal(sat.quantize([3, 4, 100, -100]), [3, 3, 3, -4])
    np.testing.assert_array_equal(
        FixedPoint(0, 2, 1, rounding="RND").quantize([0.24, 0.25, 0.74, 0.75]), [0, 0.5, 0.5, 1.0]
    )


def test_qkeras_conversion_excludes_sign_from_integer():
    t = FixedPoint.from_qkeras(bits=8, integer=3, keep_negative=True)
    assert (t.k, t.i, t.f) == (1, 3, 4)
    assert t.qkeras_args() == {"bits": 8, "integer": 3, "keep_negative": True}
    u = FixedPoint.from_qkeras(bits=8, integer=3, keep_negative=False)
    assert (u.k, u.i, u.f) == (0, 3, 5)


def test_serialization_round_trip_and_unknown_keys():
    t = FixedPoint(1, 3, 4, "SAT", "RND")
    assert FixedPoint.from_dict(t.to_dict()) == t
    with pytest.raises(ValueError, match="unknown fixed-point keys"):
        FixedPoint.from_dict({**t.to_dict(), "bits": 8})
    with pytest.raises(ValueError):
        FixedPoint(2, 1, 1)
