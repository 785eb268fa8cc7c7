"""The batch runner: one worker thread that claims jobs from the :class:`~l1ad.serving.jobs.JobStore` and
scores their event files chunk by chunk, off the server's event loop.

For chunk ``k`` of a job (events ``[lo, hi)`` of :meth:`~l1ad.events.sources.EventSource.slices`) the runner
reads and validates the events, scores them, writes ``<results_dir>/<job_id>/part-<k>.parquet``
atomically (:func:`~l1ad.serving.offline.write_results`) and only then records the chunk done in SQLite.
A job claimed again after a crash resumes at its first unrecorded chunk: recorded parts are kept, a part
file written but not recorded is simply written again. When every chunk is done the parts are concatenated
in order into ``<results_dir>/<job_id>.parquet`` (atomically), the job is marked succeeded and its parts
are removed. So every event is in the result exactly once, scored by one model.

Scores come from :class:`~l1ad.serving.offline.OfflineScorer` on the model recorded in the job (run
directory, model directory, score label), loaded by the runner itself and checked against the recorded
content hash: the registry's scores, whatever the service's batcher is doing, and never a mix of two
models. After a service reload, queued and running jobs keep the model they were submitted with; if that
model's files changed on disk the job fails with a message saying so. Flags are ``score > threshold`` with
the threshold recorded at submission (the served one: the run's rate table, or the ``--calibration`` one).

The input is fingerprinted (:func:`~l1ad.events.sources.identity`: path, format, size, mtime, sha256 of
its first and last MiB) at the job's first claim; a resumed job whose input changed fails, naming it.

A heartbeat thread renews the job's lease every ``lease_s / 3`` seconds; a runner that lost its lease
stops without writing. A job that was claimed :data:`MAX_ATTEMPTS` times without finishing (the server
died on it or lost its lease each time; a clean stop gives its attempt back) fails instead of taking
the server down forever. ``on_chunk(job_id, k)``, if set, is called before chunk ``k`` is read and with
``k == chunks_total`` before the job is finished: the tests' hook to hold a job at a known point.
"""

from __future__ import annotations

import logging
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from l1ad.events.sources import identity, open_source
from l1ad.events.validate import EventFileError
from l1ad.serving import thresholds as thr
from l1ad.serving.jobs import BUSY_TIMEOUT_S, TERMINAL, Job, JobStore, new_owner
from l1ad.serving.offline import OfflineScorer, ScorerSpec, concat_results, write_results

logger = logging.getLogger(__name__)

#: Events per chunk unless the job asks otherwise: the HDF5 chunk and Parquet row group l1ad writes
#: (:func:`~l1ad.events.io.write_events`, :func:`~l1ad.events.sources.write_parquet_events`), so a job
#: chunk decompresses one file chunk; about a second of the full-size energy model on one core.
DEFAULT_CHUNK = 65_536
#: Lease of a running job (s); the heartbeat renews it every third of it.
LEASE_S = 15.0
#: How often an idle runner looks for claimable jobs (s) when nobody wakes it.
POLL_S = 1.0
#: Claims of one job (not given back by a clean stop) after which it fails instead of being resumed again.
MAX_ATTEMPTS = 10
#: Queued jobs at most; a submission beyond is refused (HTTP 429).
MAX_QUEUED = 1000
_JOB_ID = re.compile("[0-9a-f]{32}")


@dataclass(frozen=True)
class BatchConfig:
    """Where batch jobs live, which inputs they may read and how they run.

    ``jobs_db`` and ``results_dir`` are made absolute (a restarted server in another working directory
    finds the same files). ``required``: a database that cannot be opened stops the server (an explicit
    ``--jobs-db``); otherwise batch jobs are switched off with a warning and their routes answer 503.
    ``root``: local input files must lie under it (default: the service's reload root).
    ``url_schemes``: the fsspec URL schemes inputs may use (default none: local files only)."""

    jobs_db: Path
    results_dir: Path
    chunk_size: int = DEFAULT_CHUNK
    lease_s: float = LEASE_S
    poll_s: float = POLL_S
    required: bool = True
    root: Path | None = None
    url_schemes: tuple[str, ...] = ()
    max_queued: int = MAX_QUEUED
    busy_timeout_s: float = BUSY_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.chunk_size < 1 or not self.lease_s > 0 or not self.poll_s > 0 or self.max_queued < 1:
            raise ValueError(f"batch jobs need chunk_size >= 1, lease_s > 0, poll_s > 0 and max_queued >= 1, "
                             f"got {self}")  # fmt: skip
        for name in ("jobs_db", "results_dir", "root"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value).expanduser().resolve())
        schemes = tuple(s.strip().lower() for s in self.url_schemes if s.strip())
        object.__setattr__(self, "url_schemes", schemes)

    @classmethod
    def beside(cls, run_dir: str | Path, jobs_db: str | Path | None = None,
               results_dir: str | Path | None = None, **kwargs: Any) -> BatchConfig:  # fmt: skip
        """Defaults: ``jobs.sqlite`` in the folder holding the served run (the reload root by default,
        so jobs survive switching runs; not required: a read-only folder only switches batch jobs off)
        and ``batch-results/`` beside the database."""
        db = Path(jobs_db) if jobs_db else Path(run_dir).resolve().parent / "jobs.sqlite"
        res = Path(results_dir) if results_dir else Path(db).expanduser().resolve().parent / "batch-results"
        return cls(db, res, **{"required": jobs_db is not None, **kwargs})


