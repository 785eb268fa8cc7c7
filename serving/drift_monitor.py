"""The service's drift monitor: sliding windows of the scored events, tested in a background thread.

The request path only copies each request's particles into a ring buffer of the last ``window``
events and its flags (at the *monitored* threshold, the served model's default rate, whatever rate a
request asked for) into a boolean ring (one ``memcpy`` and a comparison, under a lock). A daemon
thread runs :func:`~l1ad.serving.drift.compare` and :func:`~l1ad.serving.drift_flags.flag_rate_test`
once ``window`` new events have arrived, at most every ``min_interval_s`` seconds, and publishes the
result as gauges (:class:`~l1ad.serving.metrics.ServiceMetrics`): so one evaluation is a fresh input
window, and a fast input stream costs at most one evaluation (about 50 ms of CPU for 10k events) per
interval.

**What alpha means here.** The two alerts are separate gauges, ``l1ad_drift_alert{kind="input"}`` and
``{kind="output"}``, each tested at ``alpha`` per *evaluation*: under no drift each fires on a given
evaluation with probability at most ``alpha`` (the input family Holm-corrected), so either one with
at most ``2 alpha`` (``l1ad monitor``, one verdict, splits alpha instead). Over many evaluations false
alarms do come, about ``alpha`` of them: an alert rule should ask for several evaluations in a row.
The input windows do not overlap; the flag window is longer and slides, so each evaluation re-tests
mostly the same flags -- successive output tests are strongly correlated, and their false-alarm rate
is per evaluation, not per independent window.

The flag window is as long as the test needs to resolve a factor-``flag_rate_factor`` change both
ways (:func:`~l1ad.serving.drift_flags.flag_window_events`, from the threshold's calibration counts),
at least ``window`` and at most ``max_flag_window`` events; ``window`` when the calibration has too
few events above threshold for any length to do (the output is then "not tested":
``l1ad_flag_rate_tested`` 0). It restarts when the served model or its threshold changes; the input
reference stays the one loaded at start.

The reference is built synchronously by :meth:`DriftMonitor.for_run` (a 100k-event sample of the
training rows, read and hashed: seconds for a local file, logged with its duration): a missing or
changed training file then fails at start, where ``l1ad serve`` decides to refuse or to serve without
drift monitoring, rather than later in a thread nobody watches.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.events import schema
from l1ad.serving import drift, drift_flags
from l1ad.serving.drift_reference import REFERENCE_EVENTS, load_reference

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriftConfig:
    window: int = 10_000  # events per input-drift window
    alpha: float = drift.DEFAULT_ALPHA  # per evaluation, for each of the input and output alerts
    flag_rate_factor: float = drift_flags.DEFAULT_FLAG_FACTOR
    reference: Path | None = None  # event file; default: the served model's training rows
    reference_events: int = REFERENCE_EVENTS
    min_interval_s: float = 5.0
    max_flag_window: int = 10_000_000

    def __post_init__(self) -> None:
        if self.window < drift.MIN_PRESENT:
            raise ValueError(
                f"the drift window must hold at least {drift.MIN_PRESENT} events, got {self.window}"
            )
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"the drift alpha must lie in (0, 1), got {self.alpha}")
        if self.flag_rate_factor <= 1.0:
            raise ValueError(f"the flag-rate factor must exceed 1, got {self.flag_rate_factor}")


class _Ring:
    """The last ``size`` rows of a stream (numpy ring buffer)."""

    def __init__(self, size: int, shape: tuple[int, ...], dtype) -> None:
        self.data = np.zeros((size, *shape), dtype=dtype)
        self.pos = 0
        self.filled = 0

    def push(self, rows: np.ndarray) -> int:
        """Write ``rows`` (the last ``size`` of them); return the sum of the entries they overwrote
        (empty entries are 0), for running counts."""
        size = len(self.data)
        rows = rows[-size:]
        n, gone = len(rows), 0
        first = min(n, size - self.pos)
        for dst, src in (
            (slice(self.pos, self.pos + first), rows[:first]),
            (slice(0, n - first), rows[first:]),
        ):
            if self.data.dtype == bool:
                gone += int(self.data[dst].sum())
            self.data[dst] = src
        self.pos = (self.pos + n) % size
        self.filled = min(size, self.filled + n)
        return gone

    def snapshot(self) -> np.ndarray:
        """The held rows, oldest first."""
        if self.filled < len(self.data):
            return self.data[: self.filled].copy()
        return np.concatenate([self.data[self.pos :], self.data[: self.pos]])


class _FlagWindow:
    def __init__(self, counts: tuple[int, int], size: int) -> None:
        self.k_cal, self.n_cal = counts
        self.ring = _Ring(size, (), bool)
        self.flagged = 0

    def push(self, flags: np.ndarray) -> None:
        gone = self.ring.push(flags)
        self.flagged += int(flags[-len(self.ring.data) :].sum()) - gone


class DriftMonitor:
    def __init__(self, cfg: DriftConfig, reference: drift.Summary, metrics=None, start: bool = True) -> None:
        self.cfg = cfg
        self.reference = reference
        self.metrics = metrics
        self._lock = threading.Lock()
        self._events = _Ring(cfg.window, (schema.N_OBJECTS, schema.N_FEATURES), np.float32)
        self._flags: _FlagWindow | None = None  # None: no threshold, or no calibration counts
        self._flag_key: tuple | None = None  # (model name, version, threshold value) of _flags
        self._new = 0  # events since the last evaluation
        self._last = -math.inf
        self.last: dict[str, Any] | None = None
        self._wake, self._stop = threading.Event(), threading.Event()
        self._done = threading.Condition()
        self.evaluations = 0
        self._thread = threading.Thread(target=self._run, name="drift-monitor", daemon=True)
        if start:
            self._thread.start()

    @classmethod
    def for_run(cls, cfg: DriftConfig, run_dir: Path, model: str | None = None, metrics=None) -> DriftMonitor:
        """A monitor against ``cfg.reference`` or the training rows of the run's model (module docstring)."""
        t0 = time.monotonic()
        ref = load_reference(run_dir, model, cfg.reference, cfg.reference_events)
        logger.info("drift reference of %d events built in %.1f s", ref.n_events, time.monotonic() - t0)
        return cls(cfg, ref, metrics)

    def _flag_size(self, k_cal: int, n_cal: int) -> int:
        """The flag window length (module docstring)."""
        c = self.cfg
        n = drift_flags.flag_window_events(
            k_cal, n_cal, c.flag_rate_factor, c.alpha, c.window, c.max_flag_window
        )
        if n is not None:
            return n
        enough = k_cal >= drift_flags.min_calibration_count(c.flag_rate_factor, c.alpha)
        return c.max_flag_window if enough else c.window

    def observe(self, particles: np.ndarray, scores: np.ndarray, model) -> None:
        """Add one scored request (``model``: the :class:`~l1ad.serving.state.ServedModel` that scored it)."""
        t = model.threshold(None)
        key = None if t is None else (model.name, model.version, t.value)
        fresh = None
        if key != self._flag_key:  # a new model or threshold (rare): sized outside the lock (ms, cached)
            counts = None if t is None else drift_flags.calibration_counts(t, model.table.input_rate_khz)
            fresh = None if counts is None else _FlagWindow(counts, self._flag_size(*counts))
        with self._lock:
            self._events.push(particles)
            self._new += len(particles)
            if key != self._flag_key:
                self._flag_key, self._flags = key, fresh
            if self._flags is not None:
                self._flags.push(np.asarray(scores) > t.value)
            due = self._new >= self.cfg.window
        if due:
            self._wake.set()

    def evaluate(self) -> dict[str, Any] | None:
        """Test the current windows now and publish the gauges; None before the first full window."""
        with self._lock:
            if self._events.filled < self.cfg.window:
                return None
            particles = self._events.snapshot()
            fw = self._flags
            flag_counts = None if fw is None else (fw.ring.filled, fw.flagged, fw.k_cal, fw.n_cal)
            self._new = 0
        t0 = time.process_time()
        inputs = drift.compare(drift.Summary.of(particles), self.reference, self.cfg.alpha)
        output = None
        if flag_counts is not None:
            output = drift_flags.flag_rate_test(*flag_counts, self.cfg.flag_rate_factor, self.cfg.alpha)
        cpu = time.process_time() - t0
        result = {"input": inputs, "output": output, "cpu_seconds": cpu}
        self._publish(result)
        with self._done:
            self.last = result
            self.evaluations += 1
            self._done.notify_all()
        if inputs.drift or (output is not None and output.alert):
            logger.warning("drift: input %s (%s), flag-rate ratio %s", inputs.drift,
                           ", ".join(t.feature for t in inputs.drifted[:5]) or "-",
                           None if output is None else f"{output.ratio}")  # fmt: skip
        return result

    def _publish(self, result: dict[str, Any]) -> None:
        m = self.metrics
        if m is None:
            return
        inputs, output = result["input"], result["output"]
        m.drift_features.set(len(inputs.drifted))
        m.drift_min_p.set(inputs.min_corrected_p)
        m.drift_alert.labels("input").set(int(inputs.drift))
        m.drift_window.set(inputs.n_window)
        m.drift_evaluations.inc()
        m.drift_seconds.set(result["cpu_seconds"])
        m.drift_alert.labels("output").set(int(output is not None and output.alert))
        m.flag_rate_tested.set(int(output is not None and output.enough))
        if output is not None:
            m.flag_rate_window.set(output.n_events)
            m.flag_rate_expected.set(output.expected)
            if output.ratio is not None:
                m.flag_rate_ratio.set(output.ratio)

    def wait(self, evaluations: int, timeout: float = 10.0) -> bool:
        """Block until ``evaluations`` evaluations have run (tests, shutdown)."""
        with self._done:
            return self._done.wait_for(lambda: self.evaluations >= evaluations, timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            if self._stop.is_set():
                break
            with self._lock:
                due = self._new >= self.cfg.window
            if not due:
                self._wake.clear()
                continue
            pause = self._last + self.cfg.min_interval_s - time.monotonic()
            if pause > 0:
                self._stop.wait(min(pause, 1.0))
                continue
            self._wake.clear()
            self._last = time.monotonic()
            try:
                self.evaluate()
            except Exception:  # the monitor never takes the service down
                logger.exception("drift evaluation failed")

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
