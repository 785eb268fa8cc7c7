"""Make the committed Pythia reference sample used by ``tests/test_generator_validation.py``.

Usage: ``python scripts/make_pythia_reference.py [--set {reference,validation}] [--out DIR] [--work DIR]
[--workers 2] [--mpi/--no-mpi]``

Two committed sets: ``reference`` (``tests/data/pythia_reference``, seed 2021, used while tuning the
fast generator) and ``validation`` (``tests/data/pythia_validation``, seed 4099, 14k events: the ADC2021
background mixture of 10k plus 1k per signal; never used while tuning). Recreate one with e.g.
``python scripts/make_pythia_reference.py --set validation``.

Writes one ADC2021-layout file per process (``<process>.h5``, gzip) and ``reference.json`` (settings,
counts, acceptance, events/s per process). Needs the ``pythia`` extra. Both sets are generated with
MPI (the underlying event) and the pileup overlay on. Resumable: rerunning with the same ``--work``
skips finished chunks.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

from l1ad.events.generator import BACKGROUND_PROCESSES, mixture_counts
from l1ad.events.schema import SIGNAL_NAMES

#: Accepted events per process in the committed reference (used while tuning the fast generator).
REFERENCE_COUNTS = {
    "W": 3000,
    "QCD": 1500,
    "Z": 1200,
    "ttbar": 300,
    "Ato4l": 800,
    "leptoquark": 800,
    "hToTauTau": 800,
    "hChToTauNu": 800,
}
#: The validation set: 10k background events in the ADC2021 mixture + 1k per signal.
VALIDATION_COUNTS = {
    **dict(zip(BACKGROUND_PROCESSES, mixture_counts(10_000).tolist(), strict=True)),
    **{name: 1000 for name in SIGNAL_NAMES},
}
#: set -> (counts, seed, chunk size, output folder under tests/data). The validation seed has never
#: been used while tuning (seed 2026 was, before the pileup-overlay fix of the engine).
SETS = {
    "reference": (REFERENCE_COUNTS, 2021, 250, "pythia_reference"),
    "validation": (VALIDATION_COUNTS, 4099, 250, "pythia_validation"),
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), default="reference")
    parser.add_argument("--out", help="default: tests/data/<the set's folder>")
    parser.add_argument("--work", help="chunk directory (resumable); default pythia_<set>_work")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mpi", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply all counts (quick trials)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    from l1ad.core.files import atomic_write_text
    from l1ad.events.pythia.run import generate_processes

    base, seed, chunk_size, folder = SETS[args.set]
    counts = {p: max(1, int(n * args.scale)) for p, n in base.items()}
    work = args.work or f"pythia_{args.set}_work"
    t0 = time.perf_counter()
    report = generate_processes(counts, work, seed, mpi=args.mpi, workers=args.workers, chunk_size=chunk_size)
    out = Path(args.out or Path(__file__).resolve().parents[1] / "tests/data" / folder)
    out.mkdir(parents=True, exist_ok=True)
    for r in report.values():
        shutil.copyfile(Path(work) / r["file"], out / r["file"])
    meta = {
        "generator": "Pythia 8.317 + l1ad.events.pythia L1 emulation",
        "set": args.set,
        "seed": seed,
        "mpi": args.mpi,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "processes": report,
    }
    atomic_write_text(out / "reference.json", json.dumps(meta, indent=1))
    logging.info("reference written to %s (%.2f MB)", out, sum(r["bytes"] for r in report.values()) / 1e6)
    return meta


if __name__ == "__main__":
    main()
