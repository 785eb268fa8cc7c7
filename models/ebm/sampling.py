"""Annealed Langevin sampling from a trained EBM / score network and comparison with real background.

Absent objects: samples are drawn **conditional on the object-multiplicity pattern** of real
background events. Each sample takes the mask of one real event (which slots hold an object); only
those entries are sampled, padded slots stay exactly 0 (un-standardized: pT = eta = phi = class = 0),
and the class column is the slot's class where present. Multiplicities of *present* objects therefore
match by construction; the non-trivial multiplicity compared is the number of objects with sampled pT
above the slot's L1 threshold (``n_above_threshold``).

Annealed Langevin (Song & Ermon 2019), levels sigma_1 > ... > sigma_L::

    x_0 ~ N(0, sigma_1^2 I) * m
    for each level l: alpha_l = step_size * sigma_l^2 / sigma_L^2, T steps of
        x <- x + alpha_l / 2 * s(x, sigma_l) + sqrt(alpha_l) * z * m,   z ~ N(0, I)
    x <- x + sigma_L^2 * s(x, sigma_L)          (final Tweedie denoising step)

Comparison (:func:`compare_with_background`): HT, MET, leading lepton pT, leading jet pT and
``n_above_threshold``; per quantity a two-sample Kolmogorov-Smirnov test (``scipy.stats.ks_2samp``);
plus a classifier two-sample test on the 57 standardized inputs + summaries (gradient-boosted trees,
held-out AUC; 0.5 = indistinguishable, binomial p-value of the held-out accuracy).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from l1ad.events import schema
from l1ad.models.ebm.explain import plt, save_png
from l1ad.models.ebm.networks import model_score
from l1ad.models.ebm.scores import LoadedEBM, load_model, prepare

logger = logging.getLogger(__name__)

QUANTITIES = ("HT", "MET", "leading_lepton_pT", "leading_jet_pT", "n_above_threshold")


def annealed_langevin(
    net: torch.nn.Module,
    mask: torch.Tensor,
    sigmas: np.ndarray,
    n_steps: int = 20,
    step_size: float = 2e-5,
    seed: int = 0,
    denoise: bool = True,
) -> torch.Tensor:
    """Samples (N, 57) in standardized units for the (N, 57) float mask (zero where ``mask`` is 0)."""
    gen = torch.Generator().manual_seed(seed)
    sig = [float(s) for s in sigmas]
    x = torch.randn(mask.shape, generator=gen) * sig[0] * mask
    for sigma in sig:
        alpha = step_size * (sigma / sig[-1]) ** 2
        for _ in range(n_steps):
            z = torch.randn(mask.shape, generator=gen)
            x = x + 0.5 * alpha * model_score(net, x, sigma, mask) + np.sqrt(alpha) * z * mask
    if denoise:
        x = x + sig[-1] ** 2 * model_score(net, x, sig[-1], mask)
    return x * mask


def to_particles(x: np.ndarray, mask19: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Un-standardize (N, 57) samples into (N, 19, 4) particles (absent slots zero, pT clipped >= 0)."""
    phys = (np.asarray(x, np.float64) * std + mean).reshape(len(x), schema.N_OBJECTS, 3)
    out = np.zeros((len(x), schema.N_OBJECTS, schema.N_FEATURES), dtype=np.float32)
    out[:, :, :3] = np.where(mask19[:, :, None], phys, 0.0)
    out[:, :, schema.PT] = np.maximum(out[:, :, schema.PT], 0.0)
    out[:, :, schema.CLASS] = np.where(mask19, schema.SLOT_CLASS[None, :], schema.PADDING_CLASS)
    return out


def sample_like(
    model: str | Path | LoadedEBM,
    background: np.ndarray,
    n_steps: int = 20,
    step_size: float = 2e-5,
    seed: int = 0,
) -> np.ndarray:
    """One sampled (19, 4) event per background event, with that event's object mask fixed."""
    model = load_model(model)
    if model.standardizer.representation != "l1":
        raise ValueError(
            f"{model.name}: Langevin samples map back to events only on the 57 L1 inputs, not on "
            f"{model.standardizer.representation!r}"
        )
    _, mask = prepare(background, model.standardizer)
    x = annealed_langevin(model.net, mask, model.sigmas, n_steps, step_size, seed).numpy()
    std = model.standardizer
    return to_particles(x, schema.present(background), np.asarray(std.mean), np.asarray(std.std))


