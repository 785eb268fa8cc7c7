"""Single-variable cut baselines computed from the raw (N, 19, 4) particle array.

Score = the variable, higher = more anomalous: ``ht`` (scalar jet pT sum), ``met`` and
``lead_lepton_pt``; they are what a conventional L1 seed would cut on. They need no training and are
evaluated beside every run's models (:data:`CUT_BASELINES`, :func:`cut_scores`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from l1ad.events import schema

logger = logging.getLogger(__name__)


def _check_particles(particles: np.ndarray) -> np.ndarray:
    arr = np.asarray(particles)
    expected = (schema.N_OBJECTS, schema.N_FEATURES)
    if arr.ndim != 3 or arr.shape[1:] != expected:
        raise ValueError(f"particles must have shape (N, {expected[0]}, {expected[1]}), got {arr.shape}")
    if len(arr) == 0:
        raise ValueError("particles array is empty")
    return arr


def ht_score(particles: np.ndarray) -> np.ndarray:
    """HT (scalar sum of jet pT, GeV) per event."""
    return schema.ht(_check_particles(particles)).astype(np.float64)


def met_score(particles: np.ndarray) -> np.ndarray:
    """Missing transverse energy (GeV) per event."""
    return schema.met(_check_particles(particles)).astype(np.float64)


def lead_lepton_pt_score(particles: np.ndarray) -> np.ndarray:
    """Leading e/gamma or muon pT (GeV) per event."""
    return schema.leading_lepton_pt(_check_particles(particles)).astype(np.float64)


#: The single-variable cut baselines, always evaluated (no training needed).
CUTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "ht": ht_score,
    "met": met_score,
    "lead_lepton_pt": lead_lepton_pt_score,
}
CUT_BASELINES = tuple(CUTS)


def cut_scores(particles: np.ndarray) -> dict[str, np.ndarray]:
    """``{cut name: (N,) float64}`` for every cut baseline."""
    return {name: np.asarray(fn(particles), np.float64) for name, fn in CUTS.items()}
