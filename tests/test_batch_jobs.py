"""Durable batch scoring jobs: the SQLite store (states, atomic claim, leases, dead owners), the runner
(chunked scoring that resumes after a crash at its last recorded chunk, cancel, failures naming file and
row), the REST routes on a real loopback server, and a server killed with SIGKILL mid-job and restarted on
the same database. Results equal the registry's scores on the same events bit for bit, and flags equal
``score > threshold`` of the run's rate table (read from evaluation.json here, not through l1ad)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from l1ad.events.io import write_events
from l1ad.events.sources import write_parquet_events
from l1ad.models import registry
from l1ad.models.ebm.toydata import toy_events, write_toy_h5
from l1ad.serving.batch_runner import BatchRunner
from l1ad.serving.jobs import JobStore, ModelRef
from l1ad.serving.offline import OfflineScorer, read_results, write_results

TINY = {"hidden": 16, "n_blocks": 1, "n_frequencies": 4, "n_levels": 4, "ms_batch": 8, "batch_size": 128,
        "epochs": 1, "gmm_components": 2, "score_batch": 64}  # fmt: skip
LABEL = "ebm/float"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A run with a tiny energy model, evaluated (rate table at 5, 10, 50 kHz) on toy events."""
    from l1ad.evaluation.evaluate import evaluate_run
    from l1ad.models.ebm.train import train_model

    root = tmp_path_factory.mktemp("batch")
    bkg = write_toy_h5(root / "bkg.h5", 600, seed=0)
    test = write_events(root / "test.h5", toy_events(8000, seed=5))
    sig = write_events(root / "sig.h5", toy_events(200, seed=6, anomalous=True))
    train_model("ebm", bkg, root / "run", config=TINY, seed=0)
    evaluate_run(root / "run", test, {"toy": sig})
    return root / "run"


@pytest.fixture(scope="module")
def run_b(run) -> Path:
    """A second tiny model beside ``run`` (another seed, not evaluated: no thresholds)."""
    from l1ad.models.ebm.train import train_model

    train_model("ebm", run.parent / "bkg.h5", run.parent / "run_b", config=TINY, seed=1)
    return run.parent / "run_b"


def rate_table(run: Path) -> dict[float, float]:
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


class Counting:
    """A scorer factory whose scorers count the events they score and may act before chunk ``at``."""

    def __init__(self, at: int | None = None, action=None, each=None) -> None:
        self.events, self.calls, self.at, self.action, self.each = 0, 0, at, action, each

    def __call__(self, spec):
        real, outer = OfflineScorer(spec), self

        class Wrapped:
            def __call__(self, particles):
                if outer.calls == outer.at:
                    outer.action()
                if outer.each is not None:
                    outer.each()
                outer.calls += 1
                outer.events += len(particles)
                return real(particles)

            def metadata(self):
                return real.metadata()

            def close(self):
                real.close()

        return Wrapped()


def crash():
    raise Crash


