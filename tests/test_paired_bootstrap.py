"""TPR ratios with a paired bootstrap: known answers, and an error that matches repeated experiments."""

from __future__ import annotations

import numpy as np
import pytest

from l1ad.evaluation.metrics import threshold_at_fpr, tpr_at_fpr
from l1ad.evaluation.paired_bootstrap import tpr_ratio


def _sample(rng: np.random.Generator, n_bkg: int = 100_000, n_sig: int = 20_000):
    bkg = rng.normal(0.0, 1.0, n_bkg)
    sig = rng.normal(2.0, 1.0, n_sig)
    return bkg, sig


def _quantize_and_lose(bkg: np.ndarray, sig: np.ndarray, rng: np.random.Generator):
    """A 'quantized' twin: monotone in the reference, plus noise that blurs the tail."""
    return np.floor(8 * bkg) + rng.normal(0, 2.0, bkg.size), np.floor(8 * sig) + rng.normal(0, 2.0, sig.size)


def test_a_monotone_twin_keeps_the_whole_tail_exactly():
    bkg, sig = _sample(np.random.default_rng(1))
    r = tpr_ratio(bkg, sig, 3.0 * bkg + 7.0, 3.0 * sig + 7.0, 1e-3, n_replicas=50)
    assert r["ratio"] == 1.0 and r["err"] == 0.0


def test_losing_half_of_the_firing_signal_gives_one_half():
    bkg, sig = _sample(np.random.default_rng(2))
    t = threshold_at_fpr(bkg, 1e-3)
    firing = np.flatnonzero(sig > t)
    lost = sig.copy()
    lost[firing[::2]] = -10.0  # every second firing event falls below every background event
    r = tpr_ratio(bkg, sig, bkg, lost, 1e-3, n_replicas=50)
    assert r["ratio"] == pytest.approx((firing.size // 2) / firing.size, abs=1e-12)
    assert 0 < r["err"] < 0.05


def test_bootstrap_error_matches_the_spread_over_repeated_experiments():
    """The paired bootstrap on one sample estimates the ratio's spread over independent samples."""
    rng = np.random.default_rng(3)
    ratios = []
    for _ in range(60):
        bkg, sig = _sample(rng)
        qb, qs = _quantize_and_lose(bkg, sig, rng)
        ratios.append(tpr_ratio(bkg, sig, qb, qs, 1e-3, n_replicas=2)["ratio"])
    truth = float(np.std(ratios, ddof=1))
    errs, independent = [], []
    for seed in range(6):
        bkg, sig = _sample(rng)
        qb, qs = _quantize_and_lose(bkg, sig, rng)
        r = tpr_ratio(bkg, sig, qb, qs, 1e-3, n_replicas=150, seed=seed)
        errs.append(r["err"])
        t0, t1 = tpr_at_fpr(bkg, sig, 1e-3), tpr_at_fpr(qb, qs, 1e-3)
        independent.append(r["ratio"] * np.hypot(t0.tpr_err / t0.tpr, t1.tpr_err / t1.tpr))
    assert 0.7 * truth < np.mean(errs) < 1.4 * truth, (errs, truth)
    # ignoring the pairing (independent errors) overstates it: the two TPRs move together
    assert np.mean(independent) > 1.1 * truth
    assert 0.8 < np.mean(ratios) < 0.98  # the noisy twin does lose part of the tail


def test_unresolved_and_mismatched_inputs():
    bkg, sig = _sample(np.random.default_rng(4), n_bkg=500)
    assert tpr_ratio(bkg, sig, bkg, sig, 1e-4)["ratio"] is None  # 1e-4 needs 10,000 background events
    none_pass = tpr_ratio(bkg, np.full(sig.size, -99.0), bkg, sig, 1e-2)
    assert none_pass["ratio"] is None and none_pass["tpr_ref"] == 0.0
    with pytest.raises(ValueError, match="equal lengths"):
        tpr_ratio(bkg, sig, bkg[:-1], sig, 1e-2)
