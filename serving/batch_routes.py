"""REST routes of batch scoring jobs: ``/api/v1/score/batch`` (submit, list), ``/{job_id}`` (status,
cancel) and ``/{job_id}/results`` (the Parquet file of a succeeded job). The jobs live in
:mod:`l1ad.serving.jobs`, the :mod:`~l1ad.serving.batch_runner` scores them.

Submission checks the request (400 for a body that is not JSON, 422 for a missing, ill-typed or unknown
field or an events file of no known format by its suffix, 400 for a rate without a threshold, as
``/api/v1/score``) and where the file may be read from (403): a local path, once resolved (symlinks
followed), must lie under the batch root (``--batch-root``, default: the reload root, the folder holding
the served run), and a URL must use only allowed schemes (``--batch-url-schemes``, default none; every
scheme of a chained ``a::b`` URL must be allowed, and a ``file://`` part must lie under the root too),
so a request cannot make the server read arbitrary files or fetch arbitrary URLs. It never opens the
file, which may be remote: everything about its content (missing, unreadable, invalid events) fails the
job, with a message naming the file (and row) in its status. 429 when ``--batch-max-queued`` jobs are
queued already. Every database access runs in a worker thread, never on the event loop; a database
that is locked past its busy timeout or full answers 503.

When the default jobs database cannot be opened (a read-only folder beside the run), :func:`setup`
logs a warning and mounts :func:`unavailable` routes instead: every batch URL answers 503 saying why.
An explicit ``--jobs-db`` that cannot be opened stops the server instead (:class:`JobStoreError`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from l1ad.events import sources
from l1ad.serving.batch_runner import BatchConfig, BatchRunner
from l1ad.serving.inputs import InputError
from l1ad.serving.jobs import STATES, Job, JobStore, JobStoreError, ModelRef, QueueFull
from l1ad.serving.rest import read_json
from l1ad.serving.service import Service

logger = logging.getLogger(__name__)

#: The largest chunk a job may ask for (events scored and held in memory at once).
MAX_CHUNK = 1_000_000
FIELDS = {"events_file": "a path or URL (string)", "rate_khz": "a number or null",
          "chunk_size": f"an integer 1..{MAX_CHUNK}"}  # fmt: skip
PREFIX = "/api/v1/score/batch"
_LOCAL_SCHEMES = ("file", "local")  # fsspec's local filesystem: its paths are checked against the root
T = TypeVar("T")


@dataclass
class Batch:
    """The jobs of one server: store, runner (None when batch jobs are off) and routes."""

    store: JobStore | None
    runner: BatchRunner | None
    router: APIRouter


def setup(service: Service, cfg: BatchConfig) -> Batch:
    """Store, runner and routes; :class:`JobStoreError` if a required database cannot be opened."""
    try:
        store = JobStore(cfg.jobs_db, cfg.busy_timeout_s)
    except JobStoreError as exc:
        if cfg.required:
            raise
        logger.warning("batch jobs are off: %s; give --jobs-db PATH on a writable local disk", exc)
        return Batch(None, None, unavailable(f"batch jobs are off on this server: {exc}; start it with "
                                             "--jobs-db PATH on a writable local disk"))  # fmt: skip
    runner = BatchRunner(store, cfg.results_dir, lease_s=cfg.lease_s, poll_s=cfg.poll_s)
    return Batch(store, runner, router(service, store, runner, cfg))


def unavailable(reason: str) -> APIRouter:
    """Every batch URL answers 503 with ``reason``."""
    r = APIRouter()

    @r.api_route(PREFIX, methods=["GET", "POST"])
    @r.api_route(PREFIX + "/{rest:path}", methods=["GET", "POST", "DELETE"])
    async def off() -> None:
        raise InputError(reason, 503)

    return r


def _iso(t: float | None) -> str | None:
    return None if t is None else dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds")


def describe(job: Job) -> dict[str, Any]:
    """The API's view of a job."""
    return {
        "job_id": job.id,
        "status": job.state,
        "events_file": job.events_file,
        "chunk_size": job.chunk_size,
        "progress": {
            "events_done": job.events_done,
            "events_total": job.n_events,
            "chunks_done": job.chunks_done,
            "chunks_total": job.chunks_total,
            "fraction": job.events_done / job.n_events if job.n_events else None,
        },
        "results_file": job.results_file,
        "error": job.error,
        "model": {"name": job.model, "hash": job.model_hash, "run_dir": job.run_dir},
        "score": job.score,
        "threshold": None if job.threshold is None else {"rate_khz": job.rate_khz, "value": job.threshold},
        "cancel_requested": bool(job.cancel_requested),
        "attempts": job.attempts,
        "resumed_from_chunk": job.resumed_from,
        "created": _iso(job.created),
        "started": _iso(job.started),
        "finished": _iso(job.finished),
        "url": f"{PREFIX}/{job.id}",
    }


