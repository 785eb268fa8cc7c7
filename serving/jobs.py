"""The durable store of batch scoring jobs: one SQLite file in WAL mode.

The database must be on a local filesystem of the host running the server(s): SQLite's WAL index lives
in shared memory, so a WAL database is safe for several processes of ONE host, never for processes on
several hosts sharing the file over NFS or another network filesystem. Several ``l1ad serve``
processes on that host may share one database (and so one queue); servers on other hosts need their
own.

A job moves ``queued -> running -> succeeded | failed | cancelled``. A runner takes a job with
:meth:`JobStore.claim`: one ``UPDATE ... RETURNING`` inside ``BEGIN IMMEDIATE``, so two claimers (threads,
processes on one file) never get the same job. The claim is a lease: ``owner`` (the runner's id,
``host:pidns:pid:token:n``, :func:`new_owner`) and ``lease_expires`` (epoch seconds), renewed by the
runner's heartbeat (:meth:`renew`). A job whose lease expired is claimable again, as is one whose owner
is a dead process of this host and pid namespace (:meth:`expire_dead_owners`, run at server start): a
killed server's job is resumed, never lost. ``attempts`` counts the claims that did not end in a
graceful :meth:`release` (a server stopping cleanly gives its attempt back), so only crashes and lost
leases use up a job's attempts.

Progress is the number of finished chunks, in order: chunk ``k`` covers events
``[k * chunk_size, (k + 1) * chunk_size)``. :meth:`record_chunk` moves ``chunks_done`` from ``k`` to
``k + 1`` (and ``events_done``) in one transaction, only for the job's current owner, after the chunk's
results file was written; a resumed job starts at ``chunks_done``. Every write checks the owner, so a
runner that lost its lease can no longer change the job. A job whose cancel was requested ends
``cancelled`` whatever its runner was about to record (:meth:`finish` and :meth:`release` check
``cancel_requested`` in the same statement), so a cancel answered "requested" never ends otherwise.

The model a job scores with (run, model directory, content hash, score label, threshold) is fixed at
submission (:class:`ModelRef`): a reload of the service does not change a queued or running job. The
input's identity (:func:`l1ad.events.sources.identity`) is recorded at the job's first claim
(``events_stamp``) and checked when it resumes.

Not done: retention. Finished jobs and their results stay until removed by hand (no TTL cleanup);
:meth:`submit` only bounds the number of queued jobs (``max_queued``).
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path

logger = logging.getLogger(__name__)

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
TERMINAL = ("succeeded", "failed", "cancelled")
SCHEMA_VERSION = 1
#: How long a writer waits for another's transaction before failing (SQLite busy_timeout).
BUSY_TIMEOUT_S = 10.0

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ({", ".join(repr(s) for s in STATES)})),
    events_file TEXT NOT NULL,
    chunk_size INTEGER NOT NULL CHECK (chunk_size > 0),
    run_dir TEXT NOT NULL,
    model TEXT NOT NULL,
    model_hash TEXT NOT NULL,
    score TEXT NOT NULL,
    rate_khz REAL,
    threshold REAL,
    n_events INTEGER,
    events_stamp TEXT,
    chunks_total INTEGER,
    chunks_done INTEGER NOT NULL DEFAULT 0,
    events_done INTEGER NOT NULL DEFAULT 0,
    results_file TEXT,
    error TEXT,
    owner TEXT,
    lease_expires REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    resumed_from INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created);
"""

_PROCESS_TOKEN = uuid.uuid4().hex[:8]
_RUNNERS = iter(range(1, 1 << 62))


class JobStoreError(RuntimeError):
    """The jobs database cannot be opened or created (its path is in the message)."""


class QueueFull(Exception):
    """Submission refused: ``max_queued`` jobs are already waiting."""


