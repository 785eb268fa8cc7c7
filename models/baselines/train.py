"""Training of the IsolationForest baseline into a run directory (``l1ad train --model iforest``):
``<run>/iforest/{model.joblib, meta.json}``."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from l1ad.core.versions import SKLEARN_TOOLS, tool_versions
from l1ad.events.io import data_hash, read_events
from l1ad.models import registry
from l1ad.models.baselines.iforest import MODEL_FILE, IsolationForestBaseline
from l1ad.models.sidecar import write_meta

log = logging.getLogger(__name__)


def train_iforest(
    background: str | Path, out: str | Path, seed: int = 0, max_events: int | None = None
) -> Path:
    particles = read_events(background, stop=max_events)
    model_dir = registry.model_dir(out, "iforest", "float")
    model_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = IsolationForestBaseline(seed=seed).fit(particles)
    seconds = time.perf_counter() - t0
    model.save(model_dir / MODEL_FILE)
    meta = {
        "model": "iforest",
        "quantization": "float",
        "framework": "sklearn",
        "seed": seed,
        "data_sha256": data_hash(particles),
        "n_train": int(len(particles)),
        "metrics": {"train_seconds": round(seconds, 2)},
        "versions": tool_versions(SKLEARN_TOOLS),
    }
    write_meta(model_dir, meta)
    log.info("IsolationForest fitted in %.1f s", seconds)
    return model_dir
