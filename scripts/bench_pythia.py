"""Profile the Pythia engine per process: where a generated event's time goes and accepted events/s.

Usage: ``python scripts/bench_pythia.py [--processes W QCD ...] [--accepted 200] [--mpi/--no-mpi]``
(needs the ``pythia`` extra). Per process it prints the mean time per *generated* event of each stage --
Pythia's ``next()``, reading the final-state particles into numpy, the truth pre-filter, and the L1
emulation (pileup overlay, towers, e/gamma, muons, jets, MET; per pre-filtered event) -- and the
accepted events/s of one process, measured, not extrapolated.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def bench(process: str, n_accepted: int, mpi: bool, pool, seed: int = 7) -> dict:
    from l1ad.events.pythia import detector, run
    from l1ad.events.pythia.processes import make_pythia

    py = make_pythia(process, seed, mpi)
    rng = np.random.default_rng(seed)
    t = {"next": 0.0, "extract": 0.0, "prefilter": 0.0, "emulation": 0.0}
    generated = passed = accepted = 0
    start = time.perf_counter()
    while accepted < n_accepted:
        t0 = time.perf_counter()
        if not py.next():
            continue
        t1 = time.perf_counter()
        hard = run.final_particles(py)
        t2 = time.perf_counter()
        ok = detector.truth_prefilter(hard)
        t3 = time.perf_counter()
        t["next"] += t1 - t0
        t["extract"] += t2 - t1
        t["prefilter"] += t3 - t2
        generated += 1
        if ok:
            passed += 1
            accepted += detector.reconstruct(rng, hard, pool, detector.PILEUP_MEAN) is not None
            t["emulation"] += time.perf_counter() - t3
    wall = time.perf_counter() - start
    return {
        "process": process,
        "mpi": mpi,
        "generated": generated,
        "prefilter_pass": passed / generated,
        "accepted": accepted,
        "ms_per_generated": {k: 1e3 * v / generated for k, v in t.items()},
        "accepted_per_s": accepted / wall,
    }


def main(argv: list[str] | None = None) -> None:
    from l1ad.events.pythia import run
    from l1ad.events.pythia.processes import PROCESSES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", nargs="+", default=list(PROCESSES))
    parser.add_argument("--accepted", type=int, default=200)
    parser.add_argument("--mpi", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        pool = run.make_pool(Path(tmp) / "pool.npz", run.POOL_SIZE, 1)
    print(
        f"{'process':<11}{'MPI':>4}{'next':>8}{'read':>8}{'pre':>8}{'emul':>8}{'pass':>7}{'acc/gen':>9}{'acc/s':>8}"
    )
    for p in args.processes:
        r = bench(p, args.accepted, args.mpi, pool)
        ms = r["ms_per_generated"]
        print(
            f"{p:<11}{'on' if r['mpi'] else 'off':>4}{ms['next']:>8.2f}{ms['extract']:>8.2f}{ms['prefilter']:>8.2f}"
            f"{ms['emulation']:>8.2f}{r['prefilter_pass']:>7.2f}{r['accepted'] / r['generated']:>9.3f}"
            f"{r['accepted_per_s']:>8.1f}",
            flush=True,
        )
    print("stage times in ms per generated event (emulation: summed over pre-filtered events)")


if __name__ == "__main__":
    main()
