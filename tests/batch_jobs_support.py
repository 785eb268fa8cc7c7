"""Shared by the batch job tests (tests/test_batch_jobs_*.py): a tiny evaluated run, the reference check
of a results file, scorer wrappers that count or crash, a gate that holds the runner at a chunk, owner
ids of dead processes, and a live server in this process with its HTTP helpers."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from toy_runs import toy_runs

from l1ad.models import registry
from l1ad.serving.jobs import ModelRef, host_id
from l1ad.serving.offline import OfflineScorer, read_results

LABEL = "ebm/float"
PREFIX = "/api/v1/score/batch"
#: A model reference for store tests that never score.
FAKE_REF = ModelRef("/runs/x", "ebm-float", "0" * 64, LABEL, 10.0, 1.5)


def train_run(root: Path) -> Path:
    """A run with a tiny energy model, evaluated (rate table at 5, 10, 50 kHz) on toy events."""
    return toy_runs(root)["run"]


def rate_table(run: Path) -> dict[float, float]:
    """Rate (kHz) -> threshold, read from evaluation.json directly (not through l1ad)."""
    rows = json.loads((run / "evaluation.json").read_text())["rates"][LABEL]
    return {r["target_rate_khz"]: r["threshold"] for r in rows if r["resolved"]}


def model_ref(run: Path, rate_khz: float = 10.0, model_hash: str | None = None) -> ModelRef:
    path = run / "ebm-float"
    return ModelRef(str(run), path.name, model_hash or registry.model_hash(path), LABEL, rate_khz,
                    rate_table(run)[rate_khz])  # fmt: skip


def check_results(path: str | Path, run: Path, events: np.ndarray, rate_khz: float) -> int:
    """Event by event: the registry's primary score and ``score > threshold``, each event once.
    Returns the number of flagged events."""
    cols, meta = read_results(path)
    ref = registry.primary_score(registry.find(run, LABEL), events)
    np.testing.assert_array_equal(cols["event_index"], np.arange(len(events)))  # once each, in order
    np.testing.assert_array_equal(cols["score"], ref)
    np.testing.assert_array_equal(cols["flag"], ref > rate_table(run)[rate_khz])
    assert meta["model_hash"] == registry.model_hash(run / "ebm-float") and meta["score"] == LABEL
    return int(cols["flag"].sum())


class Crash(BaseException):
    """The process dies here: nothing after it runs (not an Exception the runner would handle)."""


def crash() -> None:
    raise Crash


class Counting:
    """A scorer factory whose scorers count the events they score and may act before chunk ``at``."""

    def __init__(self, at: int | None = None, action=None) -> None:
        self.events, self.calls, self.at, self.action = 0, 0, at, action

    def __call__(self, spec):
        real, outer = OfflineScorer(spec), self

        class Wrapped:
            def __call__(self, particles):
                if outer.calls == outer.at:
                    outer.action()
                outer.calls += 1
                outer.events += len(particles)
                return real(particles)

            def metadata(self):
                return real.metadata()

            def close(self):
                real.close()

        return Wrapped()


class Gate:
    """A runner's ``on_chunk``: holds the first job that gets to chunk ``at`` (``at == chunks_total``:
    before it is finished) until :meth:`open`; ``reached`` is set while it waits."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.reached = threading.Event()
        self._open = threading.Event()

    def __call__(self, job_id: str, k: int) -> None:
        if k == self.at and not self._open.is_set():
            self.reached.set()
            if not self._open.wait(120):
                raise RuntimeError("the test never opened the gate")

    def wait(self, timeout: float = 60.0) -> None:
        assert self.reached.wait(timeout), f"no job reached chunk {self.at} in {timeout} s"

    def open(self) -> None:
        self._open.set()


def dead_pid() -> int:
    """The pid of a process that has exited (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def owner_of(pid: int, where: str | None = None, token: str = "abcd1234") -> str:
    """A runner id of ``pid`` on ``where`` (``host:pidns``; default: this host and pid namespace)."""
    return f"{where or host_id()}:{pid}:{token}:1"


# --------------------------------------------------------------------------- a live server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method: str, url: str, body=None, raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def submit(url: str, body: dict) -> tuple[int, dict]:
    return request("POST", url + PREFIX, body)


def wait_job(url: str, job_id: str, until, timeout: float = 120.0, every: float = 0.05) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        code, job = request("GET", f"{url}{PREFIX}/{job_id}")
        assert code == 200, job
        if until(job):
            return job
        time.sleep(every)
    raise AssertionError(f"job {job_id} did not get there in {timeout} s: {job}")


def ended(url: str, job_id: str) -> dict:
    return wait_job(url, job_id, lambda j: j["status"] not in ("queued", "running"))


class Live:
    """A server in this process: its URL and its batch jobs (``batch.runner.on_chunk`` takes a Gate)."""

    def __init__(self, url: str, app) -> None:
        self.url, self.batch, self.gates = url, app.state.batch, []

    def gate(self, at: int) -> Gate:
        g = Gate(at)
        self.gates.append(g)
        self.batch.runner.on_chunk = g
        return g


@contextmanager
def serving(app):
    """The app in a uvicorn thread on a loopback port (real HTTP, runner thread, this process)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.time() + 60
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    live = Live(f"http://127.0.0.1:{server.config.port}", app)
    try:
        yield live
    finally:
        for g in live.gates:  # a failed test must not leave the runner waiting
            g.open()
        server.should_exit = True
        t.join(60)