def parse_submission(doc: Any, default_chunk: int) -> tuple[str, float | None, int]:
    """``(events_file, rate_khz, chunk_size)`` of a submission; InputError (422) naming the field."""
    if not isinstance(doc, dict) or "events_file" not in doc:
        raise InputError('a batch job is a JSON object {"events_file": PATH, "rate_khz"?, "chunk_size"?}')
    extra = sorted(set(doc) - set(FIELDS))
    if extra:
        raise InputError(f"unknown field(s) {extra}; a batch job takes {sorted(FIELDS)}")
    path, rate, chunk = doc["events_file"], doc.get("rate_khz"), doc.get("chunk_size", default_chunk)
    if not isinstance(path, str) or not path.strip():
        raise InputError(f"events_file must be {FIELDS['events_file']}, got {path!r}")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or not rate > 0):
        raise InputError(f"rate_khz must be a positive number or null, got {rate!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1 <= chunk <= MAX_CHUNK:
        raise InputError(f"chunk_size must be {FIELDS['chunk_size']}, got {chunk!r}")
    return path, None if rate is None else float(rate), chunk


def _under(path: Path, root: Path, given: str) -> Path:
    """``path`` resolved (as :meth:`Service.check_reload_dir` does), 403 unless it lies under ``root``."""
    try:
        resolved, root = path.resolve(), root.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte
        raise InputError(f"events_file {given!r} cannot be resolved: {exc}") from None
    if resolved != root and root not in resolved.parents:
        raise InputError(f"events_file {given!r} is outside the batch root {str(root)!r}", 403)
    return resolved


def check_events_file(path: str, root: Path, schemes: tuple[str, ...]) -> str:
    """The events file as stored in the job (:func:`l1ad.events.sources.normalize`: a local path absolute
    and resolved, a URL as given): 422 for an unknown format or a path that cannot be expanded, 403 for
    a local file outside ``root`` or a URL scheme not in ``schemes``."""
    suffixes = sources.HDF5_SUFFIXES + sources.PARQUET_SUFFIXES
    if not path.rsplit("/", 1)[-1].lower().endswith(suffixes):  # as open_source tells the format
        raise InputError(f"events_file {path!r}: unknown event file format (expected {', '.join(suffixes)})")
    if not sources.is_url(path):
        try:
            normalized = sources.normalize(path)
        except (OSError, RuntimeError, ValueError) as exc:  # ~nosuchuser, a symlink loop, a NUL byte
            raise InputError(f"events_file {path!r} cannot be expanded: {exc}") from None
        _under(Path(normalized), root, path)
        return normalized
    for part in path.split("::"):  # a chained URL: every filesystem in the chain must be allowed
        scheme, _, rest = part.partition("://")
        scheme = scheme.lower()
        if scheme not in schemes:
            allowed = ", ".join(schemes) or "none: local files only"
            raise InputError(f"events_file {path!r}: URL scheme {scheme!r} is not allowed on this server "
                             f"(--batch-url-schemes: {allowed})", 403)  # fmt: skip
        if scheme in _LOCAL_SCHEMES:
            if not rest.startswith("/"):  # "~" or a relative path: its meaning would be fsspec's
                raise InputError(f"events_file {path!r}: a {scheme}:// URL needs an absolute path")
            _under(Path(rest), root, path)
    return sources.normalize(path)


def router(service: Service, store: JobStore, runner: BatchRunner, cfg: BatchConfig) -> APIRouter:
    r = APIRouter()
    root = cfg.root or service.reload_root

    async def _db(fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread; 503 when the database is locked too long or full."""
        try:
            return await asyncio.to_thread(fn, *args)
        except sqlite3.OperationalError as exc:
            raise InputError(
                f"the jobs database {store.path} is unavailable ({exc}); try again", 503
            ) from None

    async def _job(job_id: str) -> Job:
        job = await _db(store.get, job_id)
        if job is None:
            raise InputError(f"unknown batch job {job_id!r}", 404)
        return job

    @r.post(PREFIX)
    async def submit(request: Request) -> JSONResponse:
        doc, _ = await read_json(request, service)
        path, rate, chunk = parse_submission(doc, cfg.chunk_size)
        path = check_events_file(path, root, cfg.url_schemes)
        model = service.model  # the model of this moment; the job keeps it across reloads and restarts
        t = service.threshold(model, rate)  # 400 for a rate without a threshold
        ref = ModelRef(str(Path(model.run_dir).resolve()), model.name, model.hash, model.score_label,
                       None if t is None else t.rate_khz, None if t is None else t.value)  # fmt: skip
        try:
            job = await _db(store.submit, path, chunk, ref, cfg.max_queued)
        except QueueFull as exc:
            raise InputError(f"{exc} (--batch-max-queued)", 429) from None
        runner.wake()
        return JSONResponse({"job_id": job.id, "status": job.state, "url": f"{PREFIX}/{job.id}"}, 202)

    @r.get(PREFIX)
    async def list_jobs(status: str | None = None, limit: int = 100) -> dict[str, Any]:
        if status is not None and status not in STATES:
            raise InputError(f"status must be one of {list(STATES)}, got {status!r}")
        if not 1 <= limit <= 10_000:
            raise InputError(f"limit must be 1..10000, got {limit}")
        jobs = await _db(store.list_jobs, status, limit)
        return {"jobs": [describe(j) for j in jobs]}

    @r.get(PREFIX + "/{job_id}")
    async def status(job_id: str) -> dict[str, Any]:
        return describe(await _job(job_id))

    @r.get(PREFIX + "/{job_id}/results")
    async def results(job_id: str) -> FileResponse:
        job = await _job(job_id)
        if job.state != "succeeded" or not job.results_file:
            raise InputError(f"batch job {job_id} is {job.state}: no results", 409)
        if not await asyncio.to_thread(Path(job.results_file).is_file):
            raise InputError(f"the results of batch job {job_id} were removed ({job.results_file})", 410)
        return FileResponse(job.results_file, media_type="application/vnd.apache.parquet",
                            filename=f"{job_id}.parquet")  # fmt: skip

    @r.delete(PREFIX + "/{job_id}")
    async def cancel(job_id: str) -> JSONResponse:
        before = await _job(job_id)
        if before.state in ("succeeded", "failed"):
            raise InputError(f"batch job {job_id} already {before.state}; nothing to cancel", 409)
        job = await _db(store.cancel, job_id)
        if job.state == "cancelled":
            await asyncio.to_thread(runner.discard_parts, job_id)
            return JSONResponse(describe(job), 200)
        if job.state in ("succeeded", "failed"):  # it finished in the meantime
            raise InputError(f"batch job {job_id} already {job.state}; nothing to cancel", 409)
        # running: cancelled at the runner's next chunk boundary; it can no longer end otherwise
        return JSONResponse(describe(job), 202)

    return r
