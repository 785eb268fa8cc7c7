"""Physics metrics for anomaly scores: ROC, AUROC, TPR at fixed FPR, L1 trigger rates.

Conventions used throughout:

* A higher score means more anomalous; ``bkg`` holds background (Standard Model, negative class)
  scores and ``sig`` holds signal (positive class) scores, both 1-D.
* **The trigger fires on ``score > threshold``** (strictly greater). A threshold ``t`` therefore
  accepts the fraction ``mean(bkg > t)`` of background (the FPR) and ``mean(sig > t)`` of signal
  (the TPR, or signal efficiency).
* A target FPR is *resolved* only if at least one background event may pass it, i.e.
  ``fpr >= 1 / n_bkg``. Below that the background sample cannot measure the working point, and the
  functions here return NaN (``None`` in JSON-ready dicts) with a logged warning rather than a number.
* Trigger rate = accepted background fraction x bunch-crossing rate (40 MHz at the LHC), in kHz.

Every function validates its inputs and raises ``ValueError`` on empty arrays, NaN scores or
arrays that are not 1-D / not of matching shape.
"""

from __future__ import annotations

import logging
import math
from typing import Any, NamedTuple

import numpy as np

logger = logging.getLogger(__name__)

#: Bunch-crossing rate of the LHC in MHz.
LHC_COLLISION_RATE_MHZ = 40.0
#: Working points reported by :func:`signal_metrics`: key suffix -> FPR.
REPORTED_FPRS = {"1e-4": 1e-4, "1e-5": 1e-5}
#: Absolute tolerance (in events) when converting ``fpr * n_bkg`` to an allowed event count; it
#: absorbs floating-point representation error such as ``1 - 0.9999 = 9.9999999999999e-05``.
_COUNT_TOLERANCE = 1e-6


class TprAtFpr(NamedTuple):
    """Signal efficiency at a background working point (NaN fields when unresolved)."""

    tpr: float
    tpr_err: float  # total: the signal's binomial error and the threshold's, in quadrature
    fpr: float  # the FPR actually achieved by the threshold (<= the target)


def as_scores(x: Any, name: str) -> np.ndarray:
    """Validate one score array (1-D, non-empty, no NaN) and return it as float64.

    Raises ``ValueError`` naming ``name`` otherwise; shared by the plotting helpers.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} scores must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} scores are empty")
    if np.isnan(arr).any():
        raise ValueError(f"{name} scores contain {int(np.isnan(arr).sum())} NaN value(s)")
    return arr


def _check_fpr(fpr: float) -> float:
    fpr = float(fpr)
    if not 0.0 < fpr <= 1.0:
        raise ValueError(f"fpr must be in (0, 1], got {fpr}")
    return fpr


def _allowed_count(n_bkg: int, fpr: float) -> int:
    """Largest number k of background events with k / n_bkg <= fpr."""
    return min(n_bkg, math.floor(fpr * n_bkg + _COUNT_TOLERANCE))


def _binomial_err(p: float, n: int) -> float:
    return math.sqrt(p * (1.0 - p) / n)


def roc_curve(bkg: Any, sig: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact ROC curve for the trigger rule ``score > threshold``.

    ``thresholds`` are the distinct scores in decreasing order followed by ``-inf``;
    ``fpr[i] = mean(bkg > thresholds[i])`` and ``tpr[i] = mean(sig > thresholds[i])``. The curve
    therefore starts at (0, 0) (threshold = highest score) and ends at (1, 1) (threshold = -inf);
    tied scores move together, giving a diagonal segment between consecutive points.
    """
    b = np.sort(as_scores(bkg, "background"))
    s = np.sort(as_scores(sig, "signal"))
    thresholds = np.concatenate([np.unique(np.concatenate([b, s]))[::-1], [-np.inf]])
    fpr = (b.size - np.searchsorted(b, thresholds, side="right")) / b.size
    tpr = (s.size - np.searchsorted(s, thresholds, side="right")) / s.size
    return fpr, tpr, thresholds


def auroc(bkg: Any, sig: Any) -> float:
    """Area under the ROC curve = P(sig > bkg) + P(sig == bkg) / 2 (Mann-Whitney U, ties halved)."""
    b = as_scores(bkg, "background")
    s = as_scores(sig, "signal")
    from scipy import stats  # imported on use: a scoring worker needs neither scipy.stats nor sklearn

    ranks = stats.rankdata(np.concatenate([s, b]))  # average ranks for ties
    u = ranks[: s.size].sum() - s.size * (s.size + 1) / 2.0
    return float(u / (s.size * b.size))