# --------------------------------------------------------------------------- the store
def test_store_states_claims_leases_and_chunk_records(tmp_path, run) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    with sqlite3.connect(tmp_path / "jobs.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    ref = model_ref(run)
    first = store.submit("/data/a.h5", 10, ref)
    second = store.submit("/data/b.h5", 10, ref)
    assert first.state == second.state == "queued" and first.model_ref == ref
    a = store.claim("A", lease_s=30)
    b = store.claim("B", lease_s=30)
    assert (a.id, b.id) == (first.id, second.id) and a.state == b.state == "running"
    assert store.claim("C", lease_s=30) is None  # both leased
    assert store.renew(a.id, "A", 30) and not store.renew(a.id, "B", 30)
    assert store.record_chunk(a.id, "B", 0, 10) == (False, False)  # not B's job
    assert store.record_chunk(a.id, "A", 1, 10) == (False, False)  # chunk 0 comes first
    assert store.record_chunk(a.id, "A", 0, 10) == (True, False)
    assert store.record_chunk(a.id, "A", 0, 10) == (False, False)  # never counted twice
    assert store.get(a.id).chunks_done == 1 and store.get(a.id).events_done == 10
    assert store.finish(a.id, "A", "succeeded", results_file="/r.parquet")
    assert not store.finish(a.id, "A", "failed")  # finished once
    done = store.get(a.id)
    assert done.state == "succeeded" and done.owner is None and done.results_file == "/r.parquet"
    # B's lease expires: C takes the job over where B left it, B can no longer write
    assert store.record_chunk(b.id, "B", 0, 10) == (True, False)
    later = time.time() + 31
    c = store.claim("C", lease_s=30, now=later)
    assert c.id == b.id and c.owner == "C" and c.attempts == 2 and c.resumed_from == 1
    assert store.record_chunk(b.id, "B", 1, 10) == (False, False) and not store.renew(b.id, "B", 30)
    # cancel: a running job at its runner's next chunk boundary, a queued one at once
    assert store.cancel(b.id).state == "running" and store.get(b.id).cancel_requested
    assert store.record_chunk(b.id, "C", 1, 10) == (True, True)
    queued = store.submit("/data/c.h5", 10, ref)
    assert store.cancel(queued.id).state == "cancelled" and store.claim("D", 30) is None
    assert store.cancel("nope") is None and store.get("nope") is None
    assert [j.id for j in store.list_jobs()] == [queued.id, second.id, first.id]
    assert [j.id for j in store.list_jobs("succeeded")] == [first.id]


CLAIMER = """
import json, sys, time
from l1ad.serving.jobs import JobStore
store, got = JobStore(sys.argv[1]), []
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))  # all claimers start together
while (job := store.claim(sys.argv[2], lease_s=600)) is not None:
    got.append(job.id)
print(json.dumps(got))
"""


def test_claim_is_atomic_across_processes(tmp_path, run) -> None:
    db = str(tmp_path / "jobs.sqlite")
    store = JobStore(db)
    ids = {store.submit(f"/data/{i}.h5", 10, model_ref(run)).id for i in range(200)}
    go = str(time.time() + 2.0)
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, db, f"P{i}", go], stdout=subprocess.PIPE, text=True)
             for i in range(3)]  # fmt: skip
    claimed = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    flat = [j for got in claimed for j in got]
    assert len(flat) == len(set(flat)) == len(ids) and set(flat) == ids  # each job exactly once
    assert sum(1 for got in claimed if got) >= 2  # they did compete
    owners = {j.id: j.owner for j in store.list_jobs(limit=1000)}
    for i, got in enumerate(claimed):
        assert all(owners[j] == f"P{i}" for j in got)


def test_jobs_of_dead_server_processes_are_claimable_at_once(tmp_path, run) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    owners = {"dead": f"{host}:{dead.pid}:abcd1234:1", "alive": f"{host}:{os.getppid()}:abcd1234:1",
              "remote": f"elsewhere:{dead.pid}:abcd1234:1"}  # fmt: skip
    jobs = {}
    for name, owner in owners.items():
        store.submit(f"/data/{name}.h5", 10, model_ref(run))
        jobs[name] = store.claim(owner, lease_s=3600).id
    assert store.claim("new", lease_s=30) is None
    assert store.expire_dead_owners() == [jobs["dead"]]
    job = store.claim("new", lease_s=30)
    assert job.id == jobs["dead"] and job.attempts == 2
    assert store.claim("new", lease_s=30) is None  # the live and the remote owner keep theirs