def pid_namespace() -> str:
    """The inode of this process's pid namespace (``/proc/self/ns/pid``), ``-`` where unreadable:
    two processes of one host compare pids only inside one namespace (containers have their own)."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


def host_id() -> str:
    """``hostname:pidns``: where a pid means this process table."""
    return f"{socket.gethostname()}:{pid_namespace()}"


def new_owner() -> str:
    """A runner id ``host:pidns:pid:token:n``: unique per runner, naming the process that holds a lease."""
    return f"{host_id()}:{os.getpid()}:{_PROCESS_TOKEN}:{next(_RUNNERS)}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@dataclass(frozen=True)
class ModelRef:
    """The model a job scores with, fixed at submission."""

    run_dir: str
    model: str  # model directory name (``ebm-float``)
    model_hash: str
    score: str  # score label
    rate_khz: float | None  # the trigger rate of the flag threshold (None: no threshold, no flags)
    threshold: float | None  # flag = score > threshold


@dataclass(frozen=True)
class Job:
    """One row of the jobs table."""

    id: str
    state: str
    events_file: str
    chunk_size: int
    run_dir: str
    model: str
    model_hash: str
    score: str
    rate_khz: float | None
    threshold: float | None
    n_events: int | None
    events_stamp: str | None  # the input's identity id (l1ad.events.sources.identity) at the first claim
    chunks_total: int | None
    chunks_done: int
    events_done: int
    results_file: str | None
    error: str | None
    owner: str | None
    lease_expires: float | None
    attempts: int
    resumed_from: int | None
    cancel_requested: int
    created: float
    started: float | None
    finished: float | None
    updated: float

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        return cls(**{f.name: row[f.name] for f in fields(cls)})

    @property
    def model_ref(self) -> ModelRef:
        return ModelRef(self.run_dir, self.model, self.model_hash, self.score, self.rate_khz, self.threshold)


class JobStore:
    """The jobs table of one SQLite file; every method opens its own connection (thread-safe)."""

    def __init__(self, path: str | Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        """Open (or create) the database; :class:`JobStoreError` naming it if that is impossible."""
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise JobStoreError(
                        f"{self.path}: SQLite refused WAL mode (got {mode!r}); use a local disk"
                    )
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise JobStoreError(
                        f"{self.path}: jobs schema v{version} is newer than this l1ad's v{SCHEMA_VERSION}"
                    )
                conn.executescript(_SCHEMA)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
            raise JobStoreError(f"{self.path}: cannot open the jobs database ({exc})") from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL: a commit survives a process crash
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that holds the database's write lock from its first statement."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # ------------------------------------------------------------------ submitting and reading
    def submit(
        self, events_file: str, chunk_size: int, model: ModelRef, max_queued: int | None = None
    ) -> Job:
        """Queue a job; :class:`QueueFull` if ``max_queued`` jobs are already queued (counted in the
        same transaction, so concurrent submitters never exceed it)."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        job_id, now = uuid.uuid4().hex, time.time()
        with self._write() as conn:
            if max_queued is not None:
                queued = conn.execute("SELECT COUNT(*) FROM jobs WHERE state = 'queued'").fetchone()[0]
                if queued >= max_queued:
                    raise QueueFull(f"{queued} batch jobs are queued already (at most {max_queued}); "
                                    "try again later")  # fmt: skip
            conn.execute(
                "INSERT INTO jobs (id, state, events_file, chunk_size, run_dir, model, model_hash, score, "
                "rate_khz, threshold, created, updated) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, events_file, chunk_size, model.run_dir, model.model, model.model_hash, model.score,
                 model.rate_khz, model.threshold, now, now),
            )  # fmt: skip
        return self.get(job_id)

    def get(self, job_id: str) -> Job | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else Job.from_row(row)

    def list_jobs(self, state: str | None = None, limit: int = 100) -> list[Job]:
        """Jobs, newest first (only those in ``state`` if given)."""
        where, args = ("WHERE state = ?", (state,)) if state else ("", ())
        with self._connect() as conn:
            rows = conn.execute(
                f"SELECT * FROM jobs {where} ORDER BY created DESC, id LIMIT ?", (*args, limit)
            )
            return [Job.from_row(r) for r in rows.fetchall()]

    # ------------------------------------------------------------------ the runner's side
    def claim(self, owner: str, lease_s: float, now: float | None = None) -> Job | None:
        """Take the oldest queued job, or a running one whose lease expired, for ``owner``; None if none."""
        now = time.time() if now is None else now
        claimable = "(state = 'queued' OR (state = 'running' AND lease_expires < :now))"
        with self._write() as conn:
            row = conn.execute(
                f"UPDATE jobs SET state = 'running', owner = :owner, lease_expires = :exp, "
                f"attempts = attempts + 1, resumed_from = chunks_done, started = COALESCE(started, :now), "
                f"updated = :now WHERE id = (SELECT id FROM jobs WHERE {claimable} ORDER BY created, id LIMIT 1) "
                f"AND {claimable} RETURNING *",
                {"owner": owner, "exp": now + lease_s, "now": now},
            ).fetchone()
        return None if row is None else Job.from_row(row)

    def renew(self, job_id: str, owner: str, lease_s: float) -> bool:
        """Extend ``owner``'s lease; False if it no longer holds the job."""
        now = time.time()
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE jobs SET lease_expires = ?, updated = ? WHERE id = ? AND owner = ? AND state = 'running'",
                (now + lease_s, now, job_id, owner),
            )
            return cur.rowcount == 1

    def set_total(self, job_id: str, owner: str, n_events: int, chunks_total: int, stamp: str | None) -> bool:
        """The events file as the job's first run found it (a resumed run checks it is unchanged)."""
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE jobs SET n_events = ?, chunks_total = ?, events_stamp = ?, updated = ? "
                "WHERE id = ? AND owner = ? AND state = 'running'",
                (n_events, chunks_total, stamp, time.time(), job_id, owner),
            )
            return cur.rowcount == 1

    def record_chunk(self, job_id: str, owner: str, k: int, n_events: int) -> tuple[bool, bool]:
        """Chunk ``k`` is done (its results file is written): ``(recorded, cancel_requested)``.

        Not recorded when ``owner`` lost the job or ``k`` is not the next chunk (never counted twice)."""
        with self._write() as conn:
            row = conn.execute(
                "UPDATE jobs SET chunks_done = chunks_done + 1, events_done = events_done + ?, updated = ? "
                "WHERE id = ? AND owner = ? AND state = 'running' AND chunks_done = ? RETURNING cancel_requested",
                (n_events, time.time(), job_id, owner, k),
            ).fetchone()
        return (False, False) if row is None else (True, bool(row[0]))

    def finish(
        self, job_id: str, owner: str, state: str, results_file: str | None = None, error: str | None = None
    ) -> str | None:
        """``owner`` ends its job as ``state`` (succeeded, failed or cancelled): the state it ended in,
        ``cancelled`` whatever ``state`` was if a cancel was requested meanwhile (checked in the same
        statement); None if ``owner`` no longer holds the job."""
        if state not in TERMINAL:
            raise ValueError(f"{state!r} is not a final state {TERMINAL}")
        now = time.time()
        with self._write() as conn:
            row = conn.execute(
                "UPDATE jobs SET state = CASE WHEN cancel_requested THEN 'cancelled' ELSE :state END, "
                "results_file = CASE WHEN cancel_requested THEN NULL ELSE :res END, error = :err, "
                "owner = NULL, lease_expires = NULL, finished = :now, updated = :now "
                "WHERE id = :id AND owner = :owner AND state = 'running' RETURNING state",
                {"state": state, "res": results_file, "err": error, "now": now, "id": job_id, "owner": owner},
            ).fetchone()
        return None if row is None else str(row[0])

    def release(self, job_id: str, owner: str) -> str | None:
        """Give a running job back to the queue (server shutdown) and its attempt with it: it resumes at
        ``chunks_done``. A job whose cancel was requested is cancelled instead. The state it is in now,
        None if ``owner`` no longer holds the job."""
        now = time.time()
        with self._write() as conn:
            row = conn.execute(
                "UPDATE jobs SET state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END, "
                "finished = CASE WHEN cancel_requested THEN :now ELSE finished END, "
                "attempts = MAX(attempts - 1, 0), owner = NULL, lease_expires = NULL, updated = :now "
                "WHERE id = :id AND owner = :owner AND state = 'running' RETURNING state",
                {"now": now, "id": job_id, "owner": owner},
            ).fetchone()
        return None if row is None else str(row[0])

    def expire_dead_owners(self, alive: Callable[[int], bool] = pid_alive) -> list[str]:
        """Expire the leases of running jobs held by a dead process of this host and pid namespace (a
        killed server): its pid is gone, or it is this pid under another process token. Returns their
        ids. Owners on other hosts or in another pid namespace (another container: the same pid may be
        alive there) are left to their lease's expiry."""
        here = host_id()
        expired = []
        with self._write() as conn:
            for row in conn.execute("SELECT id, owner FROM jobs WHERE state = 'running'").fetchall():
                parts = str(row["owner"] or "").rsplit(":", 3)  # host:pidns, pid, token, n
                if len(parts) != 4 or parts[0] != here or not parts[1].isdigit():
                    continue
                pid = int(parts[1])
                dead = parts[2] != _PROCESS_TOKEN if pid == os.getpid() else not alive(pid)
                if dead:
                    conn.execute(
                        "UPDATE jobs SET lease_expires = 0 WHERE id = ? AND owner = ?",
                        (row["id"], row["owner"]),
                    )
                    expired.append(row["id"])
        if expired:
            logger.warning(
                "resuming %d job(s) of dead server processes: %s", len(expired), ", ".join(expired)
            )
        return expired

    # ------------------------------------------------------------------ the client's side
    def cancel(self, job_id: str) -> Job | None:
        """Cancel a job: at once when queued (or its runner is gone), else at the runner's next chunk
        boundary (``cancel_requested``). A finished job is returned unchanged; None if unknown."""
        now = time.time()
        with self._write() as conn:
            conn.execute(
                "UPDATE jobs SET state = 'cancelled', owner = NULL, lease_expires = NULL, cancel_requested = 1, "
                "finished = ?, updated = ? WHERE id = ? "
                "AND (state = 'queued' OR (state = 'running' AND lease_expires < ?))",
                (now, now, job_id, now),
            )
            conn.execute(
                "UPDATE jobs SET cancel_requested = 1, updated = ? WHERE id = ? AND state = 'running'",
                (now, job_id),
            )
        return self.get(job_id)
