"""PNG figures for anomaly-score evaluation (matplotlib, headless Agg backend).

Each function takes an output path, writes the PNG atomically (temp ``.png`` in the same folder, then
``os.replace``), closes its figure and returns the path:

* :func:`plot_roc_curves` - ROC curves for one signal in the trigger region: log TPR vs log FPR,
  a rate axis in kHz, one panel per group of models (L1 / HLT / baselines), mplhep style.
* :func:`plot_score_histograms` - background vs each signal score distribution, log-y.
* :func:`plot_float_vs_quantized` - 2D histogram (log colour) of two scorings of every event.
* :func:`plot_tpr_ratio` - quantized / float TPR at a fixed FPR, one bar per signal.
* :func:`plot_loss_curve` - training and validation loss per epoch, the kept epoch marked.
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


#: font sizes of the evaluation's figures (the CMS style's are sized for one large plot per figure)
EVAL_FONTS = {"font.size": 13, "legend.fontsize": 10}


def hep_style(overrides: Mapping[str, Any] | None = None):
    """mplhep's CMS style with ``overrides`` as a context (the process's other figures keep theirs),
    or plain matplotlib when mplhep is missing: the one home of the project's plot style."""
    import contextlib

    try:
        import mplhep
    except ImportError:  # pragma: no cover - mplhep is a dependency
        return contextlib.nullcontext()
    return plt.style.context([mplhep.style.CMS, dict(overrides or {})])


def plot_roc_curves(
    curves: Mapping[str, tuple[Any, Any]],
    path: str | os.PathLike[str],
    signal: str = "signal",
    groups: Mapping[str, list[str]] | None = None,
) -> Path:
    """ROC curves in the trigger region: TPR vs FPR, both log, one panel per group of models.

    ``curves`` maps a model label to its ``(bkg_scores, sig_scores)``; ``groups`` (e.g. L1 / HLT /
    baselines) maps a panel title to labels of ``curves`` (default: one panel with every curve).
    Each curve is the exact step-wise TPR at FPR values on a log grid starting at
    ``max(1e-6, 1 / n_bkg)``: below one background event the FPR is not measured, so nothing is drawn
    there. The top axis gives the trigger rate at the 40 MHz collision rate.
    """
    groups = dict(groups) if groups else {"": list(curves)}
    unknown = sorted({lbl for labels in groups.values() for lbl in labels} - set(curves))
    if unknown:
        raise ValueError(f"{path}: groups name labels without curves: {unknown}")
    groups = {title: labels for title, labels in groups.items() if labels}
    full_khz = metrics.LHC_COLLISION_RATE_MHZ * 1e3
    with hep_style(EVAL_FONTS):
        fig, axes = plt.subplots(1, len(groups), figsize=(6.5 * len(groups), 6), sharey=True, squeeze=False)
        for ax, (title, labels) in zip(axes[0], groups.items(), strict=True):
            for i, label in enumerate(labels):
                bkg, sig = curves[label]
                fpr, tpr, _ = metrics.roc_curve(bkg, sig)
                grid = np.logspace(np.log10(max(FPR_MIN, 1.0 / np.size(bkg))), 0.0, ROC_GRID_POINTS)
                idx = np.searchsorted(fpr, grid, side="right") - 1  # last ROC point with fpr <= grid value
                style = {
                    "color": plt.cm.tab10(i % 10),
                    "linestyle": ("-", "--", ":")[i // 10 % 3],
                }  # all distinct
                ax.plot(grid, tpr[idx], label=f"{label} (AUROC {metrics.auroc(bkg, sig):.3f})", **style)
            for x in FPR_MARKERS:
                ax.axvline(x, color="grey", linestyle="--", linewidth=1)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(FPR_MIN, 1.0)
            ax.set_ylim(1e-5, 1.05)
            ax.set_xlabel("background efficiency (FPR)")
            ax.set_title(f"{signal}: {title}" if title else signal, fontsize=14, pad=34)
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(loc="lower right")
            top = ax.secondary_xaxis("top", functions=(lambda f: f * full_khz, lambda r: r / full_khz))
            top.set_xlabel("L1 rate [kHz] at 40 MHz")
        axes[0][0].set_ylabel("signal efficiency (TPR)")
        fig.tight_layout()
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
    bins: int = 120,
) -> Path:
    """2D histogram (log colour scale) of quantized vs float score over every event, correlations in
    the title: the tail, a few events among millions, stays visible instead of hiding under a scatter."""
    from matplotlib.colors import LogNorm

    corr = metrics.score_correlation(float_scores, quantized_scores)
    x = np.asarray(float_scores, dtype=np.float64)
    y = np.asarray(quantized_scores, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    lo, hi = min(x.min(), y.min()), max(x.max(), y.max())
    hi = hi if hi > lo else lo + 1.0
    with hep_style(EVAL_FONTS):
        fig, ax = plt.subplots(figsize=(7, 6))
        edges = [
            np.linspace(a.min(), a.max() if a.max() > a.min() else a.min() + 1.0, bins + 1) for a in (x, y)
        ]
        _, _, _, img = ax.hist2d(x, y, bins=edges, norm=LogNorm(vmin=1), cmap="viridis", rasterized=True)
        fig.colorbar(img, ax=ax, label="events")
        ax.plot([lo, hi], [lo, hi], color="red", linewidth=1, linestyle="--", label="y = x")
        ax.set_xlabel("float score")
        ax.set_ylabel("quantized score")
        ax.set_title(f"{len(x):,} events; pearson {_fmt(corr['pearson'])}, spearman {_fmt(corr['spearman'])}",
                     fontsize=12)  # fmt: skip
        ax.legend(loc="upper left")
        fig.tight_layout()
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


def plot_loss_curve(
    history: list[Mapping[str, float]],
    path: str | os.PathLike[str],
    title: str = "",
    train_key: str = "train_dsm",
    val_key: str = "val_dsm",
    best_epoch: int | None = None,
) -> Path:
    """Training and validation loss per epoch (one point per epoch); ``best_epoch`` (the weights
    kept) gets a dashed line. Raises on an empty history."""
    if not history:
        raise ValueError(f"{path}: no training history to plot")
    epochs = [int(h["epoch"]) for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label, style in ((train_key, "training", "o-"), (val_key, "validation", "s-")):
        vals = [h.get(key) for h in history]
        if all(v is not None for v in vals):
            ax.plot(epochs, vals, style, label=f"{label} ({key})")
    if best_epoch:
        ax.axvline(best_epoch, color="grey", linestyle="--", linewidth=1, label=f"kept: epoch {best_epoch}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return _save(fig, path)