# --------------------------------------------------------------------------- the runner
def test_runner_resumes_after_a_crash_without_scoring_twice(tmp_path, run) -> None:
    events = toy_events(23_456, seed=21)
    src = write_events(tmp_path / "events.h5", events)
    store = JobStore(tmp_path / "jobs.sqlite")
    job = store.submit(str(src), 5000, model_ref(run, 10.0))
    crashing = Counting(at=2, action=crash)  # dies while scoring chunk 2
    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # the crashed server process
    dead.wait()
    owner = f"{socket.gethostname()}:{dead.pid}:abcd1234:1"
    a = BatchRunner(store, tmp_path / "results", owner=owner, lease_s=30, scorer_factory=crashing)
    with pytest.raises(Crash):
        a.run_once()
    left = store.get(job.id)
    assert (
        left.state == "running" and left.owner == owner and left.chunks_done == 2 and left.chunks_total == 5
    )
    assert [p.name for p in sorted(a.parts_dir(job.id).iterdir())] == [
        "part-000000.parquet",
        "part-000001.parquet",
    ]
    # chunk 2's results were written but not recorded when the process died: wrong content, overwritten
    write_results(a.part_path(job.id, 2), 0, np.zeros(5000), np.ones(5000, bool), {})
    resumed = Counting()
    b = BatchRunner(store, tmp_path / "results", owner="B", lease_s=30, scorer_factory=resumed)
    assert b.run_once() is None  # A's lease still holds
    assert b.recover() == [job.id]  # what a restarted server does first: A's process is gone
    done = b.run_once()
    assert done.state == "succeeded" and done.attempts == 2 and done.resumed_from == 2, done
    assert resumed.events == len(events) - 2 * 5000  # the recorded chunks were not scored again
    assert done.events_done == len(events) and done.chunks_done == 5
    check_results(done.results_file, run, events, 10.0)
    assert not a.parts_dir(job.id).exists() and Path(done.results_file) == b.results_path(job.id)


def test_a_job_resumed_on_a_changed_file_fails(tmp_path, run) -> None:
    src = write_events(tmp_path / "events.h5", toy_events(4000, seed=28))
    store = JobStore(tmp_path / "jobs.sqlite")
    job = store.submit(str(src), 1000, model_ref(run))
    a = BatchRunner(
        store, tmp_path / "results", owner="A", lease_s=0.2, scorer_factory=Counting(at=1, action=crash)
    )
    with pytest.raises(Crash):
        a.run_once()
    write_events(src, toy_events(4000, seed=29))  # as many events, other ones
    time.sleep(0.25)
    out = BatchRunner(store, tmp_path / "results", owner="B").run_once()
    assert out.id == job.id and out.state == "failed" and out.chunks_done == 1
    assert str(src) in out.error and "changed since the job started" in out.error, out.error


def test_runner_stop_requeues_cancel_stops_and_lease_is_renewed(tmp_path, run) -> None:
    events = toy_events(9000, seed=22)
    pq_file = write_parquet_events(tmp_path / "events.parquet", events)
    store = JobStore(tmp_path / "jobs.sqlite")
    res = tmp_path / "results"
    # a stop request between chunks: back to the queue, resumed by the next runner (Parquet input)
    job = store.submit(str(pq_file), 2000, model_ref(run, 5.0))
    box: dict = {}
    stopping = Counting(at=2, action=lambda: box["runner"].request_stop())
    box["runner"] = BatchRunner(store, res, owner="A", scorer_factory=stopping)
    assert box["runner"].run_once().state == "queued"
    assert store.get(job.id).chunks_done == 3 and stopping.calls == 3
    rest = Counting()
    done = BatchRunner(store, res, owner="B", scorer_factory=rest).run_once()
    assert done.state == "succeeded" and rest.events == 9000 - 3 * 2000
    check_results(done.results_file, run, events, 5.0)
    # cancel while running: the runner stops after the chunk it is scoring
    job = store.submit(str(pq_file), 2000, model_ref(run))
    cancelling = Counting(at=1, action=lambda: store.cancel(job.id))
    runner = BatchRunner(store, res, owner="C", scorer_factory=cancelling)
    out = runner.run_once()
    assert (
        out.state == "cancelled"
        and out.chunks_done == 2
        and cancelling.calls == 2
        and out.results_file is None
    )
    assert not runner.parts_dir(job.id).exists() and not runner.results_path(job.id).exists()
    # the heartbeat keeps a slow job's lease: nobody else can claim it after its lease time
    job = store.submit(str(pq_file), 3000, model_ref(run))
    thefts: list = []

    def slow_chunk() -> None:
        time.sleep(0.5)
        thefts.append(store.claim("thief", lease_s=30))

    runner = BatchRunner(store, res, owner="D", lease_s=0.3, scorer_factory=Counting(each=slow_chunk))
    assert runner.run_once().state == "succeeded"
    assert thefts == [None, None, None]  # 1.5 s of a 0.3 s lease: renewed throughout


