"""REST routes of batch scoring jobs: ``/api/v1/score/batch`` (submit, list), ``/{job_id}`` (status,
cancel) and ``/{job_id}/results`` (the Parquet file of a succeeded job). The jobs live in :mod:`l1ad.serving.jobs`, the :mod:`~l1ad.serving.batch_runner` scores them.

Submission checks the request only (400 for a body that is not JSON, 422 for a missing or ill-typed
field or an unknown one, 400 for a rate without a threshold, as ``/api/v1/score``); it never opens the
events file, which may be remote. Everything about the file (missing, unreadable, invalid events) fails
the job, with a message naming the file (and row) in its status. Every database access runs in a worker
thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from l1ad.serving.batch_runner import BatchConfig, BatchRunner
from l1ad.serving.inputs import InputError
from l1ad.serving.jobs import STATES, Job, JobStore, ModelRef
from l1ad.serving.rest import read_json
from l1ad.serving.service import Service

#: The largest chunk a job may ask for (events scored and held in memory at once).
MAX_CHUNK = 1_000_000
FIELDS = {"events_file": "a path or URL (string)", "rate_khz": "a number or null",
          "chunk_size": f"an integer 1..{MAX_CHUNK}"}  # fmt: skip
PREFIX = "/api/v1/score/batch"


@dataclass
class Batch:
    """The jobs of one server: store, runner and routes."""

    store: JobStore
    runner: BatchRunner
    router: APIRouter


def setup(service: Service, cfg: BatchConfig) -> Batch:
    store = JobStore(cfg.jobs_db)
    runner = BatchRunner(store, cfg.results_dir, lease_s=cfg.lease_s, poll_s=cfg.poll_s)
    return Batch(store, runner, router(service, store, runner, cfg.chunk_size))


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
    if "://" not in path:  # stored absolute: a restarted server finds it whatever its working directory
        path = str(Path(path).expanduser().absolute())
    return path, None if rate is None else float(rate), chunk


def router(service: Service, store: JobStore, runner: BatchRunner, default_chunk: int) -> APIRouter:
    r = APIRouter()

    async def _job(job_id: str) -> Job:
        job = await asyncio.to_thread(store.get, job_id)
        if job is None:
            raise InputError(f"unknown batch job {job_id!r}", 404)
        return job

    @r.post(PREFIX)
    async def submit(request: Request) -> JSONResponse:
        doc, _ = await read_json(request, service)
        path, rate, chunk = parse_submission(doc, default_chunk)
        model = service.model  # the model of this moment; the job keeps it across reloads and restarts
        t = service.threshold(model, rate)  # 400 for a rate without a threshold
        ref = ModelRef(str(Path(model.run_dir).resolve()), model.name, model.hash, model.score_label,
                       None if t is None else t.rate_khz, None if t is None else t.value)  # fmt: skip
        job = await asyncio.to_thread(store.submit, path, chunk, ref)
        runner.wake()
        return JSONResponse({"job_id": job.id, "status": job.state, "url": f"{PREFIX}/{job.id}"}, 202)

    @r.get(PREFIX)
    async def list_jobs(status: str | None = None, limit: int = 100) -> dict[str, Any]:
        if status is not None and status not in STATES:
            raise InputError(f"status must be one of {list(STATES)}, got {status!r}")
        if not 1 <= limit <= 10_000:
            raise InputError(f"limit must be 1..10000, got {limit}")
        jobs = await asyncio.to_thread(store.list_jobs, status, limit)
        return {"jobs": [describe(j) for j in jobs]}

    @r.get(PREFIX + "/{job_id}")
    async def status(job_id: str) -> dict[str, Any]:
        return describe(await _job(job_id))

    @r.get(PREFIX + "/{job_id}/results")
    async def results(job_id: str) -> FileResponse:
        job = await _job(job_id)
        if job.state != "succeeded" or not job.results_file:
            raise InputError(f"batch job {job_id} is {job.state}: no results", 409)
        return FileResponse(job.results_file, media_type="application/vnd.apache.parquet",
                            filename=f"{job_id}.parquet")  # fmt: skip

    @r.delete(PREFIX + "/{job_id}")
    async def cancel(job_id: str) -> JSONResponse:
        before = await _job(job_id)
        if before.state in ("succeeded", "failed"):
            raise InputError(f"batch job {job_id} already {before.state}; nothing to cancel", 409)
        job = await asyncio.to_thread(store.cancel, job_id)
        if job.state == "cancelled":
            await asyncio.to_thread(runner.discard_parts, job_id)
            return JSONResponse(describe(job), 200)
        if job.state in ("succeeded", "failed"):  # it finished in the meantime
            raise InputError(f"batch job {job_id} already {job.state}; nothing to cancel", 409)
        return JSONResponse(describe(job), 202)  # running: cancelled at the runner's next chunk boundary

    return r
