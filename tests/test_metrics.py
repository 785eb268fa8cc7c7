"""Metrics checked against hand-computed ROC, AUROC, Hanley-McNeil, working points and rates."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from l1ad.evaluation import metrics

# bkg = [0, 1, 2, 3], sig = [2.5, 3.5]: 2.5 beats 3 of 4 background, 3.5 beats all 4 -> 7/8.
TINY_BKG = np.array([0.0, 1.0, 2.0, 3.0])
TINY_SIG = np.array([2.5, 3.5])


def test_tiny_roc_curve_by_hand():
    fpr, tpr, thr = metrics.roc_curve(TINY_BKG, TINY_SIG)
    # thresholds: distinct scores descending, then -inf; trigger fires on score > threshold.
    np.testing.assert_array_equal(thr, [3.5, 3.0, 2.5, 2.0, 1.0, 0.0, -np.inf])
    np.testing.assert_array_equal(fpr, [0.0, 0.0, 0.25, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_array_equal(tpr, [0.0, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0])


def test_tiny_auroc_by_hand():
    assert metrics.auroc(TINY_BKG, TINY_SIG) == 7 / 8
    fpr, tpr, _ = metrics.roc_curve(TINY_BKG, TINY_SIG)
    assert np.trapezoid(tpr, fpr) == pytest.approx(7 / 8)


def test_ties_count_half():
    # pairs (sig, bkg): (2,1) win, (2,2) tie = 1/2, (3,1) win, (3,2) win -> 3.5 / 4
    bkg, sig = [1.0, 2.0], [2.0, 3.0]
    assert metrics.auroc(bkg, sig) == 0.875
    fpr, tpr, thr = metrics.roc_curve(bkg, sig)
    np.testing.assert_array_equal(thr, [3.0, 2.0, 1.0, -np.inf])
    np.testing.assert_array_equal(fpr, [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_array_equal(tpr, [0.0, 0.5, 1.0, 1.0])
    assert np.trapezoid(tpr, fpr) == pytest.approx(0.875)
    assert metrics.auroc([1.0, 1.0], [1.0, 1.0, 1.0]) == 0.5


def test_auroc_matches_sklearn_and_roc_area_with_many_ties():
    rng = np.random.default_rng(0)
    bkg = rng.integers(0, 20, 3000).astype(float)
    sig = rng.integers(3, 25, 1000).astype(float)
    labels = np.r_[np.zeros(bkg.size), np.ones(sig.size)]
    auc = metrics.auroc(bkg, sig)
    assert auc == pytest.approx(roc_auc_score(labels, np.r_[bkg, sig]), abs=1e-12)
    fpr, tpr, _ = metrics.roc_curve(bkg, sig)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc, abs=1e-12)


def test_perfect_and_inverted_separation():
    assert metrics.auroc([0.0, 1.0, 2.0], [3.0, 4.0]) == 1.0
    assert metrics.auroc([3.0, 4.0], [0.0, 1.0, 2.0]) == 0.0
    assert metrics.auprc([0.0, 1.0, 2.0], [3.0, 4.0]) == 1.0


def test_identical_distributions_give_half():
    rng = np.random.default_rng(1)
    bkg, sig = rng.normal(size=20_000), rng.normal(size=20_000)
    auc = metrics.auroc(bkg, sig)
    assert abs(auc - 0.5) < 5 * metrics.auroc_error(0.5, sig.size, bkg.size)


def test_hanley_mcneil_by_hand():
    # A = 0.8: Q1 - A^2 = 2/3 - 16/25 = 2/75, Q2 - A^2 = 32/45 - 16/25 = 16/225.
    # A(1-A) + 9 * 2/75 + 19 * 16/225 = 36/225 + 54/225 + 304/225 = 394/225; / (10 * 20).
    assert metrics.auroc_error(0.8, 10, 20) == pytest.approx(math.sqrt(394 / 225 / 200), rel=1e-12)
    assert metrics.auroc_error(1.0, 10, 20) == 0.0
    with pytest.raises(ValueError, match="auc"):
        metrics.auroc_error(1.2, 10, 20)
    with pytest.raises(ValueError, match="n_pos"):
        metrics.auroc_error(0.8, 0, 20)


def test_auprc_by_hand():
    # ranked: 3.5 S (P=1, R=1/2), 3 B, 2.5 S (P=2/3, R=1) -> AP = 1/2 * 1 + 1/2 * 2/3
    assert metrics.auprc(TINY_BKG, TINY_SIG) == pytest.approx(0.5 + 1 / 3)


def test_threshold_at_fpr_exact_position():
    bkg = np.arange(100_000, dtype=float)
    rng = np.random.default_rng(2)
    shuffled = rng.permutation(bkg)
    # 1e-4 of 1e5 = 10 events strictly above: 99990..99999 -> threshold 99989
    t = metrics.threshold_at_fpr(shuffled, 1e-4)
    assert t == 99989.0
    assert np.sum(bkg > t) == 10
    assert np.sum(bkg > np.nextafter(t, -np.inf)) == 11  # any lower threshold passes too many
    # 0.29 * 100 is 28.999999999999996 in floating point: still 29 events allowed
    assert metrics.threshold_at_fpr(np.arange(100.0), 0.29) == 70.0
    assert metrics.threshold_at_fpr(bkg, 1.0) == -np.inf


def test_threshold_at_fpr_with_ties_rejects_the_tie():
    bkg = np.array([0.0] * 5 + [1.0] * 5)
    # allowed 3 events above; any t < 1 passes 5, so t = 1 with nothing above
    assert metrics.threshold_at_fpr(bkg, 0.3) == 1.0
    res = metrics.tpr_at_fpr(bkg, [0.5, 1.5], 0.3)
    assert res.fpr == 0.0
    assert res.tpr == 0.5


def test_tpr_at_fpr_by_hand():
    bkg = np.arange(100_000, dtype=float)
    sig = np.array([99988.5, 99989.0, 99989.5, 100_000.0])  # two strictly above 99989
    tpr, err, fpr = metrics.tpr_at_fpr(bkg, sig, 1e-4)
    assert tpr == 0.5
    assert fpr == 1e-4
    # the threshold 99989 is the 11th highest (k = 10 above it); it moves by sqrt(10 (1 - 1e-4)) ranks:
    # 3 ranks up (99992) the TPR is 1/4, 3 ranks down (99986) it is 4/4
    threshold_err = 0.75 / 6 * math.sqrt(10 * (1 - 1e-4))
    assert metrics.threshold_tpr_err(bkg, sig, 1e-4) == pytest.approx(threshold_err)
    assert err == pytest.approx(math.hypot(math.sqrt(0.5 * 0.5 / 4), threshold_err))


@pytest.mark.parametrize(("n_bkg", "fpr"), [(20_000, 1e-3), (100_000, 1e-4)])
def test_tpr_error_covers_the_threshold_spread(n_bkg, fpr):
    """Repeated experiments (fresh background and signal each): the quoted TPR error matches the
    spread of the TPRs, although the signal's binomial error alone is 10x smaller (the threshold, set
    on k = 20 or 10 background events, dominates)."""
    rng = np.random.default_rng(5)
    tprs, errs = [], []
    for _ in range(80):
        res = metrics.tpr_at_fpr(rng.normal(size=n_bkg), rng.normal(2.0, 1.0, size=200_000), fpr)
        tprs.append(res.tpr)
        errs.append(res.tpr_err)
    spread, quoted = np.std(tprs, ddof=1), np.mean(errs)
    binomial = math.sqrt(np.mean(tprs) * (1 - np.mean(tprs)) / 200_000)
    assert spread > 5 * binomial
    assert 0.75 < quoted / spread < 1.33


def test_efficiency_at_rejection():
    # 1 - 0.9999 is 9.99999999999989e-05 in floating point: 1 of 10^4 events must still be allowed
    bkg = np.arange(10_000, dtype=float)
    assert metrics.threshold_at_fpr(bkg, 1 - 0.9999) == 9998.0
    assert metrics.efficiency_at_rejection(bkg, [9997.5, 9998.5], 0.9999) == 0.5
    with pytest.raises(ValueError, match="rejection"):
        metrics.efficiency_at_rejection(bkg, [1.0], 1.0)


def test_unresolvable_fpr_is_nan_with_warning(caplog):
    bkg = np.arange(1000, dtype=float)
    with caplog.at_level(logging.WARNING, logger="l1ad.evaluation.metrics"):
        res = metrics.tpr_at_fpr(bkg, [2000.0], 1e-4)
    assert all(math.isnan(v) for v in res)
    assert "not resolvable" in caplog.text
    # exactly one event allowed at fpr = 1 / n_bkg: resolved
    assert metrics.tpr_at_fpr(bkg, [2000.0], 1e-3).tpr == 1.0


def test_rate_khz():
    bkg = np.arange(100_000, dtype=float)
    assert metrics.rate_khz(bkg, 99989.0) == pytest.approx(4.0)  # 1e-4 x 40 MHz
    assert metrics.rate_khz(bkg, 99989.0, collision_rate_mhz=30.0) == pytest.approx(3.0)
    assert metrics.rate_khz(bkg, 1e9) == 0.0


def test_thresholds_for_rates():
    bkg = np.random.default_rng(3).permutation(np.arange(100_000, dtype=float))
    rows = metrics.thresholds_for_rates(bkg, rates_khz=(4, 40, 0.1))
    four, forty, tiny = rows
    assert four["threshold"] == 99989.0
    assert four["achieved_rate_khz"] == pytest.approx(4.0)
    assert four["achieved_rate_err_khz"] == pytest.approx(math.sqrt(1e-4 * (1 - 1e-4) / 1e5) * 40_000)
    assert four["resolved"] is True
    assert forty["threshold"] == 99899.0  # 1e-3 -> 100 events above
    # 0.1 kHz = 2.5e-6 of the bunch crossings, below 1 / 1e5: not resolvable
    assert tiny["resolved"] is False
    assert tiny["threshold"] is None and tiny["achieved_rate_khz"] is None
    assert tiny["min_resolvable_rate_khz"] == pytest.approx(0.4)
    json.dumps(rows)


def test_signal_metrics_resolved():
    rng = np.random.default_rng(4)
    bkg = rng.normal(size=100_000)
    sig = rng.normal(3.0, 1.0, size=500)
    m = metrics.signal_metrics(bkg, sig)
    required = {
        "auroc", "auroc_err", "auprc", "tpr_at_fpr_1e-4", "tpr_at_fpr_1e-4_err",
        "tpr_at_fpr_1e-5", "tpr_at_fpr_1e-5_err", "eff_at_rejection_0.9999", "n_signal",
    }  # fmt: skip
    assert required <= m.keys()
    assert m["n_signal"] == 500 and type(m["n_signal"]) is int
    for key in required - {"n_signal"}:
        assert type(m[key]) is float, key
    assert m["auroc"] == metrics.auroc(bkg, sig)
    assert m["tpr_at_fpr_1e-4"] == metrics.tpr_at_fpr(bkg, sig, 1e-4).tpr
    assert m["eff_at_rejection_0.9999"] == m["tpr_at_fpr_1e-4"]
    assert m["tpr_at_fpr_1e-5"] <= m["tpr_at_fpr_1e-4"]
    json.dumps(m)


def test_signal_metrics_unresolved_is_none(caplog):
    bkg = np.arange(5000, dtype=float)
    with caplog.at_level(logging.WARNING, logger="l1ad.evaluation.metrics"):
        m = metrics.signal_metrics(bkg, [10_000.0, 1.0])
    for key in ("tpr_at_fpr_1e-4", "tpr_at_fpr_1e-4_err", "tpr_at_fpr_1e-5", "eff_at_rejection_0.9999"):
        assert m[key] is None
    assert m["auroc"] == pytest.approx((5000 + 1.5) / 10_000)  # 1.0 beats 0 and ties 1
    assert "not resolvable" in caplog.text
    json.loads(json.dumps(m))


def test_score_correlation_by_hand():
    # deviations (-1, 0, 1) and (-1, 1, 0): covariance sum 1, variance sums 2 and 2 -> r = 1/2
    c = metrics.score_correlation([1.0, 2.0, 3.0], [1.0, 3.0, 2.0])
    assert c["pearson"] == pytest.approx(0.5)
    assert c["spearman"] == pytest.approx(0.5)
    c = metrics.score_correlation([1.0, 2.0, 3.0, 4.0], [1.0, 4.0, 9.0, 16.0])
    assert c["spearman"] == pytest.approx(1.0)
    assert c["pearson"] < 1.0
    assert metrics.score_correlation([1.0, 1.0], [1.0, 2.0]) == {"pearson": None, "spearman": None}


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: metrics.auroc([], [1.0]), "empty"),
        (lambda: metrics.auroc([1.0], []), "empty"),
        (lambda: metrics.auroc([1.0, np.nan], [1.0]), "NaN"),
        (lambda: metrics.roc_curve([1.0], [[1.0, 2.0]]), "1-D"),
        (lambda: metrics.score_correlation([1.0, 2.0], [1.0, 2.0, 3.0]), "same shape"),
        (lambda: metrics.threshold_at_fpr([1.0], 0.0), "fpr"),
        (lambda: metrics.tpr_at_fpr([1.0], [1.0], 1.5), "fpr"),
        (lambda: metrics.rate_khz([np.nan], 0.0), "NaN"),
    ],
)
def test_input_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_tail_health_catches_saturation_and_coarse_steps() -> None:
    rng = np.random.default_rng(3)
    b = rng.normal(size=100_000)
    ok = metrics.tail_health(b, rate_khz=40.0)  # FPR 1e-3: 100 events fire, all distinct
    assert ok["n_at_max"] == 1 and ok["distinct_above_threshold"] == 100 and ok["pass"] is True
    saturated = np.minimum(b, np.quantile(b, 0.9995))  # the top 50 events pile up at the output's maximum
    bad = metrics.tail_health(saturated, rate_khz=40.0)
    assert bad["n_at_max"] == 50 and bad["pass"] is False
    coarse = metrics.tail_health(np.round(b * 4) / 4, rate_khz=40.0)  # a score with too few bits
    assert coarse["distinct_above_threshold"] < 10 and coarse["pass"] is False
    few = metrics.tail_health(b[:100], rate_khz=1.0)  # 1 kHz is not resolved by 100 events
    assert few["distinct_above_threshold"] is None and few["pass"] is False
    some = metrics.tail_health(b, rate_khz=10.0)  # 25 events fire, all distinct: too few to pass
    assert some["n_firing"] == 25 and some["distinct_above_threshold"] == 25 and some["pass"] is None
    tied = metrics.tail_health(np.concatenate([b, np.sort(b)[-5:-4].repeat(3)]), rate_khz=10.0)
    assert tied["pass"] is False  # ties among the 25 that fire
