"""What the service serves: a model of a run directory with its thresholds, swapped atomically on
reload, and an optional shadow model scored beside it.

A :class:`ServedModel` is immutable once loaded: the registry's :class:`~l1ad.models.registry.LoadedModel`,
its name (the model directory name, e.g. ``ebm-float``), version (counts loads in this process),
content hash, the served score label and its :class:`~l1ad.serving.thresholds.ThresholdTable`, and a
:class:`~l1ad.serving.batching.Batcher`. :class:`ModelHolder` swaps in a new one only after it loaded
and scored a probe event; requests that already hold the old one finish on it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.events import schema
from l1ad.models import registry
from l1ad.serving import thresholds as thr
from l1ad.serving.batching import Batcher

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeConfig:
    run_dir: Path
    model: str | None = None  # label or directory name; default: the energy model, else the first
    score: str | None = None  # a score label of the model; default: its primary score
    max_batch_events: int = 4096
    max_delay_us: float = 500.0
    input_rate_khz: float | None = None  # with calibration: recalibrate thresholds at this input rate
    calibration: Path | None = None
    rates_khz: tuple[float, ...] = (1.0, 5.0, 10.0, 50.0)


def probe_event() -> np.ndarray:
    """One valid event (MET only) to check a freshly loaded model before it is swapped in."""
    p = np.zeros((1, schema.N_OBJECTS, schema.N_FEATURES), dtype=np.float32)
    p[0, 0] = [10.0, 0.0, 0.0, schema.MET_CLASS]
    p[0, 1] = [30.0, 0.1, 0.2, schema.EGAMMA_CLASS]
    return p


def choose_model(run_dir: Path, name: str | None) -> registry.TrainedModel:
    if name:
        return registry.find(run_dir, name)
    models = registry.discover(run_dir)
    if not models:
        raise FileNotFoundError(f"{run_dir}: no trained models (no */meta.json)")
    preferred = [m for m in models if m.framework == "torch"] or [
        m for m in models if m.quantization == "float"
    ]
    return (preferred or models)[0]


@dataclass
class ServedModel:
    loaded: registry.LoadedModel
    name: str
    version: int
    score_label: str
    table: thr.ThresholdTable
    run_dir: Path
    batcher: Batcher = field(repr=False)

    @property
    def hash(self) -> str:
        return self.loaded.hash

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "version": str(self.version), "hash": self.hash}

    def describe(self) -> dict[str, Any]:
        return {
            **self.info(),
            "label": self.loaded.label,
            "run_dir": str(self.run_dir),
            "framework": self.loaded.trained.framework,
            "score": self.score_label,
            "scores": list(self.loaded.score_labels),
            "inputs": {
                "shape": [-1, schema.N_INPUTS],
                "features": schema.flat_feature_names(),
                "or_shape": [-1, schema.N_OBJECTS, 3],
            },  # fmt: skip
            **self.table.to_dict(),
            "default_rate_khz": self.table.default_rate_khz,
        }

    def score(self, particles: np.ndarray) -> np.ndarray:
        return self.batcher.score(particles)[self.score_label]

    def submit(self, particles: np.ndarray):
        return self.batcher.submit(particles)

    def threshold(self, rate_khz: float | None) -> thr.RateThreshold | None:
        return self.table.resolve(rate_khz)

    def close(self) -> None:
        self.batcher.close()
        self.loaded.close()


def load_served(cfg: ServeConfig, version: int, run_dir: Path | None = None, on_batch=None) -> ServedModel:
    """Load, probe and describe the configured model of ``run_dir`` (default: the configured run)."""
    run_dir = Path(run_dir or cfg.run_dir)
    trained = choose_model(run_dir, cfg.model)
    loaded = registry.load(trained)
    label = cfg.score or loaded.score_labels[0]
    if label not in loaded.score_labels:
        loaded.close()
        raise ValueError(f"{trained.label} has no score {label!r}; it has {list(loaded.score_labels)}")
    try:
        probe = loaded.score(probe_event(), (label,))[label]
        if probe.shape != (1,) or not np.all(np.isfinite(probe)):
            raise ValueError(f"{trained.path}: the probe event scored {probe!r}")
        if cfg.calibration is not None:
            from l1ad.events.io import read_events

            if cfg.input_rate_khz is None:
                raise ValueError(
                    "--calibration needs --input-rate-khz (the rate the calibration events arrive at)"
                )
            bkg = loaded.score(read_events(cfg.calibration), (label,))[label]
            table = thr.recalibrate(bkg, cfg.rates_khz, cfg.input_rate_khz, str(cfg.calibration))
        else:
            table = thr.from_evaluation(run_dir, label)
    except Exception:
        loaded.close()
        raise
    batcher = Batcher(lambda p: loaded.score(p, (label,)), cfg.max_batch_events, cfg.max_delay_us,
                      name=f"batcher-{trained.path.name}-v{version}", on_batch=on_batch)  # fmt: skip
    logger.info(
        "serving %s v%d (%s, score %s, hash %s)", trained.path.name, version, run_dir, label, loaded.hash[:12]
    )
    return ServedModel(loaded, trained.path.name, version, label, table, run_dir, batcher)


class ModelHolder:
    """The current :class:`ServedModel`; :meth:`reload` swaps atomically, the old one retires later."""

    GRACE_S = 30.0

    def __init__(self, cfg: ServeConfig, on_batch=None) -> None:
        self.cfg = cfg
        self.on_batch = on_batch
        self._lock = threading.Lock()
        self._version = 1
        self._current = load_served(cfg, self._version, on_batch=on_batch)
        self._retiring: list[tuple[threading.Timer, ServedModel]] = []

    @property
    def current(self) -> ServedModel:
        return self._current

    def reload(self, run_dir: Path | None = None) -> ServedModel:
        """Load the configured model of ``run_dir`` (default: the current run) and swap it in; on any
        error the current model stays and the error is raised."""
        with self._lock:
            new = load_served(self.cfg, self._version + 1, run_dir or self._current.run_dir, self.on_batch)
            old, self._current = self._current, new
            self._version += 1
            timer = threading.Timer(self.GRACE_S, old.close)  # in-flight requests finish on the old model
            timer.daemon = True
            self._retiring.append((timer, old))
        timer.start()
        return new

    def close(self) -> None:
        """Close the current model and every retiring one now (server shutdown)."""
        with self._lock:
            retiring, self._retiring = self._retiring, []
        for timer, old in retiring:
            timer.cancel()
            old.close()
        self._current.close()


class Shadow:
    """A second model scoring every request in the background; its agreement with the primary."""

    def __init__(self, served: ServedModel) -> None:
        self.served = served
        self._lock = threading.Lock()
        self.n = 0
        self.n_flags = 0
        self.disagree = 0
        self._sums = np.zeros(5)  # x, y, xx, yy, xy

    def observe(
        self, particles: np.ndarray, primary: np.ndarray, primary_flags: np.ndarray, rate: float | None
    ) -> None:
        s = self.served.score(particles)
        rates = {x.rate_khz for x in self.served.table.thresholds}
        t = self.served.threshold(rate) if rate in rates else None
        with self._lock:
            self.n += len(s)
            if t is not None:  # flags are compared where both models have a threshold at the rate
                self.n_flags += len(s)
                self.disagree += int(np.sum(thr.flags(s, t) != primary_flags))
            x, y = np.asarray(primary, np.float64), np.asarray(s, np.float64)
            self._sums += [x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum()]

    def agreement(self) -> dict[str, Any]:
        with self._lock:
            n, (sx, sy, sxx, syy, sxy) = self.n, self._sums
            disagree, n_flags = self.disagree, self.n_flags
        corr = None
        if n > 1:
            vx, vy = sxx / n - (sx / n) ** 2, syy / n - (sy / n) ** 2
            if vx > 0 and vy > 0:
                corr = float((sxy / n - sx * sy / n**2) / np.sqrt(vx * vy))
        return {**self.served.info(), "events": n, "score_correlation": corr, "flag_events": n_flags,
                "flag_disagreement_ratio": disagree / n_flags if n_flags else None}  # fmt: skip
