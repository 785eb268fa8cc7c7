"""Baselines every L1 model must beat: single-variable cuts (:mod:`.cuts`) and an IsolationForest
(:mod:`.iforest`, trained into a run directory by :mod:`.train`).

:data:`BASELINES` names them all; :func:`baseline_scores` scores events by name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from l1ad.models.baselines.cuts import (
    CUT_BASELINES,
    CUTS,
    cut_scores,
    ht_score,
    lead_lepton_pt_score,
    met_score,
)
from l1ad.models.baselines.iforest import IsolationForestBaseline

#: Baseline name -> scoring function (cut baselines) or model class (``iforest``, needs fitting).
BASELINES: dict[str, Callable[[np.ndarray], np.ndarray] | type[IsolationForestBaseline]] = {
    **CUTS,
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
    return CUTS[name](particles)


__all__ = [
    "BASELINES",
    "CUT_BASELINES",
    "IsolationForestBaseline",
    "baseline_scores",
    "cut_scores",
    "ht_score",
    "lead_lepton_pt_score",
    "met_score",
]
