"""Dynamic batching as Triton does it: concurrent requests are gathered into one model call.

A worker thread takes the first waiting request, then keeps gathering until the batch holds
``max_batch_events`` events or ``max_delay_us`` has passed since that first request, scores the
concatenation in one call and hands each request its slice. Scores do not depend on the batch an
event lands in (the energy model pads small batches, see ``l1ad.models.ebm.scores.MIN_ROWS``).
Callable from threads (gRPC) and from asyncio (``asyncio.wrap_future``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class _Job:
    particles: np.ndarray
    future: Future


class Batcher:
    """Gathers :meth:`submit` calls into batched ``score_fn(particles) -> dict[str, (N,)]`` calls."""

    def __init__(self, score_fn: Callable[[np.ndarray], dict[str, np.ndarray]], max_batch_events: int = 4096,
                 max_delay_us: float = 500.0, name: str = "batcher",
                 on_batch: Callable[[int], None] | None = None) -> None:  # fmt: skip
        if max_batch_events < 1 or max_delay_us < 0:
            raise ValueError("max_batch_events must be >= 1 and max_delay_us >= 0")
        self.score_fn = score_fn
        self.max_batch_events = int(max_batch_events)
        self.max_delay_s = float(max_delay_us) * 1e-6
        self.on_batch = on_batch
        self._closed = threading.Event()
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.batches = 0
        self.events = 0
        self._thread.start()

    def submit(self, particles: np.ndarray) -> Future:
        if self._closed.is_set():
            raise RuntimeError(f"{self._thread.name} is closed")
        fut: Future = Future()
        self._queue.put(_Job(particles, fut))
        return fut

    def score(self, particles: np.ndarray, timeout: float | None = 300.0) -> dict[str, np.ndarray]:
        return self.submit(particles).result(timeout=timeout)

    def close(self) -> None:
        """Stop taking work; what is queued is still scored, then the thread ends."""
        self._closed.set()
        self._queue.put(None)

    def _fail_leftovers(self) -> None:
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None and not job.future.done():
                job.future.set_exception(RuntimeError(f"{self._thread.name} closed before scoring"))

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, n = [first], len(first.particles)
        deadline = time.perf_counter() + self.max_delay_s
        while n < self.max_batch_events:
            timeout = deadline - time.perf_counter()
            try:
                job = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                return jobs, True
            jobs.append(job)
            n += len(job.particles)
        return jobs, False

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._fail_leftovers()
                return
            jobs, stop = self._gather(first)
            try:
                batch = np.concatenate([j.particles for j in jobs]) if len(jobs) > 1 else jobs[0].particles
                out = self.score_fn(batch)
                self.batches += 1
                self.events += len(batch)
                if self.on_batch is not None:
                    self.on_batch(len(batch))
                start = 0
                for j in jobs:
                    n = len(j.particles)
                    j.future.set_result({k: v[start : start + n] for k, v in out.items()})
                    start += n
            except Exception as exc:  # every waiting request gets the error
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(exc)
            if stop:
                self._fail_leftovers()
                return