@pytest.mark.parametrize("case", ["missing", "bad_row", "not_events", "format", "model_changed"])
def test_runner_fails_jobs_naming_file_and_row(tmp_path, run, case) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    ref, expect = model_ref(run), []
    if case == "missing":
        path = tmp_path / "nope.h5"
    elif case == "bad_row":  # row 7777 lies in the third chunk: the row number is the file's
        p = toy_events(9000, seed=23)
        p[7777, 1, 1] = 9.0  # an electron at eta 9
        path = write_events(tmp_path / "bad.h5", p, check=False)
        expect = ["row 7777", "eta"]
    elif case == "not_events":
        path = tmp_path / "text.parquet"
        path.write_text("not parquet")
    elif case == "format":
        path = tmp_path / "events.csv"
        path.write_text("1,2,3")
    else:
        path = write_events(tmp_path / "ok.h5", toy_events(100, seed=1))
        ref, expect = model_ref(run, model_hash="0" * 64), ["changed since the job was submitted"]
    job = store.submit(str(path), 3000, ref)
    out = BatchRunner(store, tmp_path / "results", owner="A").run_once()
    assert out.id == job.id and out.state == "failed" and out.results_file is None
    assert str(path) in out.error and all(e in out.error for e in expect), out.error
    if case == "bad_row":
        assert out.chunks_done == 2  # the chunks before the bad row were scored, then the job failed
    assert not (tmp_path / "results" / job.id).exists()


