"""Anomaly scores of a trained EBM / score network (higher = more anomalous).

Scores, reported side by side under these names:

``energy``
    E_theta(x, sigma_min). For the score network (no energy of its own) the path integral
    ``-int_0^1 s(t x, sigma_min) . x dt`` (:func:`~l1ad.models.ebm.networks.path_integral_energy`).
``score_norm``
    ``mean_{l in lowest k levels} sigma_l * ||s_theta(x, sigma_l)||`` with ``k = score_norm_levels``
    (the seed notebook's choice, kept as an ablation; sigma_l makes the levels commensurate).
``multiscale_gmm``
    The per-level feature vector (energy network: ``E(x, sigma_l)``; score network:
    ``sigma_l ||s(x, sigma_l)||``), standardized with background mean/std, scored by a
    :class:`sklearn.mixture.GaussianMixture` fitted on background (validation split):
    ``-log p_GMM(features)``.
``pattern_density``
    ``-log p(x) = -log P(pattern) - log p(x_live | pattern)``: the energy calibrated per pattern of
    present objects on background, so events of different multiplicities are compared on a density
    (:mod:`~l1ad.models.ebm.pattern_density`). Models trained before it existed do not offer it.
``pattern_tail``
    ``-log P(pattern) - log t``: the pattern's rarity plus the event's background tail probability
    within its pattern (from the same calibration; a tail probability, not a density).

Which one the energy model is reported with is chosen on validation background by
:mod:`l1ad.evaluation.score_choice`, never on signals.

The student's teacher is defined once, in :mod:`l1ad.models.distill`.
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from l1ad.events import schema
from l1ad.events.encoding import Standardizer
from l1ad.models.ebm import pattern_density
from l1ad.models.ebm.config import EBMConfig, load_config
from l1ad.models.ebm.dsm import sigmas_for
from l1ad.models.ebm.networks import EnergyNet, build_network, model_energy, model_score, path_integral_energy
from l1ad.models.sidecar import read_meta

logger = logging.getLogger(__name__)

#: the network's own scores (each has a TorchScript/ONNX/Triton export)
SCORE_NAMES = ("energy", "score_norm", "multiscale_gmm")
#: scores calibrated on background after training (numpy post-processing of the energy; not exported)
#: ``pattern_density``: -log p(x), a density comparable across patterns of present objects;
#: ``pattern_tail``: -log P(pattern) - log t, the pattern's rarity times the event's tail within it
CALIBRATED_SCORES = ("pattern_density", "pattern_tail")
ALL_SCORES = SCORE_NAMES + CALIBRATED_SCORES
MODEL_FILE, STANDARDIZER_FILE, GMM_FILE = "model.pt", "standardizer.json", "gmm.pkl"
#: the score chosen on validation background (:mod:`l1ad.evaluation.score_choice`); retraining removes it
CHOICE_FILE = "score_choice.json"


@dataclass
class LoadedEBM:
    """A trained model with everything needed to score raw (N, 19, 4) particles."""

    name: str  # "ebm", "ebm_hlt" or "score"
    net: nn.Module
    config: EBMConfig
    standardizer: Standardizer
    #: the fitted mixture of the multiscale score, or its ``gmm.pkl``, unpickled on first use (a scorer
    #: of the energy alone never imports sklearn: ~120 MiB less in every Dask worker)
    gmm_source: dict[str, Any] | Path | None = field(default=None, repr=False)
    meta: dict[str, Any] = field(default_factory=dict)
    #: the per-pattern calibration of ``pattern_density`` (``pattern.json``), loaded on first use
    pattern_source: dict[str, Any] | Path | None = field(default=None, repr=False)

    @property
    def pattern(self) -> dict[str, Any] | None:
        if isinstance(self.pattern_source, Path):
            self.pattern_source = pattern_density.load(self.pattern_source)
        return self.pattern_source

    @property
    def score_names(self) -> tuple[str, ...]:
        """The scores this model offers (``pattern_density`` needs its calibration file)."""
        return SCORE_NAMES + (CALIBRATED_SCORES if self.pattern_source is not None else ())

    @property
    def gmm(self) -> dict[str, Any] | None:
        """The fitted GaussianMixture of the multiscale score (None when the model has none)."""
        if isinstance(self.gmm_source, Path):
            with open(self.gmm_source, "rb") as fh:
                self.gmm_source = pickle.load(fh)  # noqa: S301 - our own artifact
        return self.gmm_source

    @property
    def sigmas(self) -> np.ndarray:
        return sigmas_for(self.config)

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[-1])


#: Batches are padded to at least this many rows: below it the CPU matrix kernels change (matrix-vector
#: paths) and an event's score would depend on how many events share its call. At and above it, an
#: event scores the same bits alone, in a server's dynamic batch, or in a 1M-event evaluation (tested).
MIN_ROWS = 16


def prepare(particles: np.ndarray, standardizer: Standardizer) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 19, 4) particles -> standardized inputs (N, n) and float live mask (N, n), float32 tensors
    (n: the inputs of the standardizer's representation)."""
    particles = np.asarray(particles)
    if particles.ndim != 3 or particles.shape[1:] != (schema.N_OBJECTS, schema.N_FEATURES):
        raise ValueError(f"particles must have shape (N, 19, 4), got {particles.shape}")
    x, mask = standardizer.transform_with_mask(particles)
    return torch.from_numpy(x), torch.from_numpy(mask.astype(np.float32))