def summary_quantities(particles: np.ndarray) -> dict[str, np.ndarray]:
    """Per-event HT, MET, leading lepton/jet pT and number of objects above their L1 threshold."""
    above = (particles[:, :, schema.PT] > schema.SLOT_PT_MIN[None, :]) & schema.present(particles)
    return {
        "HT": schema.ht(particles).astype(np.float64),
        "MET": schema.met(particles).astype(np.float64),
        "leading_lepton_pT": schema.leading_lepton_pt(particles).astype(np.float64),
        "leading_jet_pT": particles[:, schema.JET.first_slot, schema.PT].astype(np.float64),
        "n_above_threshold": above[:, 1:].sum(axis=1).astype(np.float64),
    }


def classifier_two_sample_test(a: np.ndarray, b: np.ndarray, seed: int = 0) -> dict[str, float]:
    """C2ST: held-out AUC/accuracy of a classifier separating ``a`` from ``b`` (rows = events)."""
    from scipy.stats import binomtest
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import train_test_split

    feats = np.concatenate([a, b])
    labels = np.r_[np.zeros(len(a)), np.ones(len(b))]
    x_tr, x_te, y_tr, y_te = train_test_split(
        feats, labels, test_size=0.5, random_state=seed, stratify=labels
    )
    clf = HistGradientBoostingClassifier(max_iter=100, random_state=seed).fit(x_tr, y_tr)
    prob = clf.predict_proba(x_te)[:, 1]
    correct = int(((prob > 0.5) == (y_te > 0.5)).sum())
    return {
        "auc": float(roc_auc_score(y_te, prob)),
        "accuracy": correct / len(y_te),
        "p_value": float(binomtest(correct, len(y_te), 0.5, alternative="greater").pvalue),
        "n_test": int(len(y_te)),
    }


def compare_with_background(
    model: str | Path | LoadedEBM,
    background: np.ndarray,
    plot_path: str | os.PathLike[str] | None = None,
    n_steps: int = 20,
    step_size: float = 2e-5,
    seed: int = 0,
) -> dict[str, Any]:
    """Sample like ``background``, then compare; returns a JSON-ready dict of statistics."""
    from scipy.stats import ks_2samp

    model = load_model(model)
    samples = sample_like(model, background, n_steps, step_size, seed)
    real_q, fake_q = summary_quantities(background), summary_quantities(samples)
    stats: dict[str, Any] = {"n_events": int(len(background)), "n_steps": n_steps, "step_size": step_size}
    for q in QUANTITIES:
        ks = ks_2samp(real_q[q], fake_q[q])
        stats[q] = {
            "ks_statistic": float(ks.statistic),
            "ks_p_value": float(ks.pvalue),
            "mean_real": float(real_q[q].mean()),
            "mean_sampled": float(fake_q[q].mean()),
        }
    x_real, _ = prepare(background, model.standardizer)
    x_fake, _ = prepare(samples, model.standardizer)
    feats_real = np.column_stack([x_real.numpy()] + [real_q[q] for q in QUANTITIES])
    feats_fake = np.column_stack([x_fake.numpy()] + [fake_q[q] for q in QUANTITIES])
    stats["c2st"] = classifier_two_sample_test(feats_real, feats_fake, seed)
    stats["finite"] = bool(np.isfinite(samples).all())
    if plot_path is not None:
        stats["plot"] = str(plot_overlays(real_q, fake_q, plot_path))
    logger.info("Langevin vs background: C2ST AUC %.3f", stats["c2st"]["auc"])
    return stats


def plot_overlays(
    real: dict[str, np.ndarray], sampled: dict[str, np.ndarray], path: str | os.PathLike[str]
) -> Path:
    """Overlaid histograms (real vs sampled) of the summary quantities, one panel each, PNG."""
    fig, axes = plt.subplots(1, len(QUANTITIES), figsize=(4 * len(QUANTITIES), 3.2))
    for ax, q in zip(axes, QUANTITIES, strict=True):
        both = np.concatenate([real[q], sampled[q]])
        if q == "n_above_threshold":
            bins = np.arange(both.min() - 0.5, both.max() + 1.5)
        else:
            bins = np.linspace(both.min(), np.quantile(both, 0.995) + 1e-9, 40)
        ax.hist(real[q], bins=bins, histtype="step", density=True, label="background", color="k")
        ax.hist(sampled[q], bins=bins, histtype="step", density=True, label="Langevin", color="tab:orange")
        ax.set_xlabel(q + ("" if q == "n_above_threshold" else " [GeV]"))
        ax.set_yscale("log")
    axes[0].legend()
    return save_png(fig, path)
