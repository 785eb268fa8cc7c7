"""How much of a reference's tail a model keeps: TPR ratios at a fixed FPR with a paired bootstrap error.

Quantized model and float twin (or student and teacher) score the *same* background and signal events,
so their TPRs are strongly correlated: propagating two independent errors would overstate the ratio's
error, ignoring the thresholds' spread would understate it. :func:`tpr_ratio` resamples background and
signal events together (Poisson weights, one draw per event shared by both scores), re-sets each score's
threshold on every resampled background and takes the spread of the ratios. Only the top of each
background score matters for a threshold at FPR <= 1e-3, so each replica touches the few thousand
highest events, not all of them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from l1ad.evaluation.metrics import as_scores, tpr_at_fpr

#: Bootstrap replicas: the error of an error from 200 replicas is 5 %.
N_REPLICAS = 200


def _weighted_threshold(top_scores: np.ndarray, top_w: np.ndarray, allowed: float) -> float:
    """Highest-first ``top_scores``: the first score at which the cumulative weight exceeds ``allowed``."""
    cum = np.cumsum(top_w)
    j = int(np.searchsorted(cum, allowed, side="right"))
    return float(top_scores[min(j, top_scores.size - 1)])


def _weighted_tpr(sig_sorted: np.ndarray, w_sorted_cum: np.ndarray, threshold: float) -> float:
    """Ascending ``sig_sorted`` with cumulative weights: weighted fraction of signal above ``threshold``."""
    below = int(np.searchsorted(sig_sorted, threshold, side="right"))
    total = w_sorted_cum[-1]
    passed = total - (w_sorted_cum[below - 1] if below > 0 else 0.0)
    return float(passed / total) if total > 0 else math.nan


def tpr_ratio(
    bkg_ref: Any, sig_ref: Any, bkg: Any, sig: Any, fpr: float, n_replicas: int = N_REPLICAS, seed: int = 0
) -> dict[str, float | None]:
    """``TPR(model) / TPR(reference)`` at ``fpr``, each score with its own threshold on the same background.

    ``bkg_ref``/``bkg`` (and ``sig_ref``/``sig``) are the two scores of the same events, in the same order.
    Returns ``ratio`` (on the full samples), ``err`` (standard deviation over the paired bootstrap replicas
    with re-set thresholds) and both TPRs; ``None`` values where the reference keeps no signal or the FPR
    is not resolved.
    """
    b0, b1 = as_scores(bkg_ref, "background"), as_scores(bkg, "background")
    s0, s1 = as_scores(sig_ref, "signal"), as_scores(sig, "signal")
    if b0.size != b1.size or s0.size != s1.size:
        raise ValueError(
            f"paired scores must have equal lengths: background {b0.size} vs {b1.size}, signal {s0.size} vs {s1.size}"
        )
    t0, t1 = tpr_at_fpr(b0, s0, fpr), tpr_at_fpr(b1, s1, fpr)
    if not (t0.tpr > 0) or math.isnan(t1.tpr):
        return {"ratio": None, "err": None, "tpr_ref": None if math.isnan(t0.tpr) else t0.tpr, "tpr": None}
    n_top = min(b0.size, int(fpr * b0.size * 4 + 20 * math.sqrt(fpr * b0.size) + 50))
    tops = [np.argsort(-b, kind="stable")[:n_top] for b in (b0, b1)]
    union, where = np.unique(np.concatenate(tops), return_inverse=True)  # events some threshold can reach
    tops_in_union = [where[:n_top], where[n_top:]]
    s_order = [np.argsort(s, kind="stable") for s in (s0, s1)]
    s_sorted = [s[o] for s, o in zip((s0, s1), s_order, strict=True)]
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(n_replicas):
        wb = rng.poisson(1.0, union.size).astype(np.float64)  # the other events only enter the total
        allowed = fpr * (wb.sum() + rng.poisson(float(b0.size - union.size)))
        ws = rng.poisson(1.0, s0.size).astype(np.float64)
        tpr = []
        for b, top, pos, order, ss in zip((b0, b1), tops, tops_in_union, s_order, s_sorted, strict=True):
            thr = _weighted_threshold(b[top], wb[pos], allowed)
            tpr.append(_weighted_tpr(ss, np.cumsum(ws[order]), thr))
        if tpr[0] > 0:
            ratios.append(tpr[1] / tpr[0])
    err = float(np.std(ratios, ddof=1)) if len(ratios) > 1 else None
    return {"ratio": t1.tpr / t0.tpr, "err": err, "tpr_ref": t0.tpr, "tpr": t1.tpr}
