"""Durable batch scoring jobs, the store and the runner: states, the atomic claim across processes,
leases, dead owners (host and pid namespace), attempts (a clean stop gives its attempt back, a crash
loop fails), the queue limit, chunked scoring that resumes after a crash at its last recorded chunk,
an input that changed (same size and mtime) failing the job, cancel (also racing the finish), and
failures naming file and row. Results equal the registry's scores bit for bit; the runner is held at
known chunks by its ``on_chunk`` hook, never by timing."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from batch_jobs_support import (
    FAKE_REF,
    Counting,
    Crash,
    check_results,
    crash,
    dead_pid,
    model_ref,
    owner_of,
    train_run,
)

from l1ad.events.io import write_events
from l1ad.events.sources import write_parquet_events
from l1ad.models.ebm.toydata import toy_events
from l1ad.serving.batch_runner import MAX_ATTEMPTS, BatchConfig, BatchRunner
from l1ad.serving.jobs import JobStore, QueueFull, host_id, new_owner, pid_namespace
from l1ad.serving.offline import write_results


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return train_run(tmp_path_factory.mktemp("batch_store"))


# --------------------------------------------------------------------------- the store
def test_store_states_claims_leases_and_chunk_records(tmp_path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    with sqlite3.connect(tmp_path / "jobs.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    first = store.submit("/data/a.h5", 10, FAKE_REF)
    second = store.submit("/data/b.h5", 10, FAKE_REF)
    assert first.state == second.state == "queued" and first.model_ref == FAKE_REF
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
    assert store.finish(a.id, "A", "succeeded", results_file="/r.parquet") == "succeeded"
    assert store.finish(a.id, "A", "failed") is None  # finished once
    done = store.get(a.id)
    assert done.state == "succeeded" and done.owner is None and done.results_file == "/r.parquet"
    # B's lease expires: C takes the job over where B left it, B can no longer write
    assert store.record_chunk(b.id, "B", 0, 10) == (True, False)
    c = store.claim("C", lease_s=30, now=time.time() + 31)
    assert c.id == b.id and c.owner == "C" and c.attempts == 2 and c.resumed_from == 1
    assert store.record_chunk(b.id, "B", 1, 10) == (False, False) and not store.renew(b.id, "B", 30)
    # cancel: a running job at its runner's next chunk boundary, a queued one at once
    assert store.cancel(b.id).state == "running" and store.get(b.id).cancel_requested
    assert store.record_chunk(b.id, "C", 1, 10) == (True, True)
    queued = store.submit("/data/c.h5", 10, FAKE_REF)
    assert store.cancel(queued.id).state == "cancelled" and store.claim("D", 30) is None
    assert store.cancel("nope") is None and store.get("nope") is None
    assert [j.id for j in store.list_jobs()] == [queued.id, second.id, first.id]
    assert [j.id for j in store.list_jobs("succeeded")] == [first.id]


def test_a_requested_cancel_wins_over_finish_and_release(tmp_path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    for end in ("succeeded", "failed", "release"):
        job = store.submit(f"/data/{end}.h5", 10, FAKE_REF)
        store.claim("A", lease_s=30)
        assert store.cancel(job.id).state == "running"  # answered 202: requested
        got = store.release(job.id, "A") if end == "release" else store.finish(job.id, "A", end, "/r.pq")
        after = store.get(job.id)
        assert got == after.state == "cancelled" and after.results_file is None and after.finished, end


def test_queue_limit_is_checked_with_the_insert(tmp_path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    for i in range(3):
        store.submit(f"/data/{i}.h5", 10, FAKE_REF, max_queued=3)
    with pytest.raises(QueueFull, match="3 batch jobs are queued already"):
        store.submit("/data/x.h5", 10, FAKE_REF, max_queued=3)
    store.claim("A", lease_s=30)  # running jobs do not count
    assert store.submit("/data/y.h5", 10, FAKE_REF, max_queued=3).state == "queued"
    assert len(store.list_jobs()) == 4


CLAIMER = """
import json, sys, time
from pathlib import Path
from l1ad.serving.jobs import JobStore
store, name, barrier, n = JobStore(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
got = [store.claim(name, lease_s=600).id]
(barrier / name).touch()  # every claimer holds one job before any claims a second: all compete
deadline = time.time() + 120
while len(list(barrier.iterdir())) < n and time.time() < deadline:
    time.sleep(0.005)
while (job := store.claim(name, lease_s=600)) is not None:
    got.append(job.id)
print(json.dumps(got))
"""


def test_claim_is_atomic_across_processes(tmp_path) -> None:
    db, barrier = str(tmp_path / "jobs.sqlite"), tmp_path / "barrier"
    barrier.mkdir()
    store = JobStore(db)
    ids = {store.submit(f"/data/{i}.h5", 10, FAKE_REF).id for i in range(300)}
    procs = [subprocess.Popen([sys.executable, "-c", CLAIMER, db, f"P{i}", str(barrier), "3"],
                              stdout=subprocess.PIPE, text=True) for i in range(3)]  # fmt: skip
    claimed = [json.loads(p.communicate(timeout=180)[0]) for p in procs]
    flat = [j for got in claimed for j in got]
    assert len(flat) == len(set(flat)) == len(ids) and set(flat) == ids  # each job exactly once
    assert all(claimed)
    owners = {j.id: j.owner for j in store.list_jobs(limit=1000)}
    for i, got in enumerate(claimed):
        assert all(owners[j] == f"P{i}" for j in got)


def test_jobs_of_dead_server_processes_are_claimable_at_once(tmp_path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    gone = dead_pid()
    host = host_id().rsplit(":", 1)[0]
    assert new_owner().startswith(f"{host}:{pid_namespace()}:{os.getpid()}:")
    owners = {"dead": owner_of(gone), "alive": owner_of(os.getppid()),
              "remote": owner_of(gone, f"elsewhere:{pid_namespace()}"),
              "other_pid_namespace": owner_of(gone, f"{host}:{pid_namespace()}0"),  # another container
              "this_pid_old_token": owner_of(os.getpid(), token="0ld70ken"),
              "this_process": new_owner()}  # fmt: skip
    jobs = {}
    for name, owner in owners.items():
        store.submit(f"/data/{name}.h5", 10, FAKE_REF)
        jobs[name] = store.claim(owner, lease_s=3600).id
    assert store.claim("new", lease_s=30) is None
    assert sorted(store.expire_dead_owners()) == sorted([jobs["dead"], jobs["this_pid_old_token"]])
    again = {store.claim("new", lease_s=30).id, store.claim("new", lease_s=30).id}
    assert again == {jobs["dead"], jobs["this_pid_old_token"]}
    assert store.claim("new", lease_s=30) is None  # the others keep their leases until they expire
    assert store.get(jobs["dead"]).attempts == 2


def test_batch_config_paths_are_absolute(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = BatchConfig(Path("db/jobs.sqlite"), Path("res"), root=Path("data"), url_schemes=("S3", " file", ""))
    assert (cfg.jobs_db, cfg.results_dir, cfg.root) == (tmp_path / "db/jobs.sqlite", tmp_path / "res",
                                                        tmp_path / "data")  # fmt: skip
    assert cfg.url_schemes == ("s3", "file")
    default = BatchConfig.beside("runs/default")
    assert default.jobs_db == tmp_path / "runs" / "jobs.sqlite" and not default.required
    explicit = BatchConfig.beside("runs/default", "j.sqlite")
    assert explicit.jobs_db == tmp_path / "j.sqlite" and explicit.results_dir == tmp_path / "batch-results"
    assert explicit.required
    with pytest.raises(ValueError, match="max_queued"):
        BatchConfig(tmp_path / "j.sqlite", tmp_path / "r", max_queued=0)


# --------------------------------------------------------------------------- the runner
def test_runner_resumes_after_a_crash_without_scoring_twice(tmp_path, run) -> None:
    events = toy_events(23_456, seed=21)
    src = write_events(tmp_path / "events.h5", events)
    store = JobStore(tmp_path / "jobs.sqlite")
    job = store.submit(str(src), 5000, model_ref(run, 10.0))
    owner = owner_of(dead_pid())  # the crashed server process
    a = BatchRunner(store, tmp_path / "results", owner=owner, lease_s=30,
                    scorer_factory=Counting(at=2, action=crash))  # dies while scoring chunk 2  # fmt: skip
    with pytest.raises(Crash):
        a.run_once()
    left = store.get(job.id)
    assert (left.state, left.owner, left.chunks_done, left.chunks_total) == ("running", owner, 2, 5)
    assert [p.name for p in sorted(a.parts_dir(job.id).iterdir())] == ["part-000000.parquet",
                                                                       "part-000001.parquet"]  # fmt: skip
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


def test_a_job_resumed_on_a_changed_file_fails_even_with_size_and_mtime_kept(tmp_path, run) -> None:
    src = write_events(tmp_path / "events.h5", toy_events(4000, seed=28))
    store = JobStore(tmp_path / "jobs.sqlite")
    job = store.submit(str(src), 1000, model_ref(run))
    a = BatchRunner(store, tmp_path / "results", owner=owner_of(dead_pid()),
                    scorer_factory=Counting(at=1, action=crash))  # fmt: skip
    with pytest.raises(Crash):
        a.run_once()
    assert store.get(job.id).events_stamp  # the input's identity, recorded at the first claim
    st = os.stat(src)
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte of the event data: same size
    src.write_bytes(bytes(data))
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime
    assert (os.stat(src).st_size, os.stat(src).st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    b = BatchRunner(store, tmp_path / "results", owner="B")
    assert b.recover() == [job.id]
    out = b.run_once()
    assert out.id == job.id and out.state == "failed" and out.chunks_done == 1
    assert str(src) in out.error and "changed since the job started" in out.error, out.error


def test_clean_stops_give_attempts_back_a_crash_loop_fails(tmp_path, run) -> None:
    src = write_events(tmp_path / "events.h5", toy_events(300, seed=30))
    store = JobStore(tmp_path / "jobs.sqlite")
    healthy = store.submit(str(src), 100, model_ref(run))
    for _ in range(MAX_ATTEMPTS + 3):  # rolling restarts: claimed, then released at a clean shutdown
        assert store.claim("A", lease_s=30).attempts == 1
        assert store.release(healthy.id, "A") == "queued"
    done = BatchRunner(store, tmp_path / "results", owner="B").run_once()
    assert done.id == healthy.id and done.state == "succeeded" and done.attempts == 1, done.error
    looping = store.submit(str(src), 100, model_ref(run))
    for _ in range(MAX_ATTEMPTS):  # each time the server dies on it (clean stops between do not count)
        store.claim("A", lease_s=30)
        store.release(looping.id, "A")
        store.claim(owner_of(dead_pid()), lease_s=3600)
        assert store.expire_dead_owners() == [looping.id]
    out = BatchRunner(store, tmp_path / "results", owner="C").run_once()
    assert out.id == looping.id and out.state == "failed" and out.attempts == MAX_ATTEMPTS + 1
    assert f"abandoned after {MAX_ATTEMPTS} attempts" in out.error and str(src) in out.error, out.error


def test_runner_stop_requeues_and_gives_the_attempt_back(tmp_path, run) -> None:
    events = toy_events(9000, seed=22)
    pq_file = write_parquet_events(tmp_path / "events.parquet", events)
    store = JobStore(tmp_path / "jobs.sqlite")
    res = tmp_path / "results"
    store.submit(str(pq_file), 2000, model_ref(run, 5.0))
    box: dict = {}
    stopping = Counting(at=2, action=lambda: box["runner"].request_stop())
    box["runner"] = BatchRunner(store, res, owner="A", scorer_factory=stopping)
    back = box["runner"].run_once()
    assert back.state == "queued" and back.attempts == 0 and back.chunks_done == 3 and stopping.calls == 3
    rest = Counting()
    done = BatchRunner(store, res, owner="B", scorer_factory=rest).run_once()
    assert done.state == "succeeded" and rest.events == 9000 - 3 * 2000 and done.attempts == 1
    check_results(done.results_file, run, events, 5.0)


def test_cancel_while_running_and_cancel_racing_the_finish(tmp_path, run) -> None:
    pq_file = write_parquet_events(tmp_path / "events.parquet", toy_events(5000, seed=31))
    store = JobStore(tmp_path / "jobs.sqlite")
    job = store.submit(str(pq_file), 2000, model_ref(run))
    cancelling = Counting(at=1, action=lambda: store.cancel(job.id))
    runner = BatchRunner(store, tmp_path / "results", owner="C", scorer_factory=cancelling)
    out = runner.run_once()  # the runner stops after the chunk it is scoring
    assert (out.state, out.chunks_done, cancelling.calls, out.results_file) == ("cancelled", 2, 2, None)
    assert not runner.parts_dir(job.id).exists() and not runner.results_path(job.id).exists()
    # the cancel lands after the last chunk was recorded, before the job is marked finished
    job = store.submit(str(pq_file), 2000, model_ref(run))
    seen: list[int] = []

    def at_chunk(job_id: str, k: int) -> None:
        seen.append(k)
        if k == 3:  # chunks_total: every chunk done, the results concatenated next
            assert store.cancel(job_id).state == "running"  # what the DELETE route answers 202 for

    runner.on_chunk = at_chunk
    out = runner.run_once()
    assert seen == [0, 1, 2, 3] and out.chunks_done == 3
    assert out.state == "cancelled" and out.results_file is None and out.cancel_requested
    assert not runner.results_path(job.id).exists() and not runner.parts_dir(job.id).exists()


def test_the_heartbeat_renews_the_lease_of_a_running_job(tmp_path, run) -> None:
    src = write_events(tmp_path / "events.h5", toy_events(400, seed=32))
    store = JobStore(tmp_path / "jobs.sqlite")
    store.submit(str(src), 200, model_ref(run))
    thefts: list = []

    def at_chunk(job_id: str, k: int) -> None:
        if k == 0:  # the heartbeat beats every lease_s / 3 = 1 s: wait for one renewal, however late
            first = store.get(job_id).lease_expires
            deadline = time.time() + 60
            while store.get(job_id).lease_expires == first and time.time() < deadline:
                time.sleep(0.02)
            assert store.get(job_id).lease_expires >= first + 0.9  # renewed, one beat (1 s) later
            thefts.append(store.claim("thief", lease_s=30, now=first + 0.5))  # after the first lease

    runner = BatchRunner(store, tmp_path / "results", owner="D", lease_s=3.0, on_chunk=at_chunk)
    done = runner.run_once()
    assert done.state == "succeeded" and done.owner is None and thefts == [None], done.error


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
    elif case == "format":  # a job in the database the routes would have refused
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
