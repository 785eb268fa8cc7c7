"""The drift plot of ``l1ad monitor``: reference vs monitored distributions of the drifted features.

One panel per feature (at most :data:`MAX_PANELS`, smallest corrected p first; with no drift the
features closest to it, so the figure always shows what was tested), both histograms normalized to
unit area on common bins. KS features: present objects only, log y for pT-like quantities (the tails
are where a scale shift shows); occupancy: the fraction of events with each slot of the type filled
(one panel per type); multiplicity: the fraction of events with k objects, log y. Values beyond the
reference's 99.9% quantile go into the last bin (overflow). mplhep's CMS style when mplhep is
installed, as a style context (the process's other figures keep their style), matplotlib's defaults
otherwise; written with :func:`l1ad.core.files.save_figure`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib
import numpy as np

from l1ad.core.files import save_figure
from l1ad.evaluation.plots import hep_style
from l1ad.events import schema
from l1ad.serving.drift import FeatureTest, InputDrift, Summary

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

logger = logging.getLogger(__name__)

MAX_PANELS = 12
BINS = 40
#: The CMS style's fonts are sized for one plot per figure: smaller for a grid of panels.
GRID_FONTS = {"font.size": 12, "axes.titlesize": 11, "axes.labelsize": 12, "legend.fontsize": 10,
              "xtick.labelsize": 10, "ytick.labelsize": 10}  # fmt: skip


def _slots_of(type_name: str) -> list[int]:
    names = schema.slot_names()
    t = next(t for t in schema.OBJECT_TYPES if t.name == type_name)
    return [names.index(n) for n in names[t.slots]]


def _panel(ax, t: FeatureTest, window: Summary, ref: Summary) -> None:
    title = f"{t.feature}: p = {t.p_corrected:.2g} (corrected)" if t.p_corrected is not None else t.feature
    if t.test == "ks":
        w, r = window.values[t.feature], ref.values[t.feature]
        lo, hi = np.quantile(r, [0.0, 0.999]) if len(r) else (0.0, 1.0)
        edges = np.linspace(min(lo, w.min(initial=lo)), max(hi, lo + 1e-6), BINS + 1)
        for x, label, style in ((r, "reference", {"histtype": "stepfilled", "alpha": 0.35}),
                                (w, "monitored", {"histtype": "step", "linewidth": 1.5})):  # fmt: skip
            ax.hist(np.clip(x, edges[0], edges[-1]), bins=edges, density=True, label=label, **style)
        if t.feature.endswith("_pt") or t.feature == "HT":
            ax.set_yscale("log")
        ax.set_xlabel(t.feature + (" [GeV]" if t.feature.endswith("_pt") or t.feature == "HT" else ""))
        ax.set_ylabel("normalized")
    elif t.test == "occupancy":
        type_name = t.feature.split("_")[0].rstrip("0123456789")
        slots = _slots_of(type_name)
        x = np.arange(1, len(slots) + 1)
        ax.step(x, ref.present[slots] / ref.n_events, where="mid", label="reference")
        ax.step(x, window.present[slots] / window.n_events, where="mid", label="monitored")
        ax.set_xlabel(f"{type_name} slot")
        ax.set_ylabel("events with the slot filled")
        ax.set_yscale("log")
        title = f"{type_name} occupancy: p = {t.p_corrected:.2g} ({t.feature}, corrected)"
    else:
        r, w = ref.multiplicity[t.feature], window.multiplicity[t.feature]
        k = np.arange(len(r))
        ax.step(k, r / r.sum(), where="mid", label="reference")
        ax.step(k, w / max(w.sum(), 1), where="mid", label="monitored")
        ax.set_xlabel(t.feature)
        ax.set_ylabel("fraction of events")
        ax.set_yscale("log")
    ax.set_title(title)
    ax.legend(frameon=False)


def plot_drift(result: InputDrift, window: Summary, reference: Summary, path: str | Path) -> Path:
    """The drift figure of ``result`` (see the module docstring)."""
    candidates = result.drifted or sorted(result.ran, key=lambda t: t.p_corrected)[:4]
    shown, types = [], set()
    for t in candidates:  # one occupancy panel per object type (it shows every slot of the type)
        kind = t.feature.split("_")[0].rstrip("0123456789") if t.test == "occupancy" else None
        if kind is None or kind not in types:
            shown.append(t)
            types.add(kind)
    shown = shown[:MAX_PANELS]
    with hep_style(GRID_FONTS):
        cols = min(3, max(1, len(shown)))
        rows = max(1, -(-len(shown) // cols))
        fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.2 * rows), squeeze=False)
        for ax, t in zip(axes.flat, shown, strict=False):
            _panel(ax, t, window, reference)
        for ax in list(axes.flat)[len(shown) :]:
            ax.set_visible(False)
        verdict = f"{len(result.drifted)} drifted" if result.drift else "no drift"
        fig.suptitle(f"input drift: {verdict} (Holm, alpha = {result.alpha:g}; {window.n_events} vs "
                     f"{reference.n_events} events)", fontsize="medium")  # fmt: skip
        fig.tight_layout()
        return save_figure(fig, path, dpi=110)
