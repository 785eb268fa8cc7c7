"""The IsolationForest baseline: fit, score, persist, and train into a run directory.

An sklearn ``IsolationForest`` on the 57 kinematic inputs (:func:`schema.kinematics`), scored as
``-score_samples`` so that higher = more anomalous. Defaults follow Liu et al. (2008) and sklearn:
100 trees of 256 events each. Fitting uses a seeded random subsample of at most ``max_fit_events``
(200k) events: each tree only sees 256 events, so a larger pool adds time, not information.
Training into a run directory: :mod:`l1ad.models.baselines.train`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import IsolationForest

from l1ad.core.files import atomic_path
from l1ad.events import schema
from l1ad.models.baselines.cuts import _check_particles

logger = logging.getLogger(__name__)
MODEL_FILE = "model.joblib"


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