def _chunks(particles: np.ndarray, model: LoadedEBM):
    """``(n_real, x, mask)`` per batch of ``score_batch`` events, each padded to :data:`MIN_ROWS` rows."""
    bs = max(model.config.score_batch, MIN_ROWS)
    for start in range(0, len(particles), bs):
        x, mask = prepare(particles[start : start + bs], model.standardizer)
        n = x.shape[0]
        if n < MIN_ROWS:
            x = torch.cat([x, x.new_zeros(MIN_ROWS - n, x.shape[1])])
            mask = torch.cat([mask, mask.new_zeros(MIN_ROWS - n, mask.shape[1])])
        yield n, x, mask


def load_model(model_dir: str | Path | LoadedEBM) -> LoadedEBM:
    """Load ``<out>/<name>-float/`` written by :func:`~l1ad.models.ebm.train.train_model`."""
    if isinstance(model_dir, LoadedEBM):
        return model_dir
    model_dir = Path(model_dir)
    meta = read_meta(model_dir, framework="torch")
    config = load_config(meta["config"])
    net = build_network(meta["model"], config)
    net.load_state_dict(torch.load(model_dir / MODEL_FILE, map_location="cpu", weights_only=True))
    net.eval()
    gmm_file = model_dir / GMM_FILE if (model_dir / GMM_FILE).exists() else None
    std = Standardizer.load(model_dir / STANDARDIZER_FILE)
    inputs = config.for_model(meta["model"]).inputs
    if std.representation != inputs:
        raise ValueError(
            f"{model_dir}: {STANDARDIZER_FILE} standardizes representation {std.representation!r}, the "
            f"config's inputs are {inputs!r}"
        )
    pattern_file = model_dir / pattern_density.PATTERN_FILE
    pattern = pattern_file if pattern_file.exists() else None
    return LoadedEBM(meta["model"], net, config, std, gmm_file, meta, pattern)


def _energy(model: LoadedEBM, x: torch.Tensor, mask: torch.Tensor, sigma: float) -> torch.Tensor:
    if isinstance(model.net, EnergyNet):
        return model_energy(model.net, x, sigma, mask)
    return path_integral_energy(model.net, x, sigma, mask, model.config.energy_quadrature)


def raw_scores(
    model: LoadedEBM, x: torch.Tensor, mask: torch.Tensor, features: bool = True
) -> dict[str, np.ndarray]:
    """``energy``, ``score_norm`` and (``features=True``) the per-level ``features`` (N, L) of one
    batch (float64). Without the features only the ``score_norm_levels`` lowest sigmas are evaluated."""
    sigmas = model.sigmas
    k = model.config.score_norm_levels
    norms = np.empty((x.shape[0], len(sigmas)))
    for j in range(len(sigmas) - k, len(sigmas)):
        s = model_score(model.net, x, float(sigmas[j]), mask)
        norms[:, j] = sigmas[j] * torch.linalg.vector_norm(s.double(), dim=1).numpy()
    out = {
        "energy": _energy(model, x, mask, float(sigmas[-1])).double().numpy(),
        "score_norm": norms[:, -k:].mean(axis=1),
    }
    if not features:
        return out
    if isinstance(model.net, EnergyNet):
        feats = np.stack([_energy(model, x, mask, float(s)).double().numpy() for s in sigmas], axis=1)
    else:
        for j in range(len(sigmas) - k):
            s = model_score(model.net, x, float(sigmas[j]), mask)
            norms[:, j] = sigmas[j] * torch.linalg.vector_norm(s.double(), dim=1).numpy()
        feats = norms
    return {**out, "features": feats.copy()}


