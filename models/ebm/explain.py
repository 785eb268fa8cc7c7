"""Per-event attribution of the EBM: the score vector s_theta(x, sigma_min) on its physics inputs (the 57
L1 kinematics, or the 64 HLT features of ``ebm_hlt``: ``MET_pt``, ``mu1_eta``, ``HT``, ``m_ll``, ...).

``s = -grad_x E`` at the lowest noise level points from the event towards higher background density
(standardized units); a large ``|s_i|`` says input ``i`` (e.g. ``"jet3 pT"``) is where the event is
least background-like. Padded (absent) inputs have score exactly 0 and rank last.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

from l1ad.core.files import save_figure
from l1ad.events import schema
from l1ad.models.ebm.networks import model_score
from l1ad.models.ebm.scores import LoadedEBM, load_model, prepare

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

logger = logging.getLogger(__name__)


def attributions(model: str | Path | LoadedEBM, particles: np.ndarray) -> np.ndarray:
    """(N, n) float64 score vectors s_theta(x, sigma_min); columns follow the model's input names
    (:func:`input_names`)."""
    model = load_model(model)
    x, mask = prepare(particles, model.standardizer)
    return model_score(model.net, x, model.sigma_min, mask).double().numpy()


def input_names(model: str | Path | LoadedEBM) -> tuple[str, ...]:
    """Physics names of the model's inputs, in input order."""
    return load_model(model).standardizer.rep.names


def explain_event(
    model: str | Path | LoadedEBM, particles_row: np.ndarray, top_k: int = 10
) -> list[tuple[str, float]]:
    """Top-``k`` ``(physics name, score component)`` of one (19, 4) event, by decreasing ``|value|``."""
    row = np.asarray(particles_row)
    if row.shape == (schema.N_OBJECTS, schema.N_FEATURES):
        row = row[None]
    model = load_model(model)
    values = attributions(model, row)[0]
    names = input_names(model)
    order = np.argsort(-np.abs(values), kind="stable")[:top_k]
    return [(names[i], float(values[i])) for i in order]


def plot_attribution(
    explanation: Sequence[tuple[str, float]], path: str | os.PathLike[str], title: str = "EBM attribution"
) -> Path:
    """Horizontal bar chart of an :func:`explain_event` result, written atomically as PNG."""
    path = Path(path)
    names = [n for n, _ in explanation][::-1]
    values = np.array([v for _, v in explanation][::-1])
    fig, ax = plt.subplots(figsize=(6, 0.35 * max(len(names), 3) + 1))
    ax.barh(names, values, color=np.where(values >= 0, "tab:blue", "tab:red"))
    ax.axvline(0.0, color="k", lw=0.8)
    ax.set_xlabel(r"score $s_\theta(x, \sigma_{min})$ (standardized units)")
    ax.set_title(title)
    return save_png(fig, path)


def save_png(fig: plt.Figure, path: str | os.PathLike[str]) -> Path:
    """Save ``fig`` atomically as PNG and close it."""
    return save_figure(fig, path)