def auroc_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUROC measured on n_pos signal, n_neg background."""
    if not 0.0 <= auc <= 1.0:
        raise ValueError(f"auc must be in [0, 1], got {auc}")
    if n_pos < 1 or n_neg < 1:
        raise ValueError(f"n_pos and n_neg must be >= 1, got {n_pos}, {n_neg}")
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc**2 / (1.0 + auc)
    var = (auc * (1.0 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


def auprc(bkg: Any, sig: Any) -> float:
    """Average precision with signal as the positive class (sklearn's step-wise definition)."""
    b = as_scores(bkg, "background")
    s = as_scores(sig, "signal")
    labels = np.concatenate([np.zeros(b.size), np.ones(s.size)])
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(labels, np.concatenate([b, s])))


def threshold_at_fpr(bkg: Any, fpr: float) -> float:
    """Smallest threshold t with ``mean(bkg > t) <= fpr`` (trigger fires on ``score > t``).

    With k the largest count such that ``k / n_bkg <= fpr``, this is the (k+1)-th highest background
    score: at most k events lie strictly above it, and any lower t lets at least k+1 through. Ties at
    t are rejected, so the achieved FPR may be below the target. For ``fpr < 1 / n_bkg`` (k = 0) it is
    the maximum background score (achieved FPR 0, an unresolved working point); for k = n_bkg
    (``fpr = 1``) it is ``-inf``.
    """
    b = as_scores(bkg, "background")
    k = _allowed_count(b.size, _check_fpr(fpr))
    if k >= b.size:
        return -math.inf
    idx = b.size - k - 1
    return float(np.partition(b, idx)[idx])


def tpr_at_fpr(bkg: Any, sig: Any, fpr: float) -> TprAtFpr:
    """Signal efficiency at the threshold :func:`threshold_at_fpr` gives, its binomial error and the
    achieved FPR. Returns all-NaN (and logs a warning) when ``fpr < 1 / n_bkg``."""
    b = as_scores(bkg, "background")
    s = as_scores(sig, "signal")
    fpr = _check_fpr(fpr)
    if _allowed_count(b.size, fpr) == 0:
        logger.warning(
            "FPR %.3g is not resolvable with %d background events (needs >= %d); reporting NaN",
            fpr,
            b.size,
            math.ceil(1.0 / fpr),
        )
        return TprAtFpr(math.nan, math.nan, math.nan)
    t = threshold_at_fpr(b, fpr)
    tpr = float(np.mean(s > t))
    err = math.hypot(_binomial_err(tpr, s.size), threshold_tpr_err(b, s, fpr))
    return TprAtFpr(tpr, err, float(np.mean(b > t)))


def threshold_tpr_err(bkg: Any, sig: Any, fpr: float) -> float:
    """The TPR's error from the threshold's own uncertainty (the background it is set on is a sample).

    The threshold is the (k+1)-th highest background score. On another background sample of the same
    size the count above it fluctuates by ``sqrt(k (1 - k/n))`` (binomial), so the threshold moves by
    that many ranks; the TPR's error is half the TPR difference between the thresholds that many ranks
    above and below (the local ROC slope times the FPR's error, without assuming a shape). At FPR 1e-5
    on 1M events k = 10: this is what a handful of background events costs.
    """
    b = np.sort(as_scores(bkg, "background"))[::-1]
    s = as_scores(sig, "signal")
    k = _allowed_count(b.size, _check_fpr(fpr))
    if k >= b.size:
        return 0.0
    spread = math.sqrt(k * (1.0 - k / b.size)) if k > 0 else 1.0  # k = 0: a count of 1 is as likely
    step = max(1, round(spread))
    hi, lo = b[max(k - step, 0)], b[min(k + step, b.size - 1)]  # thresholds step ranks up / down
    ranks = min(k + step, b.size - 1) - max(k - step, 0)
    return float(np.mean(s > lo) - np.mean(s > hi)) * spread / ranks


def efficiency_at_rejection(bkg: Any, sig: Any, rejection: float = 0.9999) -> float:
    """Signal efficiency (TPR) at background rejection ``rejection``, i.e. FPR = 1 - rejection."""
    if not 0.0 <= rejection < 1.0:
        raise ValueError(f"rejection must be in [0, 1), got {rejection}")
    return tpr_at_fpr(bkg, sig, 1.0 - rejection).tpr


def rate_khz(bkg_scores: Any, threshold: float, collision_rate_mhz: float = LHC_COLLISION_RATE_MHZ) -> float:
    """Trigger rate in kHz: ``mean(bkg > threshold) * collision_rate_mhz * 1000``."""
    b = as_scores(bkg_scores, "background")
    return float(np.mean(b > threshold)) * collision_rate_mhz * 1e3