def batched_raw_scores(
    model: LoadedEBM, particles: np.ndarray, features: bool = True
) -> dict[str, np.ndarray]:
    """:func:`raw_scores` over all events in batches of ``config.score_batch``."""
    model.net.eval()
    parts: list[dict[str, np.ndarray]] = []
    for n, x, mask in _chunks(particles, model):
        parts.append({k: v[:n] for k, v in raw_scores(model, x, mask, features).items()})
    if not parts:
        empty = {"energy": np.zeros(0), "score_norm": np.zeros(0)}
        return {**empty, "features": np.zeros((0, len(model.sigmas)))} if features else empty
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def fit_gmm(features: np.ndarray, n_components: int, seed: int) -> dict[str, Any]:
    """Standardize the per-level features and fit a full-covariance GaussianMixture."""
    from sklearn.mixture import GaussianMixture

    mean = features.mean(axis=0)
    std = np.where(features.std(axis=0) > 1e-12, features.std(axis=0), 1.0)
    gmm = GaussianMixture(
        n_components=n_components, covariance_type="full", reg_covar=1e-4, random_state=seed
    )
    gmm.fit((features - mean) / std)
    return {"gmm": gmm, "mean": mean, "std": std}


def gmm_nll(gmm: dict[str, Any], features: np.ndarray) -> np.ndarray:
    """``-log p_GMM`` of the standardized features, (N,) float64."""
    z = (np.asarray(features, dtype=np.float64) - gmm["mean"]) / gmm["std"]
    n = len(z)
    if n < MIN_ROWS:  # the same BLAS path for one event as for many (see MIN_ROWS)
        z = np.concatenate([z, np.zeros((MIN_ROWS - n, z.shape[1]))])
    return -gmm["gmm"].score_samples(z)[:n].astype(np.float64)


def score(
    model_dir: str | Path | LoadedEBM, particles: np.ndarray, names: tuple[str, ...] = SCORE_NAMES
) -> dict[str, np.ndarray]:
    """The anomaly scores (float64, (N,)), higher = more anomalous, keyed by :data:`ALL_SCORES`.

    ``names`` selects a subset: ``("energy",)`` alone needs one network evaluation per event.
    """
    unknown = set(names) - set(ALL_SCORES)
    if unknown:
        raise ValueError(f"unknown EBM scores {sorted(unknown)}; choose from {ALL_SCORES}")
    model = load_model(model_dir)
    calibrated = set(names) & set(CALIBRATED_SCORES)
    if calibrated and model.pattern is None:
        raise ValueError(f"model has no {pattern_density.PATTERN_FILE}: retrain it for {sorted(calibrated)}")
    if set(names) <= {"energy", *CALIBRATED_SCORES}:
        out = {"energy": batched_energy(model, particles)}
        out.update(_calibrated(model, out["energy"], particles, calibrated))
        return {k: out[k] for k in ALL_SCORES if k in names}
    need_gmm = "multiscale_gmm" in names
    if need_gmm and model.gmm is None:
        raise ValueError("model has no fitted GMM (gmm.pkl); train it with train_model")
    raw = batched_raw_scores(model, particles, features=need_gmm)
    out = {"energy": raw["energy"], "score_norm": raw["score_norm"]}
    if need_gmm:
        out["multiscale_gmm"] = gmm_nll(model.gmm, raw["features"])
    out.update(_calibrated(model, raw["energy"], particles, calibrated))
    return {k: out[k] for k in ALL_SCORES if k in names}


def _calibrated(
    model: LoadedEBM, energy: np.ndarray, particles: np.ndarray, names: set[str]
) -> dict[str, np.ndarray]:
    """The :data:`CALIBRATED_SCORES` in ``names``, from the energy and the pattern calibration."""
    out: dict[str, np.ndarray] = {}
    mask = model.standardizer.mask(particles) if names else None
    if "pattern_density" in names:
        out["pattern_density"] = pattern_density.score(model.pattern, energy, mask)
    if "pattern_tail" in names:
        log_p, log_t = pattern_density.terms(model.pattern, energy, mask)
        out["pattern_tail"] = -log_p - log_t
    return out


def batched_energy(model: LoadedEBM, particles: np.ndarray) -> np.ndarray:
    """The ``energy`` score alone (E at sigma_min), batched, (N,) float64."""
    model.net.eval()
    out = [np.zeros(0)]
    for n, x, mask in _chunks(particles, model):
        out.append(_energy(model, x, mask, model.sigma_min).double().numpy()[:n])
    return np.concatenate(out)


def fit_pattern(model: LoadedEBM, particles: np.ndarray) -> dict[str, Any]:
    """The per-pattern calibration (:func:`~l1ad.models.ebm.pattern_density.fit`) of the model's energy
    on ``particles`` (background events), in the model's standardized coordinates."""
    x, mask = model.standardizer.transform_with_mask(particles)
    return pattern_density.fit(batched_energy(model, particles), x.astype(np.float64), mask)
