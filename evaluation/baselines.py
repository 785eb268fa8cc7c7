"""Reference anomaly scores computed from the raw (N, 19, 4) particle array.

* Single-variable cuts (score = the variable, higher = more anomalous): ``ht`` (scalar jet pT sum),
  ``met`` and ``lead_lepton_pt``; they are what a conventional L1 seed would cut on.
* ``iforest``: an sklearn ``IsolationForest`` on the 57 kinematic inputs (:func:`schema.kinematics`),
  scored as ``-score_samples`` so that higher = more anomalous. Defaults follow Liu et al. (2008) and
  sklearn: 100 trees of 256 events each. Fitting uses a seeded random subsample of at most
  ``max_fit_events`` (200k) events: each tree only sees 256 events, so a larger pool adds time, not
  information.

:data:`BASELINES` maps each name to its scoring function or model class; :func:`baseline_scores`
scores events by name.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import IsolationForest

from l1ad.events import schema
from l1ad.events.io import atomic_path

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


class IsolationForestBaseline:
    """Seeded IsolationForest on the 57 kinematic inputs; ``score`` is higher for anomalies."""

    def __init__(
        self,
        seed: int = 0,
        n_estimators: int = 100,
        max_samples: int = 256,
        max_fit_events: int = 200_000,
    ) -> None:
        self.seed = seed
        self.max_fit_events = max_fit_events
        self.model = IsolationForest(n_estimators=n_estimators, max_samples=max_samples, random_state=seed)
        self.fitted = False

    def fit(self, particles: np.ndarray) -> IsolationForestBaseline:
        """Fit on (a seeded subsample of at most ``max_fit_events`` of) the background events."""
        x = schema.kinematics(_check_particles(particles))
        if len(x) > self.max_fit_events:
            rng = np.random.default_rng(self.seed)
            x = x[np.sort(rng.choice(len(x), self.max_fit_events, replace=False))]
            logger.info("IsolationForest: fitting on a %d-event subsample", self.max_fit_events)
        self.model.fit(x)
        self.fitted = True
        return self

    def score(self, particles: np.ndarray) -> np.ndarray:
        """Anomaly score per event: ``-score_samples`` (higher = more anomalous)."""
        if not self.fitted:
            raise RuntimeError("IsolationForestBaseline.score called before fit()")
        return -self.model.score_samples(schema.kinematics(_check_particles(particles)))

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model with joblib, atomically (temp file in the same folder, then rename)."""
        with atomic_path(path) as tmp:
            joblib.dump(self, tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IsolationForestBaseline:
        """Read a model written by :meth:`save` (joblib/pickle: load only files you trust)."""
        obj = joblib.load(path)
        if not isinstance(obj, cls):
            raise TypeError(f"{path} holds a {type(obj).__name__}, not an {cls.__name__}")
        return obj


#: Baseline name -> scoring function (cut baselines) or model class (``iforest``, needs fitting).
BASELINES: dict[str, Callable[[np.ndarray], np.ndarray] | type[IsolationForestBaseline]] = {
    "ht": ht_score,
    "met": met_score,
    "lead_lepton_pt": lead_lepton_pt_score,
    "iforest": IsolationForestBaseline,
}


def baseline_scores(
    name: str, particles: np.ndarray, fitted: IsolationForestBaseline | None = None
) -> np.ndarray:
    """Score events with baseline ``name``.

    ``iforest`` needs ``fitted``, an :class:`IsolationForestBaseline` already fitted on background
    (scoring with a forest fitted on the same events would be biased); the cut baselines ignore it.
    """
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; choose from {sorted(BASELINES)}")
    if name == "iforest":
        if fitted is None:
            raise ValueError("baseline 'iforest' needs a fitted IsolationForestBaseline (fitted=...)")
        return fitted.score(particles)
    return BASELINES[name](particles)
