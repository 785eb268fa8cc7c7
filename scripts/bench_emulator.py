"""Emulator throughput: hls4ml C-sim events/s (1 thread and all cores), da4ml adder-graph and Verilator.

Usage::

    python scripts/bench_emulator.py                         # demo: the test AE model, both strategies
    python scripts/bench_emulator.py --project firmware_projects/ae_compact_vu13p --events test.h5

Prints one line per emulator and, for the demo, conversion and compilation times.
"""

from __future__ import annotations

import argparse
import logging
import os
import runpy
import time
from pathlib import Path

import numpy as np

logger = logging.getLogger("bench_emulator")
REPO = Path(__file__).resolve().parent.parent


def _rate(fn, x: np.ndarray, repeat: int = 1) -> float:
    fn(x[:16])  # warm-up (static tables, thread pools)
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn(x)
    return repeat * len(x) / (time.perf_counter() - t0)


def bench_project(project: Path, x: np.ndarray, rtl: bool) -> None:
    from l1ad.emulation.csim import CSim
    from l1ad.hls.metadata import read_metadata

    meta = read_metadata(project)
    t0 = time.perf_counter()
    csim = CSim(project)
    print(f"[{meta['target']}] C-sim compile: {time.perf_counter() - t0:.1f} s (cached if unchanged)")
    for threads in (1, os.cpu_count() or 1):
        rate = _rate(lambda a, t=threads: csim.predict(a, n_threads=t), x)
        print(f"[{meta['target']}] hls4ml C-sim, {threads} thread(s): {rate:,.0f} events/s")
    if (project / "rtl" / "model").is_dir():
        from l1ad.emulation.rtl_sim import RTLSim, comb_predict, load_comb

        comb = load_comb(project)
        print(
            f"[{meta['target']}] da4ml adder graph (C++), 1 thread: {_rate(lambda a: comb_predict(comb, a, meta), x):,.0f} events/s"
        )
        if rtl:
            t0 = time.perf_counter()
            sim = RTLSim(project)
            print(f"[{meta['target']}] Verilator compile: {time.perf_counter() - t0:.1f} s")
            rate = _rate(sim.predict, x)
            same = np.array_equal(sim.predict(x), csim.predict(x))
            print(
                f"[{meta['target']}] Verilator RTL, 1 thread: {rate:,.0f} events/s (bit-exact vs C-sim: {same})"
            )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--project", type=Path, action="append", help="built project dir (repeatable)")
    p.add_argument("--events", type=Path, help="events file (.h5 / .npy); default: random encoded events")
    p.add_argument("-n", type=int, default=50_000, help="events to time")
    p.add_argument("--rtl", action="store_true", help="also build and time the Verilator model (DA projects)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    fm = runpy.run_path(str(REPO / "tests" / "fixtures" / "firmware_models.py"))["load"]()
    if args.events:
        from l1ad.events.inputs import load_inputs

        x = load_inputs(args.events, limit=args.n)
    else:
        x = fm.inputs(args.n, seed=99, n_overflow=0)
    projects = args.project
    if not projects:
        projects = []
        for strategy in ("Latency", "distributed_arithmetic"):
            t0 = time.perf_counter()
            projects.append(fm.project(strategy))
            print(f"[demo] build {strategy}: {fm._CACHE[f'build_seconds:{strategy}:ae']:.1f} s convert+write "
                  f"({time.perf_counter() - t0:.1f} s incl. model)")  # fmt: skip
    for project in projects:
        bench_project(project, x, args.rtl)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