# --------------------------------------------------------------------------- the REST routes
def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(method: str, url: str, body=None, raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _wait(url: str, job_id: str, until, timeout: float = 60.0, every: float = 0.05) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        code, job = _request("GET", f"{url}/api/v1/score/batch/{job_id}")
        assert code == 200, job
        if until(job):
            return job
        time.sleep(every)
    raise AssertionError(f"job {job_id} did not get there in {timeout} s: {job}")


@pytest.fixture
def live(tmp_path, run):
    """The app in a uvicorn thread on a loopback port (real HTTP, runner thread, this process)."""
    import uvicorn

    from l1ad.serving.app import create_app
    from l1ad.serving.batch_runner import BatchConfig
    from l1ad.serving.service import Service
    from l1ad.serving.state import ServeConfig

    cfg = BatchConfig(tmp_path / "jobs.sqlite", tmp_path / "results", chunk_size=1000, poll_s=0.2)
    app = create_app(Service(ServeConfig(run_dir=run)), batch=cfg)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_port(), log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    t.join(30)


BAD = [
    (b"{oops", 400, "not valid JSON"),
    (b"[]", 422, "JSON object"),
    (b'{"file": "x.h5"}', 422, "JSON object"),
    (b'{"events_file": 3}', 422, "events_file must be"),
    (b'{"events_file": ""}', 422, "events_file must be"),
    (b'{"events_file": "x.h5", "chunk": 5}', 422, "unknown field(s) ['chunk']"),
    (b'{"events_file": "x.h5", "chunk_size": 0}', 422, "chunk_size must be"),
    (b'{"events_file": "x.h5", "chunk_size": 2.5}', 422, "chunk_size must be"),
    (b'{"events_file": "x.h5", "rate_khz": "5"}', 422, "rate_khz must be"),
    (b'{"events_file": "x.h5", "rate_khz": true}', 422, "rate_khz must be"),
    (b'{"events_file": "x.h5", "rate_khz": 3.3}', 400, "no threshold for 3.3 kHz"),
]


def test_rest_submit_status_list_cancel_and_bad_requests(live, tmp_path, run) -> None:
    events = toy_events(5500, seed=24)
    src = write_events(tmp_path / "events.h5", events)
    code, sub = _request("POST", live + "/api/v1/score/batch", {"events_file": str(src), "rate_khz": 50})
    assert code == 202 and sub["status"] == "queued" and len(sub["job_id"]) == 32
    seen: list[str] = []
    job = _wait(
        live, sub["job_id"], lambda j: seen.append(j["status"]) or j["status"] in ("succeeded", "failed")
    )
    assert job["status"] == "succeeded", job
    order = ["queued", "running", "succeeded"]
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)  # only forward
    assert job["progress"] == {"events_done": 5500, "events_total": 5500, "chunks_done": 6, "chunks_total": 6,
                               "fraction": 1.0}  # fmt: skip
    assert job["threshold"] == {"rate_khz": 50.0, "value": rate_table(run)[50.0]} and job["score"] == LABEL
    assert job["model"]["name"] == "ebm-float" and job["model"]["hash"] == registry.model_hash(
        run / "ebm-float"
    )
    assert 0 < check_results(job["results_file"], run, events, 50.0) < len(events)  # ~7 expected
    with urllib.request.urlopen(f"{live}/api/v1/score/batch/{sub['job_id']}/results", timeout=30) as r:
        assert r.read() == Path(job["results_file"]).read_bytes()
    # a long job runs, the one behind it waits; cancelling either stops it
    big = write_events(tmp_path / "big.h5", toy_events(40_000, seed=25))
    long_id = _request("POST", live + "/api/v1/score/batch", {"events_file": str(big), "chunk_size": 500})[1][
        "job_id"
    ]
    queued_id = _request("POST", live + "/api/v1/score/batch", {"events_file": str(src)})[1]["job_id"]
    _wait(live, long_id, lambda j: j["progress"]["chunks_done"] >= 1)
    code, q = _request("DELETE", f"{live}/api/v1/score/batch/{queued_id}")
    assert code == 200 and q["status"] == "cancelled"
    code, c = _request("DELETE", f"{live}/api/v1/score/batch/{long_id}")
    assert code in (200, 202) and c["cancel_requested"], c
    gone = _wait(live, long_id, lambda j: j["status"] != "running")
    assert (
        gone["status"] == "cancelled" and gone["progress"]["chunks_done"] < gone["progress"]["chunks_total"]
    )
    assert gone["results_file"] is None and not (tmp_path / "results" / long_id).exists()
    assert _request("GET", f"{live}/api/v1/score/batch/{long_id}/results")[0] == 409
    code, again = _request("DELETE", f"{live}/api/v1/score/batch/{sub['job_id']}")
    assert code == 409 and "already succeeded" in again["error"]
    # failures are the job's, visible in its status
    bad = _request("POST", live + "/api/v1/score/batch", {"events_file": str(tmp_path / "missing.h5")})[1]
    failed = _wait(live, bad["job_id"], lambda j: j["status"] in ("failed", "succeeded"))
    assert failed["status"] == "failed" and str(tmp_path / "missing.h5") in failed["error"]
    listed = _request("GET", live + "/api/v1/score/batch")[1]["jobs"]
    assert [j["job_id"] for j in listed] == [bad["job_id"], queued_id, long_id, sub["job_id"]]
    assert [j["job_id"] for j in _request("GET", live + "/api/v1/score/batch?status=cancelled")[1]["jobs"]] == [
        queued_id, long_id]  # fmt: skip
    assert _request("GET", live + "/api/v1/score/batch?status=done")[0] == 422
    for method in ("GET", "DELETE"):
        code, out = _request(method, f"{live}/api/v1/score/batch/{'f' * 32}")
        assert code == 404 and "unknown batch job" in out["error"]
    for raw, code, message in BAD:
        got, out = _request("POST", live + "/api/v1/score/batch", raw=raw)
        assert got == code and message in out["error"], (raw, got, out)
    assert len(_request("GET", live + "/api/v1/score/batch")[1]["jobs"]) == 4  # bad requests made no job


