"""Train any model kind into a run directory: the one entry ``l1ad train`` and the pipeline call.

Dispatches on the registry's kind of model: Keras L1 models (:mod:`l1ad.models.keras.train`), the
PyTorch energy/score models (:mod:`l1ad.models.ebm.train`), the IsolationForest baseline
(:mod:`l1ad.models.baselines.train`); the student first gets its teacher's targets
(:mod:`l1ad.models.distill`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from l1ad.models import distill, registry

logger = logging.getLogger(__name__)


def train(
    model: str,
    quantization: str,
    background: str | Path,
    out: str | Path,
    config: str | Path | None = None,
    seed: int = 0,
    epochs: int | None = None,
    resume: bool = False,
    max_events: int | None = None,
    teacher: str | Path | None = None,
) -> Path:
    """Train ``model`` in style ``quantization`` on ``background`` into run directory ``out``; return its directory."""
    kind = registry.check(model, quantization)
    common = dict(background=background, out=Path(out), config=config, seed=seed, epochs=epochs,
                  resume=resume, max_events=max_events)  # fmt: skip
    if kind.framework == "torch":
        from l1ad.models.ebm.train import train_model

        return train_model(model, **common)
    if kind.framework == "sklearn":
        from l1ad.models.baselines.train import train_iforest

        return train_iforest(background, out, seed=seed, max_events=max_events)
    from l1ad.models.keras.train import train_model

    if model != "student":
        return train_model(model, quantization, **common)
    from l1ad.events.io import read_events

    teacher_dir = distill.find_teacher(out, teacher)
    logger.info("student teacher: %s", teacher_dir)
    values, transform, constants = distill.teacher_target(
        teacher_dir, read_events(background, stop=max_events)
    )
    path = train_model(model, quantization, **common, teacher_scores=values, teacher_transform=transform)
    distill.record_teacher(path, teacher_dir, transform, constants)
    return path
