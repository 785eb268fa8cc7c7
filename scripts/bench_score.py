"""Benchmark of ``l1ad score`` on Dask (prints measured numbers; everything on this machine).

1. Speed: events/s of ``l1ad score`` (a subprocess, its own process-based LocalCluster, one thread
   per worker) with 1 and 2 workers on a ``--speed-events`` HDF5 file, beside in-process scoring of
   the same file in this process (read + score + write per partition, the work of one task; and the
   model call alone).
2. Memory: ``l1ad score`` with 2 workers of ``--memory-limit`` each on an HDF5 file of at least
   ``--big-gib`` GiB on disk (more as float32 in memory), sampling every worker's and the driver's
   RSS (psutil, every 0.2 s) and counting worker restarts (new worker pids, the manifest's
   ``workers_lost``, the nannies' "Restarting worker" lines). With ``--tight-limit`` (default
   512MiB) the speed file is first scored at that limit too, to show what happens there.

Inputs are valid L1 events (every rule of :mod:`l1ad.events.validate`) with most slots filled and
random mantissas, so that gzip cannot shrink the file much; they are written with
:class:`~l1ad.events.io.EventWriter` into a temporary folder that is deleted at the end.
Without ``--run`` a tiny toy energy model is trained there first (as tests/test_serving.py does).

    .venv/bin/python scripts/bench_score.py [--run runs/default] [--big-gib 2] [--memory-limit 512MiB] [--big-chunk 32768]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # this process: one torch thread, like each worker

import argparse
import json
import math
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from l1ad.events import schema
from l1ad.events.io import EventWriter

CHUNK = 131_072


def dense_events(n: int, rng: np.random.Generator) -> np.ndarray:
    """Valid L1 events with at least half of every object type's slots present (pT-ordered)."""
    p = np.zeros((n, schema.N_OBJECTS, schema.N_FEATURES), dtype=np.float32)
    p[:, 0, schema.PT] = rng.exponential(40, n)
    p[:, 0, schema.PHI] = rng.uniform(-np.pi, np.pi, n)
    p[:, 0, schema.CLASS] = schema.MET_CLASS
    for t in (schema.EGAMMA, schema.MUON, schema.JET):
        k = rng.integers(t.n_slots // 2, t.n_slots + 1, n)
        on = np.arange(t.n_slots)[None, :] < k[:, None]
        pts = np.sort(t.pt_min + rng.exponential(25, (n, t.n_slots)), axis=1)[:, ::-1]
        block = np.stack([pts, rng.uniform(-0.99, 0.99, (n, t.n_slots)) * t.eta_max,
                          rng.uniform(-np.pi, np.pi, (n, t.n_slots)), np.full((n, t.n_slots), t.code)], axis=-1)  # fmt: skip
        p[:, t.slots] = np.where(on[:, :, None], block, 0.0)
    return p


def write_file(path: Path, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    with EventWriter(path) as w:
        for lo in range(0, n, CHUNK):
            w.append(dense_events(min(CHUNK, n - lo), rng))
    return path


def toy_run(root: Path) -> Path:
    """The tests' toy run (tests/toy_runs.py): a tiny energy model evaluated on toy events."""
    toy_runs = runpy.run_path(str(Path(__file__).resolve().parents[1] / "tests" / "toy_runs.py"))["toy_runs"]
    return toy_runs(root)["run"]


def in_process(run: Path, path: Path, tmp: Path) -> tuple[float, float]:
    """(events/s of read + score + write per partition, events/s of the model call alone), this process."""
    import torch

    from l1ad.events.sources import open_source
    from l1ad.serving.offline import OfflineScorer, ScorerSpec, write_results

    torch.set_num_threads(1)
    scorer, src = OfflineScorer(ScorerSpec(str(run))), open_source(path)
    t0, model_s = time.perf_counter(), 0.0
    for lo, hi in src.slices(CHUNK):
        block = src.read(lo, hi)
        t1 = time.perf_counter()
        scores, flags = scorer(block)
        model_s += time.perf_counter() - t1
        write_results(tmp / "inproc.parquet", lo, scores, flags, scorer.metadata())
    total = time.perf_counter() - t0
    scorer.close()
    return src.n_events / total, src.n_events / model_s


class Sampler(threading.Thread):
    """RSS of a process and of its worker children (not the multiprocessing resource tracker)."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.proc, self.every, self.stop = psutil.Process(pid), every, threading.Event()
        self.driver_peak, self.workers = 0, {}  # pid -> [rss samples]

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.driver_peak = max(self.driver_peak, self.proc.memory_info().rss)
                for c in self.proc.children(recursive=True):
                    if "resource_tracker" not in " ".join(c.cmdline()):
                        self.workers.setdefault(c.pid, []).append(c.memory_info().rss)
            except psutil.Error:
                pass
            self.stop.wait(self.every)


def batch_job(run: Path, path: Path, tmp: Path) -> float:
    """Events/s of one durable batch job (SQLite store, :class:`BatchRunner`, 65536-event chunks) over
    ``path``: claim, read, score, part files, SQLite progress, the final concatenation."""
    from l1ad.serving.batch_runner import BatchRunner
    from l1ad.serving.jobs import JobStore, ModelRef
    from l1ad.serving.offline import OfflineScorer, ScorerSpec

    scorer = OfflineScorer(ScorerSpec(str(run)))
    meta = scorer.metadata()
    scorer.close()
    store = JobStore(tmp / "jobs.sqlite")
    ref = ModelRef(str(run.resolve()), meta["model"], meta["model_hash"], meta["score"], meta["rate_khz"],
                   meta["threshold"])  # fmt: skip
    job = store.submit(str(path.resolve()), 65_536, ref)
    t0 = time.perf_counter()
    done = BatchRunner(store, tmp / "batch-results").run_once()
    elapsed = time.perf_counter() - t0
    if done is None or store.get(job.id).state != "succeeded":
        raise RuntimeError(f"the batch job did not succeed: {store.get(job.id)}")
    return store.get(job.id).events_done / elapsed


def score_cli(run: Path, path: Path, out: Path, workers: int, limit: str, sample: bool = False,
              chunk: int = CHUNK) -> dict:  # fmt: skip
    """Run ``l1ad score`` as a subprocess; its manifest, wall time, RSS samples and stderr."""
    cmd = [sys.executable, "-m", "l1ad.cli.main", "score", str(path), "--out", str(out), "--run", str(run),
           "--workers", str(workers), "--threads-per-worker", "1", "--memory-limit", limit,
           "--chunk-size", str(chunk)]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = Sampler(proc.pid) if sample else None
    if sampler:
        sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    if sampler:
        sampler.stop.set()
        sampler.join()
    manifest = json.loads((out / "manifest.json").read_text()) if proc.returncode == 0 else None
    return {"rc": proc.returncode, "wall": wall, "manifest": manifest, "stdout": stdout, "stderr": stderr,
            "sampler": sampler}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", help="run directory (default: train a tiny toy energy model)")
    ap.add_argument("--big-gib", type=float, default=2.0, help="size on disk of the memory test's input")
    ap.add_argument("--speed-events", type=int, default=1_000_000)
    ap.add_argument("--memory-limit", default="512MiB", help="per worker, for the memory test")
    ap.add_argument("--big-chunk", type=int, default=32_768, help="events per partition in the memory test")
    ap.add_argument("--tight-limit", default="", help="also try the speed file at this limit ('': skip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", default=None, help="parent of the temporary folder (default: the system's)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="l1ad-bench-score-", dir=args.workdir))
    try:
        return bench(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench(args: argparse.Namespace, tmp: Path) -> int:
    print(f"cores: {os.cpu_count()} (shared with other work: numbers are contended)")
    if args.run:
        run = Path(args.run)
        print(f"model: {run}")
    else:
        run = toy_run(tmp)
        print("model: TOY energy model (tiny config, trained here on toy events); not a physics model")
    t0 = time.perf_counter()
    speed = write_file(tmp / "speed.h5", args.speed_events, args.seed)
    per_event = speed.stat().st_size / args.speed_events
    print(f"speed input: {args.speed_events} events, {speed.stat().st_size / 2**20:.0f} MiB on disk "
          f"({per_event:.0f} B/event; written in {time.perf_counter() - t0:.1f} s)")  # fmt: skip

    inproc, model_only = in_process(run, speed, tmp)
    print(
        f"in-process (1 thread): {inproc:,.0f} events/s read+score+write, {model_only:,.0f} events/s model only"
    )
    for n in (1, 2):
        r = score_cli(run, speed, tmp / f"out{n}", n, "2GiB")
        if r["rc"] != 0:
            print(f"l1ad score --workers {n} FAILED rc={r['rc']}:\n{r['stderr'][-2000:]}")
            return 1
        m = r["manifest"]
        print(f"l1ad score --workers {n}: {m['events_per_s']:,.0f} events/s while scoring "
              f"({m['seconds']:.1f} s), {args.speed_events / r['wall']:,.0f} events/s end to end "
              f"({r['wall']:.1f} s with cluster start and model load)")  # fmt: skip
    print(f"batch job (the service's runner, in this process): {batch_job(run, speed, tmp):,.0f} events/s")
    if args.tight_limit:
        r = score_cli(run, speed, tmp / "tight", 2, args.tight_limit)
        errors = [ln for ln in r["stderr"].splitlines() if "ERROR   l1ad" in ln]
        outcome = (
            "ok"
            if r["rc"] == 0
            else (errors[-1].split("l1ad: ", 1)[-1][:300] if errors else r["stderr"][-300:])
        )
        print(f"--memory-limit {args.tight_limit}: rc={r['rc']} after {r['wall']:.0f} s: {outcome}")

    target = args.big_gib * 2**30
    n_big = math.ceil(target * 1.02 / per_event / CHUNK) * CHUNK
    t0 = time.perf_counter()
    big = write_file(tmp / "big.h5", n_big, args.seed + 1)
    size = big.stat().st_size
    print(f"big input: {n_big} events, {size / 2**30:.2f} GiB on disk, {n_big * 304 / 2**30:.2f} GiB as float32 "
          f"(written in {time.perf_counter() - t0:.0f} s){'' if size >= target else '  [SMALLER THAN ASKED]'}")  # fmt: skip
    (tmp / "speed.h5").unlink()
    r = score_cli(run, big, tmp / "big_out", 2, args.memory_limit, sample=True, chunk=args.big_chunk)
    s = r["sampler"]
    if r["rc"] != 0:
        print(f"big run FAILED rc={r['rc']}:\n{r['stderr'][-3000:]}")
        return 1
    m = r["manifest"]
    restarts = len(
        [ln for ln in r["stderr"].splitlines() if re.search(r"Restarting worker|exceeded.*memory", ln)]
    )
    loaded = re.findall(r"loaded the model \(RSS ([^)]*)\)", r["stderr"])
    print(f"big run, 2 workers x {args.memory_limit}: {m['events_per_s']:,.0f} events/s while scoring "
          f"({m['seconds']:.0f} s, {m['totals']['n_partitions']} partitions of {args.big_chunk})")  # fmt: skip
    print(f"  worker RSS after model load: {loaded[0] if loaded else '?'}")
    for pid, rss in sorted(s.workers.items()):
        print(f"  worker pid {pid}: peak RSS {max(rss) / 2**20:.0f} MiB, median {np.median(rss) / 2**20:.0f} MiB "
              f"({len(rss)} samples)")  # fmt: skip
    print(f"  driver (CLI process: client, scheduler, nannies) peak RSS {s.driver_peak / 2**20:.0f} MiB")
    print(f"  worker restarts: {len(s.workers) - 2} new worker pids, manifest workers_lost="
          f"{m['cluster']['workers_lost']}, {restarts} restart/memory lines in the log")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
