"""Batch scoring jobs through the service: the REST routes on a real loopback server (submit, status,
list, cancel, results, 4xx/5xx answers naming the problem), where inputs may come from (the batch root,
allowed URL schemes), the queue limit, a locked database (503), a default database that cannot be
created (batch routes 503, the service runs) or an explicit one (``l1ad serve`` exits 2), and a server
killed with SIGKILL mid-job and restarted on the same database. Jobs are held at known chunks with the
runner's ``on_chunk`` gate, never by timing."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from batch_jobs_support import (
    LABEL,
    PREFIX,
    Live,
    check_results,
    ended,
    free_port,
    rate_table,
    request,
    serving,
    submit,
    train_run,
    wait_job,
)

from l1ad.events.io import write_events
from l1ad.events.sources import write_parquet_events
from l1ad.models import registry
from l1ad.models.ebm.toydata import TINY_CONFIG, toy_events
from l1ad.serving.offline import read_results


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return train_run(tmp_path_factory.mktemp("batch_service"))


@pytest.fixture(scope="module")
def run_b(run) -> Path:
    """A second tiny model beside ``run`` (another seed, not evaluated: no thresholds)."""
    from l1ad.models.ebm.train import train_model

    train_model("ebm", run.parent / "bkg.h5", run.parent / "run_b", config=TINY_CONFIG, seed=1)
    return run.parent / "run_b"


@pytest.fixture
def make_live(tmp_path, run):
    """``make_live(**BatchConfig fields)``: a live server on ``run``, jobs in tmp_path (the batch root)."""
    from contextlib import ExitStack

    from l1ad.serving.app import create_app
    from l1ad.serving.batch_runner import BatchConfig
    from l1ad.serving.service import Service
    from l1ad.serving.state import ServeConfig

    stack = ExitStack()

    def make(**kwargs) -> Live:
        cfg = {"chunk_size": 1000, "poll_s": 0.2, "root": tmp_path, **kwargs}
        batch = BatchConfig(tmp_path / "jobs.sqlite", tmp_path / "results", **cfg)
        return stack.enter_context(serving(create_app(Service(ServeConfig(run_dir=run)), batch=batch)))

    with stack:
        yield make


def _bad(root: Path) -> list[tuple[bytes, int, str]]:
    ok = json.dumps(str(root / "x.h5"))
    return [
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
        (b'{"events_file": %s, "rate_khz": 3.3}' % ok.encode(), 400, "no threshold for 3.3 kHz"),
        (b'{"events_file": "~nosuchuser/x.h5"}', 422, "events_file '~nosuchuser/x.h5' cannot be expanded"),
        (b'{"events_file": %s}' % json.dumps(str(root / "e.csv")).encode(), 422, "unknown event file format"),
        (b'{"events_file": "/etc/x.h5"}', 403, f"outside the batch root '{root}'"),
        (b'{"events_file": %s}' % json.dumps(str(root / ".." / "x.h5")).encode(), 403, "outside the batch root"),
        (b'{"events_file": "s3://bucket/x.h5"}', 403, "URL scheme 's3' is not allowed"),
        (b'{"events_file": "http://169.254.169.254/x.h5"}', 403, "URL scheme 'http' is not allowed"),
    ]  # fmt: skip


def test_rest_submit_status_list_cancel_and_bad_requests(make_live, tmp_path, run) -> None:
    live = make_live()
    url = live.url
    events = toy_events(5500, seed=24)
    src = write_events(tmp_path / "events.h5", events)
    code, sub = submit(url, {"events_file": str(src), "rate_khz": 50})
    assert code == 202 and sub["status"] == "queued" and len(sub["job_id"]) == 32
    seen: list[str] = []
    job = wait_job(
        url, sub["job_id"], lambda j: seen.append(j["status"]) or j["status"] in ("succeeded", "failed")
    )
    assert job["status"] == "succeeded", job
    order = ["queued", "running", "succeeded"]
    assert [order.index(s) for s in seen] == sorted(order.index(s) for s in seen)  # only forward
    assert job["progress"] == {"events_done": 5500, "events_total": 5500, "chunks_done": 6, "chunks_total": 6,
                               "fraction": 1.0}  # fmt: skip
    assert job["threshold"] == {"rate_khz": 50.0, "value": rate_table(run)[50.0]} and job["score"] == LABEL
    assert job["model"]["name"] == "ebm-float"
    assert job["model"]["hash"] == registry.model_hash(run / "ebm-float") and job["attempts"] == 1
    assert 0 < check_results(job["results_file"], run, events, 50.0) < len(events)  # ~7 expected
    with urllib.request.urlopen(f"{url}{PREFIX}/{sub['job_id']}/results", timeout=30) as r:
        assert r.read() == Path(job["results_file"]).read_bytes()
    # a long job runs (held before its chunk 1), the one behind it waits; cancelling either stops it
    gate = live.gate(1)
    big = write_events(tmp_path / "big.h5", toy_events(4000, seed=25))
    long_id = submit(url, {"events_file": str(big), "chunk_size": 500})[1]["job_id"]
    queued_id = submit(url, {"events_file": str(src)})[1]["job_id"]
    gate.wait()
    code, q = request("DELETE", f"{url}{PREFIX}/{queued_id}")
    assert code == 200 and q["status"] == "cancelled"
    code, c = request("DELETE", f"{url}{PREFIX}/{long_id}")
    assert code == 202 and c["status"] == "running" and c["cancel_requested"], c
    gate.open()
    gone = ended(url, long_id)
    assert gone["status"] == "cancelled" and gone["progress"]["chunks_done"] == 2  # chunk 1 was scoring
    assert gone["results_file"] is None and not (tmp_path / "results" / long_id).exists()
    assert request("GET", f"{url}{PREFIX}/{long_id}/results")[0] == 409
    code, again = request("DELETE", f"{url}{PREFIX}/{sub['job_id']}")
    assert code == 409 and "already succeeded" in again["error"]
    # failures are the job's, visible in its status
    bad = submit(url, {"events_file": str(tmp_path / "missing.h5")})[1]
    failed = ended(url, bad["job_id"])
    assert failed["status"] == "failed" and str(tmp_path / "missing.h5") in failed["error"]
    listed = request("GET", url + PREFIX)[1]["jobs"]
    assert [j["job_id"] for j in listed] == [bad["job_id"], queued_id, long_id, sub["job_id"]]
    assert [j["job_id"] for j in request("GET", url + PREFIX + "?status=cancelled")[1]["jobs"]] == [
        queued_id, long_id]  # fmt: skip
    assert request("GET", url + PREFIX + "?status=done")[0] == 422
    for method in ("GET", "DELETE"):
        code, out = request(method, f"{url}{PREFIX}/{'f' * 32}")
        assert code == 404 and "unknown batch job" in out["error"]
    for raw, code, message in _bad(tmp_path):
        got, out = request("POST", url + PREFIX, raw=raw)
        assert got == code and message in out["error"], (raw, got, out)
    assert len(request("GET", url + PREFIX)[1]["jobs"]) == 4  # bad requests made no job
    # the results file of a succeeded job was removed: 410 naming it, not a server error
    Path(job["results_file"]).unlink()
    code, out = request("GET", f"{url}{PREFIX}/{sub['job_id']}/results")
    assert code == 410 and job["results_file"] in out["error"], out


def test_cancel_racing_the_finish_ends_cancelled(make_live, tmp_path) -> None:
    live = make_live()
    gate = live.gate(3)  # 3 = chunks_total: every chunk recorded, the job not yet finished
    src = write_events(tmp_path / "events.h5", toy_events(2500, seed=33))
    job_id = submit(live.url, {"events_file": str(src)})[1]["job_id"]
    gate.wait()
    code, c = request("DELETE", f"{live.url}{PREFIX}/{job_id}")
    assert code == 202 and c["progress"]["chunks_done"] == 3, c
    gate.open()
    out = ended(live.url, job_id)
    assert out["status"] == "cancelled" and out["results_file"] is None, out  # as answered: cancelled
    assert not (tmp_path / "results" / f"{job_id}.parquet").exists()


def test_inputs_only_from_the_batch_root_or_allowed_url_schemes(make_live, tmp_path, run) -> None:
    import fsspec

    live = make_live(url_schemes=("file", "memory"))
    events = toy_events(1500, seed=34)
    src = write_events(tmp_path / "events.h5", events)
    pq = write_parquet_events(tmp_path / "events.parquet", events)
    fsspec.filesystem("memory").pipe("/batch-test/events.parquet", pq.read_bytes())
    for path in (f"file://{src}", "memory://batch-test/events.parquet"):
        code, sub = submit(live.url, {"events_file": path})
        assert code == 202, sub
        job = ended(live.url, sub["job_id"])
        assert job["status"] == "succeeded" and job["events_file"] == path, job
        check_results(job["results_file"], run, events, min(rate_table(run)))
    outside = tmp_path.parent / "elsewhere.h5"
    (tmp_path / "link.h5").symlink_to(outside)
    for path, code, message in [
        (f"file://{outside}", 403, f"outside the batch root '{tmp_path}'"),
        (str(tmp_path / "link.h5"), 403, "outside the batch root"),  # resolved: a link cannot leave it
        (f"file://{tmp_path}/../elsewhere.h5", 403, "outside the batch root"),
        ("file://events.h5", 422, "a file:// URL needs an absolute path"),
        (f"simplecache::file://{src}", 403, "URL scheme 'simplecache' is not allowed"),
        ("memory://x/a.h5::https://example.com/b.h5", 403, "URL scheme 'https' is not allowed"),
        ("sftp://host/data/x.parquet", 403, "(--batch-url-schemes: file, memory)"),
    ]:
        got, out = submit(live.url, {"events_file": path})
        assert got == code and message in out["error"], (path, got, out)
    assert len(request("GET", live.url + PREFIX)[1]["jobs"]) == 2


def test_queue_limit_429_and_a_locked_database_503(make_live, tmp_path) -> None:
    live = make_live(max_queued=2, busy_timeout_s=0.3)
    gate = live.gate(0)
    src = write_events(tmp_path / "events.h5", toy_events(100, seed=35))
    ids = [submit(live.url, {"events_file": str(src)})[1]["job_id"]]
    gate.wait()  # the first job is running (held), not queued
    ids += [submit(live.url, {"events_file": str(src)})[1]["job_id"] for _ in range(2)]
    code, out = submit(live.url, {"events_file": str(src)})
    assert code == 429 and "2 batch jobs are queued already (at most 2)" in out["error"], out
    lock = sqlite3.connect(tmp_path / "jobs.sqlite", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # another writer holds the database past the busy timeout
    try:
        for method, path in (("POST", PREFIX), ("DELETE", f"{PREFIX}/{ids[1]}")):
            body = {"events_file": str(src)} if method == "POST" else None
            code, out = request(method, live.url + path, body)
            assert code == 503 and str(tmp_path / "jobs.sqlite") in out["error"], out
            assert "database is locked" in out["error"]
        assert request("GET", f"{live.url}{PREFIX}/{ids[0]}")[0] == 200  # WAL: readers go on
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    gate.open()
    assert [ended(live.url, i)["status"] for i in ids] == ["succeeded"] * 3


def test_batch_jobs_off_when_the_default_database_cannot_be_created(tmp_path, run, caplog) -> None:
    from l1ad.serving.app import create_app
    from l1ad.serving.service import Service
    from l1ad.serving.state import ServeConfig

    served = shutil.copytree(run, tmp_path / "runs" / "run")
    (tmp_path / "runs" / "jobs.sqlite").mkdir()  # the default database cannot be created there
    with caplog.at_level(logging.WARNING):
        app = create_app(Service(ServeConfig(run_dir=served)))
    assert any("batch jobs are off" in r.getMessage() and str(tmp_path / "runs" / "jobs.sqlite")
               in r.getMessage() for r in caplog.records)  # fmt: skip
    with serving(app) as live:
        with urllib.request.urlopen(live.url + "/healthz", timeout=30) as r:
            assert r.status == 200  # the service itself runs
        for method, path in (("GET", PREFIX), ("POST", PREFIX), ("GET", f"{PREFIX}/{'f' * 32}"),
                             ("DELETE", f"{PREFIX}/{'f' * 32}"), ("GET", f"{PREFIX}/{'f' * 32}/results")):  # fmt: skip
            code, out = request(
                method, live.url + path, {"events_file": "/x.h5"} if method == "POST" else None
            )
            assert code == 503 and "batch jobs are off" in out["error"], (method, path, out)
            assert str(tmp_path / "runs" / "jobs.sqlite") in out["error"] and "--jobs-db" in out["error"]


@pytest.mark.allow_error_logs
def test_serve_stops_when_an_explicit_jobs_db_cannot_be_opened(tmp_path, run, caplog) -> None:
    from l1ad.cli.main import main

    db = tmp_path / "jobs.sqlite"
    db.mkdir()
    rc = main(
        ["serve", "--run", str(run), "--jobs-db", str(db), "--port", str(free_port()), "--drift-window", "0"]
    )
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert rc == 2 and any(str(db) in e and "cannot open the jobs database" in e for e in errors), errors


def test_rest_reload_keeps_the_model_of_submitted_jobs(make_live, tmp_path, run, run_b) -> None:
    live = make_live()
    events = toy_events(4000, seed=27)
    src = write_events(tmp_path / "events.h5", events)
    gate = live.gate(2)
    before = submit(live.url, {"events_file": str(src), "chunk_size": 1000})[1]
    gate.wait()
    code, out = request("POST", live.url + "/admin/reload", {"run_dir": str(run_b)})
    assert code == 200, out
    mid = request("GET", f"{live.url}{PREFIX}/{before['job_id']}")[1]
    assert mid["status"] == "running" and mid["progress"]["chunks_done"] == 2  # reloaded mid-job
    after = submit(live.url, {"events_file": str(src), "chunk_size": 10_000})[1]
    gate.open()
    old, new = ended(live.url, before["job_id"]), ended(live.url, after["job_id"])
    assert old["status"] == new["status"] == "succeeded", (old, new)
    assert old["progress"]["chunks_done"] == 4
    assert old["model"]["hash"] == registry.model_hash(run / "ebm-float")
    check_results(old["results_file"], run, events, min(rate_table(run)))  # all of it on the first model
    assert new["model"]["hash"] == registry.model_hash(run_b / "ebm-float") != old["model"]["hash"]
    cols, _ = read_results(new["results_file"])
    np.testing.assert_array_equal(cols["score"], registry.primary_score(registry.find(run_b, LABEL), events))
    assert new["threshold"] is None and not cols["flag"].any()  # run B has no rate table: no flags


# --------------------------------------------------------------------------- kill -9 and restart
def _start_server(run: Path, port: int, db: Path, results: Path, root: Path, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "l1ad.cli.main", "serve", "--run", str(run), "--port", str(port),
           "--jobs-db", str(db), "--results-dir", str(results), "--batch-chunk-size", "10000",
           "--batch-root", str(root), "--drift-window", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=open(log, "a"), stderr=subprocess.STDOUT)  # noqa: SIM115
    deadline = time.time() + 180
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
    port = free_port()
    proc = _start_server(run, port, db, results, tmp_path, log)
    url = f"http://127.0.0.1:{port}"
    try:
        t0 = time.time()
        job_id = submit(url, {"events_file": str(src)})[1]["job_id"]
        mid = wait_job(url, job_id, lambda j: j["progress"]["chunks_done"] >= 1, every=0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        t_kill = time.time()
    finally:
        proc.kill()
    total = mid["progress"]["chunks_total"]
    assert total == n // chunk  # --batch-chunk-size
    with sqlite3.connect(db) as conn:
        state, done = conn.execute("SELECT state, chunks_done FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert state == "running" and 1 <= done < total, (state, done, total)  # killed mid-job
    port = free_port()
    proc = _start_server(run, port, db, results, tmp_path, log)
    url = f"http://127.0.0.1:{port}"
    try:
        t_restart = time.time()
        job = wait_job(url, job_id, lambda j: j["status"] in ("succeeded", "failed", "cancelled"), 300, 0.1)
        t_end = time.time()
    finally:
        proc.terminate()
        proc.wait(30)
    assert job["status"] == "succeeded", (job, log.read_text()[-2000:])
    assert job["attempts"] == 2 and job["resumed_from_chunk"] == done and job["progress"]["events_done"] == n
    flagged = check_results(job["results_file"], run, events, min(rate_table(run)))  # default: lowest rate
    assert 0 < flagged < n  # ~25 expected at 5 kHz of 40 MHz
    print(f"\nkill -9 after {done}/{total} chunks of {chunk} ({t_kill - t0:.2f} s after submission); "
          f"after restart finished in {t_end - t_restart:.2f} s ({(n - done * chunk) / (t_end - t_restart):.0f} "
          f"events/s incl. polling)")  # fmt: skip
