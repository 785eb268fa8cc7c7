"""PNG figures for anomaly-score evaluation (matplotlib, headless Agg backend).

Each function takes an output path, writes the PNG atomically (temp ``.png`` in the same folder, then
``os.replace``), closes its figure and returns the path:

* :func:`plot_roc_curves` - ROC curves of several models for one signal, log-x FPR in [1e-6, 1].
* :func:`plot_score_histograms` - background vs each signal score distribution, log-y.
* :func:`plot_float_vs_quantized` - per-event scatter of two scorings with their correlations.
* :func:`plot_tpr_ratio` - quantized / float TPR at a fixed FPR, one bar per signal.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from l1ad.core.files import save_figure
from l1ad.evaluation import metrics

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

logger = logging.getLogger(__name__)

FPR_MIN = 1e-6
#: Reference working points drawn as dashed lines on ROC plots.
FPR_MARKERS = (1e-5, 1e-4)
#: Points per ROC curve after resampling on a log-FPR grid.
ROC_GRID_POINTS = 1000


def _save(fig: plt.Figure, path: str | os.PathLike[str]) -> Path:
    """Save ``fig`` atomically to ``path`` and close it."""
    return save_figure(fig, path, dpi=120)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def plot_roc_curves(
    curves: Mapping[str, tuple[Any, Any]], path: str | os.PathLike[str], signal: str = "signal"
) -> Path:
    """ROC curves (TPR vs log FPR) of several models for one signal.

    ``curves`` maps a model label to its ``(bkg_scores, sig_scores)``. Each curve is drawn as the exact
    step-wise TPR at FPR values on a log grid starting at ``max(1e-6, 1 / n_bkg)``: below one
    background event the FPR is not measured, so nothing is drawn there.
    """
    fig, ax = plt.subplots(figsize=(6, 5))
    for label, (bkg, sig) in curves.items():
        fpr, tpr, _ = metrics.roc_curve(bkg, sig)
        grid = np.logspace(np.log10(max(FPR_MIN, 1.0 / np.size(bkg))), 0.0, ROC_GRID_POINTS)
        idx = np.searchsorted(fpr, grid, side="right") - 1  # last ROC point with fpr <= grid value
        ax.plot(grid, tpr[idx], label=f"{label} (AUROC {metrics.auroc(bkg, sig):.3f})")
    for x in FPR_MARKERS:
        ax.axvline(x, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_xlim(FPR_MIN, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("background efficiency (FPR)")
    ax.set_ylabel("signal efficiency (TPR)")
    ax.set_title(f"ROC: {signal}")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, path)


def plot_score_histograms(
    bkg: Any,
    signals: Mapping[str, Any],
    path: str | os.PathLike[str],
    bins: int = 100,
    title: str = "anomaly score",
) -> Path:
    """Normalized score histograms, background filled and each signal as a line, log-y."""
    b = metrics.as_scores(bkg, "background")
    sigs = {name: metrics.as_scores(s, name) for name, s in signals.items()}
    finite = [a[np.isfinite(a)] for a in (b, *sigs.values())]
    lo = min(a.min() for a in finite if a.size)
    hi = max(a.max() for a in finite if a.size)
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.hist(b, bins=edges, density=True, histtype="stepfilled", alpha=0.3, color="grey", label="background")
    for name, s in sigs.items():
        ax.hist(s, bins=edges, density=True, histtype="step", linewidth=1.5, label=name)
    ax.set_yscale("log")
    ax.set_xlabel(title)
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    return _save(fig, path)


def plot_float_vs_quantized(
    float_scores: Any,
    quantized_scores: Any,
    path: str | os.PathLike[str],
    max_points: int = 50_000,
    seed: int = 0,
) -> Path:
    """Scatter of quantized vs float score per event, correlations (on all events) in the title.

    At most ``max_points`` events (a seeded random subsample) are drawn.
    """
    corr = metrics.score_correlation(float_scores, quantized_scores)
    x = np.asarray(float_scores, dtype=np.float64)
    y = np.asarray(quantized_scores, dtype=np.float64)
    if len(x) > max_points:
        keep = np.random.default_rng(seed).choice(len(x), max_points, replace=False)
        x, y = x[keep], y[keep]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(x, y, s=2, alpha=0.3, rasterized=True)
    lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
    ax.plot([lo, hi], [lo, hi], color="red", linewidth=1, linestyle="--", label="y = x")
    ax.set_xlabel("float score")
    ax.set_ylabel("quantized score")
    ax.set_title(f"pearson {_fmt(corr['pearson'])}, spearman {_fmt(corr['spearman'])}")
    ax.legend(loc="upper left", fontsize="small")
    return _save(fig, path)


def plot_tpr_ratio(
    float_tpr: Mapping[str, float | None],
    quantized_tpr: Mapping[str, float | None],
    path: str | os.PathLike[str],
    fpr: float = 1e-5,
) -> Path:
    """Bar per signal of TPR(quantized) / TPR(float) at ``fpr``; signals where either TPR is missing
    or the float TPR is zero get no bar and an "n/a" label."""
    names = list(float_tpr)
    ratios = []
    for name in names:
        f, q = float_tpr[name], quantized_tpr.get(name)
        ratios.append(q / f if f and q is not None else np.nan)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(names)), 4))
    pos = np.arange(len(names))
    ax.bar(pos, np.nan_to_num(ratios, nan=0.0))
    for p, r in zip(pos, ratios, strict=True):
        ax.annotate(
            "n/a" if np.isnan(r) else f"{r:.3f}", (p, 0 if np.isnan(r) else r), ha="center", va="bottom"
        )
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xticks(pos, names, rotation=20)
    ax.set_ylabel("TPR quantized / float")
    ax.set_title(f"TPR ratio at FPR = {fpr:g}")
    return _save(fig, path)
