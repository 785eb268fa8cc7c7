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


def test_square_types_hold_the_square_of_their_operand_type():
    """Every squarer of the score path holds its operand's largest square, within float32's 24 bits:
    the VAE's means (|mu| < 64) once went through the squared-error type (max 256) and tied at 512."""
    from l1ad.quantization.score_path import LATENT_SQ_TYPE, RECON_TYPE, SCORE_DIFF_TYPE, SCORE_SQ_TYPE

    for operand, square in ((SCORE_DIFF_TYPE, SCORE_SQ_TYPE), (RECON_TYPE, LATENT_SQ_TYPE)):
        assert square.max >= max(operand.max, -operand.min - operand.lsb) ** 2
        assert square.k + square.i + square.f + 2 <= 24  # a sum of 3 latent squares is still exact in float32


def test_deployed_vae_score_is_exact_for_large_means():
    """The hgq score path of the VAE (means on RECON_TYPE -> squares -> sum) is the exact sum of the
    squares, truncated to the square type, also far beyond the squared-error range; the deployed VAE uses it."""
    from hgq.quantizer import Quantizer

    from l1ad.models.keras.architectures import build
    from l1ad.models.keras.configs import load_config
    from l1ad.quantization.hgq_style import fixed_quantizer_config
    from l1ad.quantization.score_path import LATENT_SQ_TYPE, RECON_TYPE

    check_native_ok()
    style = HGQStyle(load_config("vae", None))
    inp = keras.Input((3,))
    means = Quantizer(fixed_quantizer_config(RECON_TYPE))(inp)
    path = keras.Model(inp, style.sq_sum(means, name="score", sq_type=LATENT_SQ_TYPE))
    mu = np.array([[-25.0, 30.5, 3.25], [63.9921875, -64.0, 0.0078125], [0.1, 17.3, -16.9]], dtype=np.float32)
    got = np.asarray(path(mu, training=False))[:, 0]
    q = RECON_TYPE.quantize(mu.astype(np.float64))
    np.testing.assert_array_equal(got, LATENT_SQ_TYPE.quantize(q**2).sum(axis=1))
    assert got[0] == 25.0**2 + 30.5**2 + 3.25**2  # was 256 + 256 + 10.5625 with the squared-error type
    deployed = build("vae", "hgq", load_config("vae", None), seed=0).deployed
    oq = deployed.get_layer("score_sq").oq.quantizer
    assert int(np.max(keras.ops.convert_to_numpy(oq.i))) == LATENT_SQ_TYPE.i