class JobError(Exception):
    """A job's own failure (its file or model): the job fails with this message."""


class BatchRunner:
    """Claims and runs jobs one at a time: :meth:`start` a worker thread, or :meth:`run_once`."""

    def __init__(self, store: JobStore, results_dir: str | Path, owner: str | None = None,
                 lease_s: float = LEASE_S, poll_s: float = POLL_S,
                 scorer_factory: Callable[[ScorerSpec], OfflineScorer] = OfflineScorer,
                 on_chunk: Callable[[str, int], None] | None = None) -> None:  # fmt: skip
        self.store = store
        self.on_chunk = on_chunk
        self.results_dir = Path(results_dir)
        self.owner = owner or new_owner()
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.scorer_factory = scorer_factory
        self._scorer: tuple[tuple[str, str, str], OfflineScorer] | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ files
    def results_path(self, job_id: str) -> Path:
        return self.results_dir / f"{job_id}.parquet"

    def parts_dir(self, job_id: str) -> Path:
        return self.results_dir / job_id

    def part_path(self, job_id: str, k: int) -> Path:
        return self.parts_dir(job_id) / f"part-{k:06d}.parquet"

    def discard_parts(self, job_id: str) -> None:
        shutil.rmtree(self.parts_dir(job_id), ignore_errors=True)

    # ------------------------------------------------------------------ the worker thread
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="batch-runner", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A job was submitted: look now rather than at the next poll."""
        self._wake.set()

    def request_stop(self) -> None:
        """Stop at the next chunk boundary; the running job goes back to the queue, resumable."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """:meth:`request_stop` and wait for the worker thread, then close the model.

        A chunk still scoring after ``timeout`` is abandoned with the (daemon) thread: its lease expires
        and the job resumes at its last recorded chunk, so nothing depends on a clean stop."""
        self.request_stop()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.warning("batch runner still scoring a chunk after %.0f s; leaving it", timeout)
                return
        self._close_scorer()

    def _loop(self) -> None:
        try:
            self.recover()
        except Exception:
            logger.exception("batch runner: recovery at start failed")
        while not self._stop.is_set():
            try:
                job = self.run_once()
            except sqlite3.OperationalError as exc:  # locked past the busy timeout, disk full: retry
                logger.warning("batch runner: the jobs database %s: %s; retrying", self.store.path, exc)
                job = None
            except Exception:  # the database, not a job (jobs fail on their own): retry after a pause
                logger.exception("batch runner: claiming or finishing a job failed")
                job = None
            if job is None:
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def recover(self) -> list[str]:
        """At start: make the jobs of dead server processes on this host claimable now, and remove the
        part files a finished job of this database left (a crash right after it finished). Returns the
        ids of the jobs to resume. Folders that are not such a job's are never touched."""
        resumed = self.store.expire_dead_owners()
        if self.results_dir.is_dir():
            for d in self.results_dir.iterdir():
                if d.is_dir() and _JOB_ID.fullmatch(d.name):
                    job = self.store.get(d.name)
                    if job is not None and job.state in TERMINAL:
                        self.discard_parts(d.name)
        return resumed

    def run_once(self) -> Job | None:
        """Claim one job and run it to its end (or to a stop request); None if there was none."""
        job = self.store.claim(self.owner, self.lease_s)
        if job is None:
            return None
        logger.info("batch job %s claimed by %s at chunk %d (attempt %d)", job.id, self.owner,
                    job.chunks_done, job.attempts)  # fmt: skip
        with self._lease(job.id) as lost:
            self._run(job, lost)
        return self.store.get(job.id)

    @contextmanager
    def _lease(self, job_id: str) -> Iterator[threading.Event]:
        """Renew the job's lease in the background; the event is set if it was lost."""
        lost, done = threading.Event(), threading.Event()

        def beat() -> None:
            while not done.wait(self.lease_s / 3):
                try:
                    if not self.store.renew(job_id, self.owner, self.lease_s):
                        lost.set()
                        return
                except sqlite3.Error as exc:  # a busy database: try again at the next beat
                    logger.warning("renewing the lease of batch job %s failed: %s", job_id, exc)

        t = threading.Thread(target=beat, name=f"lease-{job_id[:8]}", daemon=True)
        t.start()
        try:
            yield lost
        finally:
            done.set()
            t.join()

    # ------------------------------------------------------------------ one job
    def _run(self, job: Job, lost: threading.Event) -> None:
        try:
            if job.cancel_requested:
                self._end(job, "cancelled")
            elif job.attempts > MAX_ATTEMPTS:
                raise JobError(f"{job.events_file}: abandoned after {job.attempts - 1} attempts (its server "
                               f"died or lost the lease while running it each time)")  # fmt: skip
            else:
                self._score(job, lost)
        except (JobError, EventFileError, OSError) as exc:
            message = str(exc) if job.events_file in str(exc) else f"{job.events_file}: {exc}"
            logger.warning("batch job %s failed: %s", job.id, message)
            self._end(job, "failed", error=message)
        except Exception as exc:  # a bug or a model failure: the job fails, the runner goes on
            logger.exception("batch job %s failed", job.id)
            self._end(job, "failed", error=f"{job.events_file}: {type(exc).__name__}: {exc}")

    def _score(self, job: Job, lost: threading.Event) -> None:
        t0 = time.perf_counter()
        source = open_source(job.events_file)
        slices = source.slices(job.chunk_size)
        ident = identity(source)
        if job.n_events is None:
            self.store.set_total(job.id, self.owner, source.n_events, len(slices), ident["id"])
        elif (job.n_events, job.events_stamp) != (source.n_events, ident["id"]):
            raise JobError(f"{job.events_file}: the file changed since the job started ({source.n_events} "
                           f"events, size {ident['size']}, identity {ident['id']}; then {job.n_events} events, "
                           f"identity {job.events_stamp}); resubmit the job")  # fmt: skip
        for k in range(job.chunks_done):
            if not self.part_path(job.id, k).is_file():
                raise JobError(f"{job.events_file}: results of finished chunk {k} are missing "
                               f"({self.part_path(job.id, k)})")  # fmt: skip
        scorer = self._scorer_for(job)
        threshold = None if job.threshold is None else thr.RateThreshold(job.rate_khz, job.threshold)
        meta = {"job_id": job.id, "events_file": job.events_file, "n_events": source.n_events,
                "run_dir": job.run_dir, "model": job.model, "model_hash": job.model_hash,
                "score": job.score, "rate_khz": job.rate_khz, "threshold": job.threshold}  # fmt: skip
        for k in range(job.chunks_done, len(slices)):
            if lost.is_set():
                logger.warning("batch job %s: lease lost (another runner holds it); stopping", job.id)
                return
            if self._stop.is_set():
                if self.store.release(job.id, self.owner) == "cancelled":
                    self.discard_parts(job.id)
                logger.info("batch job %s: back in the queue at chunk %d (runner stopping)", job.id, k)
                return
            if self.on_chunk is not None:
                self.on_chunk(job.id, k)
            lo, hi = slices[k]
            scores, _ = scorer(source.read(lo, hi))
            write_results(self.part_path(job.id, k), lo, scores, thr.flags(scores, threshold), meta)
            recorded, cancel = self.store.record_chunk(job.id, self.owner, k, hi - lo)
            if not recorded:
                logger.warning("batch job %s: chunk %d not recorded (lease lost); stopping", job.id, k)
                return
            if cancel:
                self._end(job, "cancelled")
                return
        if self.on_chunk is not None:
            self.on_chunk(job.id, len(slices))
        out = self.results_path(job.id)
        concat_results([self.part_path(job.id, k) for k in range(len(slices))], out, meta)
        if self._end(job, "succeeded", results_file=str(out)) == "succeeded":
            dt = time.perf_counter() - t0
            first = slices[job.chunks_done][0] if job.chunks_done < len(slices) else source.n_events
            n = source.n_events - first
            logger.info("batch job %s succeeded: %d events scored here in %.2f s (%.0f events/s)", job.id, n,
                        dt, n / dt if dt > 0 else 0.0)  # fmt: skip

    def _end(
        self, job: Job, state: str, results_file: str | None = None, error: str | None = None
    ) -> str | None:
        """Finish the job; the state it ended in (``cancelled`` if a cancel came first), None if lost."""
        ended = self.store.finish(job.id, self.owner, state, results_file, error)
        if ended is not None:
            self.discard_parts(job.id)
            if ended != "succeeded":
                self.results_path(job.id).unlink(missing_ok=True)
        return ended

    # ------------------------------------------------------------------ the model
    def _scorer_for(self, job: Job) -> OfflineScorer:
        """The job's model, loaded once for consecutive jobs on it, with the job's content hash."""
        key = (job.run_dir, job.model, job.score)
        for attempt in (0, 1):
            if self._scorer is None or self._scorer[0] != key or attempt:
                self._close_scorer()
                try:
                    self._scorer = (key, self.scorer_factory(ScorerSpec(job.run_dir, job.model, job.score)))
                except (FileNotFoundError, ValueError) as exc:
                    raise JobError(f"model {job.model} of {job.run_dir} cannot be loaded: {exc}") from None
            scorer = self._scorer[1]
            found = scorer.metadata()["model_hash"]
            if found == job.model_hash:
                return scorer
        raise JobError(f"model {job.model} of {job.run_dir} changed since the job was submitted "
                       f"(hash {job.model_hash[:12]}, now {found[:12]}); resubmit the job")  # fmt: skip

    def _close_scorer(self) -> None:
        if self._scorer is not None:
            self._scorer[1].close()
            self._scorer = None
