"""Training of the IsolationForest baseline into a run directory (``l1ad train --model iforest``)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import sklearn

from l1ad.evaluation.baselines import IsolationForestBaseline
from l1ad.events.io import atomic_write_text, data_hash, read_events

log = logging.getLogger(__name__)


def train_iforest(
    background: str | Path, out: str | Path, seed: int = 0, max_events: int | None = None
) -> Path:
    particles = read_events(background, stop=max_events)
    model_dir = Path(out) / "iforest"
    model_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    model = IsolationForestBaseline(seed=seed).fit(particles)
    seconds = time.perf_counter() - t0
    model.save(model_dir / "model.joblib")
    meta = {
        "model": "iforest",
        "quantization": "float",
        "framework": "sklearn",
        "seed": seed,
        "data_sha256": data_hash(particles),
        "n_train": int(len(particles)),
        "metrics": {"train_seconds": round(seconds, 2)},
        "versions": {"scikit-learn": sklearn.__version__},
    }
    atomic_write_text(model_dir / "meta.json", json.dumps(meta, indent=1))
    log.info("IsolationForest fitted in %.1f s", seconds)
    return model_dir
