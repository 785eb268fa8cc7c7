"""The fixed-point vocabulary agrees with HGQ2's quantizers and with ap_fixed semantics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from quantizers import get_fixed_quantizer_np

from l1ad.core.fixed_point import OVERFLOW_MODES, ROUNDING_MODES, FixedPoint


@pytest.mark.parametrize(
    "k,i,f,overflow,rounding",
    [
        (k, i, f, o, r)
        for k, (i, f), o, r in itertools.product(
            (0, 1), ((3, 4), (0, 6), (5, -1), (-2, 8)), OVERFLOW_MODES, ROUNDING_MODES
        )
    ],
)
def test_quantize_matches_hgq2_quantizers(k, i, f, overflow, rounding):
    t = FixedPoint(k, i, f, overflow, rounding)
    if t.width < 1:
        pytest.skip("empty type")
    rng = np.random.default_rng(0)
    # values on a fine grid, half-LSB ties, and far outside the range (overflow on purpose)
    ties = np.arange(-40, 40) * 2.0 ** -(f + 1)  # every half-LSB tie, even and odd, both signs
    edges = np.array([t.min, t.max, -t.max, t.min - t.lsb / 2, t.max + t.lsb / 2, 2 * t.max, 2 * t.min - 1])
    x = np.concatenate([rng.uniform(-3 * 2.0**i, 3 * 2.0**i, 5000), ties, edges, -ties])
    ref = get_fixed_quantizer_np(rounding, overflow)(x, k, i, f)
    np.testing.assert_array_equal(t.quantize(x), ref)
    assert t.representable(t.quantize(x)).all()
    assert FixedPoint.parse(t.hls()) == t


def test_ranges_and_spelling():
    t = FixedPoint(k=1, i=2, f=5, overflow="SAT", rounding="RND")
    assert (t.width, t.integer, t.lsb, t.min, t.max) == (8, 3, 1 / 32, -4.0, 4 - 1 / 32)
    assert t.hls() == "ap_fixed<8,3,AP_RND,AP_SAT>"
    assert FixedPoint(0, 5, 7).hls() == "ap_ufixed<12,5>"
    assert FixedPoint.parse(t.hls()) == t
    assert FixedPoint.parse("ap_ufixed<12,5>") == FixedPoint(0, 5, 7)
    assert FixedPoint.parse("ap_fixed<16, 6, AP_TRN, AP_WRAP>") == FixedPoint(1, 5, 10)
    assert FixedPoint.parse("ap_fixed<8,3,AP_RND_CONV,AP_SAT_SYM,0>") == FixedPoint(
        1, 2, 5, "SAT_SYM", "RND_CONV"
    )
    assert FixedPoint(1, 2, 5, "SAT_SYM", "RND_CONV").hls() == "ap_fixed<8,3,AP_RND_CONV,AP_SAT_SYM>"
    assert FixedPoint.parse("ap_ufixed<6,2,AP_TRN_ZERO>") == FixedPoint(0, 2, 4, "WRAP", "TRN_ZERO")
    # ap_int: f = 0 and the C++ integer conversion (towards zero, wrap)
    assert FixedPoint.parse("ap_int<8>") == FixedPoint(1, 7, 0, "WRAP", "TRN_ZERO")
    assert FixedPoint.parse("ap_uint<3>") == FixedPoint(0, 3, 0, "WRAP", "TRN_ZERO")
    np.testing.assert_array_equal(FixedPoint.parse("ap_int<3>").quantize([-2.7, 2.7, 4.5]), [-2, 2, -4])
    for bad, match in [
        ("float", "not an ap_fixed"),
        ("ap_int<8,2>", "not an ap_fixed"),
        ("ap_fixed<8,3,AP_RND_HALF,AP_SAT>", "rounding"),
        ("ap_fixed<8,3,RND,AP_SAT>", "rounding"),
        ("ap_fixed<8,3,AP_RND,AP_SAT_ZERO>", "overflow"),
        ("ap_fixed<8,3,AP_RND,AP_SAT,2>", "saturation bits"),
        ("ap_fixed<8,3,AP_RND,AP_SAT,0,1>", "malformed"),
        ("ap_fixed<8,3,,AP_SAT>", "malformed"),
    ]:
        with pytest.raises(ValueError, match=match):
            FixedPoint.parse(bad)


def test_rounding_modes_on_ties():
    """Half-LSB ties -2.5 .. 2.5 (f = 0) in every rounding mode, as ap_fixed defines them."""
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -2.4, 2.6])
    expected = {
        "TRN": [-3, -2, -1, 0, 1, 2, -3, 2],
        "TRN_ZERO": [-2, -1, 0, 0, 1, 2, -2, 2],
        "RND": [-2, -1, 0, 1, 2, 3, -2, 3],
        "RND_ZERO": [-2, -1, 0, 0, 1, 2, -2, 3],
        "RND_INF": [-3, -2, -1, 1, 2, 3, -2, 3],
        "RND_MIN_INF": [-3, -2, -1, 0, 1, 2, -2, 3],
        "RND_CONV": [-2, -2, 0, 0, 2, 2, -2, 3],
    }
    assert set(expected) == set(ROUNDING_MODES)
    for mode, want in expected.items():
        np.testing.assert_array_equal(FixedPoint(1, 4, 0, rounding=mode).quantize(x), want, err_msg=mode)


def test_wrap_and_saturate_on_purpose():
    wrap = FixedPoint(1, 2, 0)  # integers -4..3
    np.testing.assert_array_equal(wrap.quantize([3, 4, 5, -5, -4]), [3, -4, -3, 3, -4])
    sat = FixedPoint(1, 2, 0, overflow="SAT")
    np.testing.assert_array_equal(sat.quantize([3, 4, 100, -100]), [3, 3, 3, -4])
    sym = FixedPoint(1, 2, 0, overflow="SAT_SYM")
    np.testing.assert_array_equal(sym.quantize([3, 4, -4, -100]), [3, 3, -3, -3])
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