def test_rest_reload_keeps_the_model_of_submitted_jobs(live, tmp_path, run, run_b) -> None:
    events = toy_events(20_000, seed=27)
    src = write_events(tmp_path / "events.h5", events)
    before = _request("POST", live + "/api/v1/score/batch", {"events_file": str(src), "chunk_size": 1000})[1]
    _wait(live, before["job_id"], lambda j: j["progress"]["chunks_done"] >= 1)
    code, out = _request("POST", live + "/admin/reload", {"run_dir": str(run_b)})
    assert code == 200, out
    mid = _request("GET", f"{live}/api/v1/score/batch/{before['job_id']}")[1]
    assert mid["status"] == "running" and mid["progress"]["chunks_done"] < 20  # reloaded mid-job
    after = _request("POST", live + "/api/v1/score/batch", {"events_file": str(src), "chunk_size": 10_000})[1]
    old = _wait(live, before["job_id"], lambda j: j["status"] != "running" and j["status"] != "queued")
    new = _wait(live, after["job_id"], lambda j: j["status"] != "running" and j["status"] != "queued")
    assert old["status"] == new["status"] == "succeeded", (old, new)
    assert old["progress"]["chunks_done"] == 20 and old["model"]["hash"] == registry.model_hash(
        run / "ebm-float"
    )
    check_results(old["results_file"], run, events, min(rate_table(run)))  # all of it on the first model
    assert new["model"]["hash"] == registry.model_hash(run_b / "ebm-float") != old["model"]["hash"]
    cols, _ = read_results(new["results_file"])
    np.testing.assert_array_equal(cols["score"], registry.primary_score(registry.find(run_b, LABEL), events))
    assert new["threshold"] is None and not cols["flag"].any()  # run B has no rate table: no flags


# --------------------------------------------------------------------------- kill -9 and restart
def _start_server(run: Path, port: int, db: Path, results: Path, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "l1ad.cli.main", "serve", "--run", str(run), "--port", str(port),
           "--jobs-db", str(db), "--results-dir", str(results), "--batch-chunk-size", "10000"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=open(log, "a"), stderr=subprocess.STDOUT)  # noqa: SIM115
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


@pytest.mark.slow
def test_server_killed_mid_job_resumes_on_restart(tmp_path, run) -> None:
    n, chunk = 200_000, 10_000
    events = toy_events(n, seed=26)
    src = write_events(tmp_path / "events.h5", events)
    db, results, log = tmp_path / "jobs.sqlite", tmp_path / "results", tmp_path / "server.log"
    port = _port()
    proc = _start_server(run, port, db, results, log)
    url = f"http://127.0.0.1:{port}"
    try:
        t0 = time.time()
        job_id = _request("POST", url + "/api/v1/score/batch", {"events_file": str(src)})[1]["job_id"]
        mid = _wait(url, job_id, lambda j: j["progress"]["chunks_done"] >= 3, every=0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        t_kill = time.time()
    finally:
        proc.kill()
    total = mid["progress"]["chunks_total"]
    assert total == n // chunk  # --batch-chunk-size
    with sqlite3.connect(db) as conn:
        state, done = conn.execute("SELECT state, chunks_done FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert state == "running" and 3 <= done < total, (state, done, total)  # killed mid-job
    port = _port()
    proc = _start_server(run, port, db, results, log)
    url = f"http://127.0.0.1:{port}"
    try:
        t_restart = time.time()
        job = _wait(url, job_id, lambda j: j["status"] in ("succeeded", "failed", "cancelled"), every=0.1)
        t_end = time.time()
    finally:
        proc.terminate()
        proc.wait(20)
    assert job["status"] == "succeeded", (job, log.read_text()[-2000:])
    assert job["attempts"] == 2 and job["resumed_from_chunk"] == done and job["progress"]["events_done"] == n
    flagged = check_results(job["results_file"], run, events, min(rate_table(run)))  # default: lowest rate
    assert 0 < flagged < n  # ~25 expected at 5 kHz of 40 MHz
    print(f"\nkill -9 after {done}/{total} chunks of {chunk} ({t_kill - t0:.2f} s after submission); "
          f"after restart finished in {t_end - t_restart:.2f} s ({(n - done * chunk) / (t_end - t_restart):.0f} events/s "
          f"incl. polling)")  # fmt: skip
