"""The service core shared by the REST, OIP-HTTP and OIP-gRPC front ends: score, flag, count, shadow."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.core.versions import l1ad_version
from l1ad.serving import thresholds as thr
from l1ad.serving.inputs import MAX_EVENTS, InputError
from l1ad.serving.metrics import ServiceMetrics
from l1ad.serving.state import ModelHolder, ServeConfig, ServedModel, Shadow, load_served

logger = logging.getLogger(__name__)

#: The largest request body accepted (bytes): 65,536 events of 57 numbers as JSON fit well inside.
MAX_BODY_BYTES = 64 * 1024 * 1024
#: Requests that may wait for the shadow model at once.
SHADOW_BACKLOG = 64


@dataclass(frozen=True)
class Scored:
    model: ServedModel
    scores: np.ndarray
    flags: np.ndarray
    threshold: thr.RateThreshold | None


class Service:
    def __init__(self, cfg: ServeConfig, shadow_run: Path | None = None, max_events: int = MAX_EVENTS,
                 max_body_bytes: int = MAX_BODY_BYTES, reload_root: Path | None = None) -> None:  # fmt: skip
        self.cfg = cfg
        self.reload_root = Path(reload_root) if reload_root else Path(cfg.run_dir).resolve().parent
        self.metrics = ServiceMetrics()
        self.holder = ModelHolder(cfg, on_batch=self.metrics.batch_events.observe)
        self.shadow = Shadow(load_served(cfg, 1, shadow_run)) if shadow_run else None
        self._shadow_pool = ThreadPoolExecutor(1, thread_name_prefix="shadow") if self.shadow else None
        #: at most this many requests wait for the shadow; beyond, the shadow skips them (counted)
        self._shadow_slots = threading.BoundedSemaphore(SHADOW_BACKLOG)
        self.max_events = max_events
        self.max_body_bytes = max_body_bytes
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, float], int] = {}
        self._flagged: dict[tuple[str, float], int] = {}
        self.drift = None  # a DriftMonitor once enable_drift ran
        self._build_info()

    def _build_info(self) -> None:
        m = self.holder.current
        self.metrics.build.info({"l1ad_version": l1ad_version(), "model": m.name, "model_version": str(m.version),
                                 "model_hash": m.hash, "score": m.score_label})  # fmt: skip

    @property
    def model(self) -> ServedModel:
        return self.holder.current

    def model_named(self, name: str) -> ServedModel:
        m = self.holder.current
        if name not in (m.name, m.loaded.label):
            raise InputError(f"unknown model {name!r}; this server serves {m.name!r}", status=404)
        return m

    def threshold(self, model: ServedModel, rate_khz: float | None) -> thr.RateThreshold | None:
        try:
            return model.threshold(rate_khz)
        except KeyError as exc:
            raise InputError(str(exc.args[0]), status=400) from None

    def finish(
        self, model: ServedModel, particles: np.ndarray, scores: np.ndarray, rate_khz: float | None
    ) -> Scored:
        """Flags, counters, shadow for ``scores`` of ``particles`` (already scored by ``model``)."""
        t = self.threshold(model, rate_khz)
        flags = thr.flags(scores, t)
        n = len(scores)
        self.metrics.events.labels(model.name).inc(n)
        if t is not None:
            key, k = f"{t.rate_khz:g}", (model.name, t.rate_khz)
            self.metrics.flagged.labels(model.name, key).inc(int(flags.sum()))
            with self._lock:
                self._seen[k] = self._seen.get(k, 0) + n
                self._flagged[k] = self._flagged.get(k, 0) + int(flags.sum())
                self.metrics.flag_rate.labels(model.name, key).set(self._flagged[k] / self._seen[k])
        if self.shadow is not None:
            if self._shadow_slots.acquire(blocking=False):
                rate = None if t is None else t.rate_khz
                self._shadow_pool.submit(self._observe, particles, scores, flags, rate)
            else:
                self.metrics.shadow_skipped.inc(n)
        if self.drift is not None:  # a copy into its ring buffer; the tests run in its own thread
            self.drift.observe(particles, scores, model)
        return Scored(model, scores, flags, t)

    def enable_drift(self, cfg) -> None:
        """Monitor input and flag-rate drift (:class:`l1ad.serving.drift_monitor.DriftConfig`) in /metrics."""
        from l1ad.serving.drift_monitor import DriftMonitor

        new = DriftMonitor.for_run(cfg, Path(self.cfg.run_dir), self.cfg.model, self.metrics)
        old, self.drift = self.drift, new
        if old is not None:  # a second call replaces the monitor: stop the old one's thread
            old.close()

    def _observe(self, particles, scores, flags, rate) -> None:
        try:
            self.shadow.observe(particles, scores, flags, rate)
            a = self.shadow.agreement()
            self.metrics.shadow_events.inc(len(scores))
            if a["score_correlation"] is not None:
                self.metrics.shadow_corr.set(a["score_correlation"])
            if a["flag_disagreement_ratio"] is not None:
                self.metrics.shadow_disagree.set(a["flag_disagreement_ratio"])
        except Exception:  # the shadow never changes a response
            logger.exception("shadow scoring failed")
        finally:
            self._shadow_slots.release()

    def score_sync(self, particles: np.ndarray, rate_khz: float | None, name: str | None = None) -> Scored:
        """Score from a worker thread (gRPC): through the current model's batcher."""
        model = self.model_named(name) if name else self.model
        self.threshold(model, rate_khz)  # a bad rate fails before scoring
        return self.finish(model, particles, model.score(particles), rate_khz)

    def check_reload_dir(self, run_dir: str) -> Path:
        """A reload target must lie under the reload root (``--reload-root``, default: the folder
        holding the served run): a request cannot make the server unpickle files from anywhere."""
        path = Path(run_dir).expanduser().resolve()
        root = self.reload_root.resolve()
        if path != root and root not in path.parents:
            raise InputError(f"run_dir {run_dir!r} is outside the reload root {str(root)!r}", 403)
        return path

    def reload(self, run_dir: Path | None) -> ServedModel:
        try:
            m = self.holder.reload(run_dir)
        except Exception:
            self.metrics.reloads.labels("refused").inc()
            raise
        self.metrics.reloads.labels("ok").inc()
        self._build_info()
        return m

    def models_info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"models": [self.model.describe()]}
        if self.shadow is not None:
            out["shadow"] = {**self.shadow.served.describe(), "agreement": self.shadow.agreement()}
        return out

    def close(self) -> None:
        if self.drift is not None:
            self.drift.close()
        if self.shadow is not None:
            self._shadow_pool.shutdown(wait=False, cancel_futures=True)
            self.shadow.served.close()
        self.holder.close()
