"""Find the trained models of a run directory and score events with each of them.

A run directory holds one sub-directory per trained model with a ``meta.json`` sidecar naming
``model``, ``quantization`` and ``framework`` (``keras``, ``torch`` or ``sklearn``). Keras models are
scored in a fresh process each (native HGQ2 and QKeras-style layers must never share a process).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: The single-variable cut baselines, always evaluated (no training needed).
CUT_BASELINES = ("ht", "met", "lead_lepton_pt")


@dataclass(frozen=True)
class TrainedModel:
    path: Path
    model: str
    quantization: str
    framework: str
    teacher: str | None = None  # students: the label of the model they distil

    @property
    def label(self) -> str:
        return f"{self.model}/{self.quantization}" if self.framework != "sklearn" else self.model


def discover(run_dir: str | Path) -> list[TrainedModel]:
    """Every model directory (with a ``meta.json``) directly under ``run_dir``, sorted by label."""
    found = []
    for meta_path in sorted(Path(run_dir).glob("*/meta.json")):
        meta = json.loads(meta_path.read_text())
        missing = {"model", "quantization", "framework"} - set(meta)
        if missing:
            raise ValueError(f"{meta_path}: missing keys {sorted(missing)}")
        teacher = (meta.get("teacher") or {}).get("label")
        found.append(
            TrainedModel(meta_path.parent, meta["model"], meta["quantization"], meta["framework"], teacher)
        )
    return sorted(found, key=lambda m: m.label)


def score(model: TrainedModel, particles: np.ndarray) -> dict[str, np.ndarray]:
    """Scores of one trained model: ``{label: (N,) float64}`` (several for the energy models)."""
    if model.framework == "keras":
        from l1ad.models.keras_score import score_in_subprocess

        return {model.label: np.asarray(score_in_subprocess(model.path, particles), dtype=np.float64)}
    if model.framework == "torch":
        from l1ad.models.ebm_scores import score as ebm_score

        scores = ebm_score(model.path, particles)
        primary = next(iter(scores))
        return {
            (model.label if name == primary else f"{model.label}:{name}"): np.asarray(s, np.float64)
            for name, s in scores.items()
        }
    if model.framework == "sklearn":
        from l1ad.evaluation.baselines import IsolationForestBaseline

        return {model.label: IsolationForestBaseline.load(model.path / "model.joblib").score(particles)}
    raise ValueError(f"{model.path}/meta.json: unknown framework {model.framework!r}")


def cut_scores(particles: np.ndarray) -> dict[str, np.ndarray]:
    from l1ad.evaluation.baselines import baseline_scores

    return {name: np.asarray(baseline_scores(name, particles), np.float64) for name in CUT_BASELINES}
