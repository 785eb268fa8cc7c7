"""Make the committed Pythia reference sample used by ``tests/test_generator_validation.py``.

Usage: ``python scripts/make_pythia_reference.py [--out tests/data/pythia_reference] [--work DIR]
[--workers 2] [--seed 2021] [--mpi/--no-mpi]``

Writes one ADC2021-layout file per process (``<process>.h5``, gzip) and ``reference.json`` (settings,
counts, acceptance, events/s per process). Needs the ``pythia`` extra. The reference is generated with
MPI off (5x faster; the pileup overlay of ~20 minimum-bias events, which has MPI, dominates the soft
activity anyway). Resumable: rerunning with the same ``--work`` skips finished chunks.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

#: Accepted events per process in the committed reference (a few MB in total).
REFERENCE_COUNTS = {
    "W": 2000,
    "QCD": 1500,
    "Z": 1500,
    "ttbar": 800,
    "Ato4l": 800,
    "leptoquark": 800,
    "hToTauTau": 800,
    "hChToTauNu": 800,
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parents[1] / "tests/data/pythia_reference")
    )
    parser.add_argument("--work", default="pythia_reference_work", help="chunk directory (resumable)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--mpi", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply all counts (quick trials)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    from l1ad.core.files import atomic_write_text
    from l1ad.events.pythia.run import generate_processes

    counts = {p: max(1, int(n * args.scale)) for p, n in REFERENCE_COUNTS.items()}
    t0 = time.perf_counter()
    report = generate_processes(
        counts, args.work, args.seed, mpi=args.mpi, workers=args.workers, chunk_size=args.chunk_size
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for r in report.values():
        shutil.copyfile(Path(args.work) / r["file"], out / r["file"])
    meta = {
        "generator": "Pythia 8.317 + l1ad.events.pythia L1 emulation",
        "seed": args.seed,
        "mpi": args.mpi,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "processes": report,
    }
    atomic_write_text(out / "reference.json", json.dumps(meta, indent=1))
    logging.info("reference written to %s (%.2f MB)", out, sum(r["bytes"] for r in report.values()) / 1e6)
    return meta


if __name__ == "__main__":
    main()