def thresholds_for_rates(
    bkg: Any,
    rates_khz: tuple[float, ...] = (1, 5, 10, 50),
    collision_rate_mhz: float = LHC_COLLISION_RATE_MHZ,
) -> list[dict[str, Any]]:
    """Thresholds giving each target trigger rate (kHz) on the background sample.

    Each dict has ``target_rate_khz``, ``threshold``, ``achieved_rate_khz``,
    ``achieved_rate_err_khz`` (binomial), ``resolved`` and ``min_resolvable_rate_khz`` (one
    background event). An unresolved target (rate below one background event) has
    ``resolved: False`` and ``None`` for threshold and achieved rate.
    """
    b = as_scores(bkg, "background")
    if collision_rate_mhz <= 0:
        raise ValueError(f"collision_rate_mhz must be positive, got {collision_rate_mhz}")
    full_khz = collision_rate_mhz * 1e3
    out = []
    for target in rates_khz:
        fpr = _check_fpr(target / full_khz)
        row: dict[str, Any] = {
            "target_rate_khz": float(target),
            "min_resolvable_rate_khz": full_khz / b.size,
        }
        if _allowed_count(b.size, fpr) == 0:
            logger.warning("Rate %g kHz is not resolvable with %d background events", target, b.size)
            row.update(threshold=None, achieved_rate_khz=None, achieved_rate_err_khz=None, resolved=False)
        else:
            t = threshold_at_fpr(b, fpr)
            achieved = float(np.mean(b > t))
            row.update(
                threshold=t,
                achieved_rate_khz=achieved * full_khz,
                achieved_rate_err_khz=_binomial_err(achieved, b.size) * full_khz,
                resolved=True,
            )
        out.append(row)
    return out


def _json_float(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def signal_metrics(bkg: Any, sig: Any) -> dict[str, Any]:
    """JSON-ready summary of one signal against background (plain floats/ints, None if unresolved).

    Keys: auroc, auroc_err, auprc, tpr_at_fpr_1e-4(_err), tpr_at_fpr_1e-5(_err),
    eff_at_rejection_0.9999, n_signal, n_background.
    """
    b = as_scores(bkg, "background")
    s = as_scores(sig, "signal")
    auc = auroc(b, s)
    out: dict[str, Any] = {
        "auroc": auc,
        "auroc_err": auroc_error(auc, s.size, b.size),
        "auprc": auprc(b, s),
    }
    for key, fpr in REPORTED_FPRS.items():
        res = tpr_at_fpr(b, s, fpr)
        out[f"tpr_at_fpr_{key}"] = _json_float(res.tpr)
        out[f"tpr_at_fpr_{key}_err"] = _json_float(res.tpr_err)
    out["eff_at_rejection_0.9999"] = _json_float(efficiency_at_rejection(b, s, 0.9999))
    out["n_signal"] = int(s.size)
    out["n_background"] = int(b.size)
    return out


def score_correlation(a: Any, b: Any) -> dict[str, float | None]:
    """Pearson and Spearman correlation of two score arrays over the same events.

    A constant input has no defined correlation: that value is ``None`` and a warning is logged.
    """
    x = as_scores(a, "first")
    y = as_scores(b, "second")
    if x.shape != y.shape:
        raise ValueError(f"score arrays must have the same shape, got {x.shape} and {y.shape}")
    if x.size < 2:
        raise ValueError("need at least 2 events for a correlation")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        logger.warning("constant score array: correlation undefined")
        return {"pearson": None, "spearman": None}
    from scipy import stats

    return {
        "pearson": float(stats.pearsonr(x, y)[0]),
        "spearman": float(stats.spearmanr(x, y)[0]),
    }


#: the tail a trigger keeps must not tie: at least this many distinct scores above the lowest-rate threshold
MIN_DISTINCT_IN_TAIL = 100


def tail_health(
    bkg: Any, rate_khz: float = 1.0, collision_rate_mhz: float = LHC_COLLISION_RATE_MHZ
) -> dict[str, Any]:
    """Does a (quantized) score keep its tail? Background events tied at the largest score (a
    saturated output piles up there) and the distinct score values among the events that fire at the
    ``rate_khz`` threshold.

    ``pass`` is False when events tie at the top or the firing events share values (fewer distinct
    scores than ``min(n_firing, MIN_DISTINCT_IN_TAIL)``), True when at least
    :data:`MIN_DISTINCT_IN_TAIL` events fire with distinct scores, and None (unresolved) when every
    firing event is distinct but fewer than that many fire (1 kHz on 1M events: 25 fire).
    """
    b = as_scores(bkg, "background")
    fpr = _check_fpr(rate_khz / (collision_rate_mhz * 1e3))
    top = float(b.max())
    n_at_max = int(np.count_nonzero(b == top))
    resolved = _allowed_count(b.size, fpr) >= 1
    firing = b[b > threshold_at_fpr(b, fpr)] if resolved else b[:0]
    distinct = int(np.unique(firing).size)
    if n_at_max > 1 or distinct < min(firing.size, MIN_DISTINCT_IN_TAIL) or not resolved:
        verdict: bool | None = False
    else:
        verdict = True if distinct >= MIN_DISTINCT_IN_TAIL else None
    return {
        "rate_khz": rate_khz,
        "n_background": int(b.size),
        "max_score": top,
        "n_at_max": n_at_max,
        "n_firing": int(firing.size),
        "distinct_above_threshold": distinct if resolved else None,
        "pass": verdict,
    }
