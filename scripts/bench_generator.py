"""Benchmark the L1 event generator: accepted events per second per process and for the mixture.

Usage: ``python scripts/bench_generator.py [-n 1000000] [--n-signal 100000] [--seed 1] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import logging
import time

logger = logging.getLogger("bench_generator")


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", type=int, default=1_000_000, help="background events (default 1M)")
    parser.add_argument("--n-signal", type=int, default=100_000, help="events per signal (default 100k)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default=None, help="also write the rates to this JSON file")


def _timed(fn, *args) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_args(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from l1ad.events.generator import (
        BACKGROUND_PROCESSES,
        generate_background,
        generate_process,
        mixture_counts,
    )
    from l1ad.events.schema import SIGNAL_NAMES

    generate_process("W", 1000, args.seed)  # warm-up: imports, page faults
    results: dict[str, dict[str, float]] = {}
    jobs = list(zip(BACKGROUND_PROCESSES, mixture_counts(args.n).tolist(), strict=True))
    jobs += [(s, args.n_signal) for s in SIGNAL_NAMES]
    for name, n in jobs:
        if n == 0:
            continue
        _, wall, cpu = _timed(generate_process, name, n, args.seed)
        results[name] = {"events": n, "wall_s": wall, "cpu_s": cpu, "events_per_s": n / wall}
        logger.info("%-12s %9d events  %6.2f s  %10.0f events/s (cpu %.2f s)", name, n, wall, n / wall, cpu)
    _, wall, cpu = _timed(generate_background, args.n, args.seed)
    results["background"] = {"events": args.n, "wall_s": wall, "cpu_s": cpu, "events_per_s": args.n / wall}
    logger.info(
        "%-12s %9d events  %6.2f s  %10.0f events/s (cpu %.2f s)", "mixture", args.n, wall, args.n / wall, cpu
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
