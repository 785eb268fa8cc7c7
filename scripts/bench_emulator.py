"""Emulator throughput: hls4ml C-sim vs the fast bit-exact emulator (events/s, ratio, time for 1e8 events).

Usage::

    python scripts/bench_emulator.py                         # demo: the test AE model, both strategies
    python scripts/bench_emulator.py --project runs/default/firmware/ae_compact_vu13p_da \\
        --events runs/default/data/background_test.h5

Per project and thread count (1 and all cores): the hls4ml C-simulation (:class:`l1ad.emulation.csim.CSim`),
the fast emulator (:class:`l1ad.emulation.fast.FastEmulator`), da4ml's interpreter for DA projects,
optionally Verilator; the fast emulator's outputs are checked equal to the C-sim's on all timed events.
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


def _rate(fn, x: np.ndarray, repeat: int = 3) -> float:
    """Best of ``repeat`` timings (events/s) of ``fn`` on ``x`` after a warm-up call."""
    fn(x[:16])  # warm-up (static tables, thread pools)
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(x)
        best = max(best, len(x) / (time.perf_counter() - t0))
    return best


def _hours(rate: float, n: float = 1e8) -> str:
    s = n / rate
    return f"{s / 3600:.2f} h" if s >= 3600 else f"{s / 60:.1f} min" if s >= 60 else f"{s:.1f} s"


def bench_project(project: Path, x: np.ndarray, rtl: bool, model=None) -> dict[str, float]:
    """Events/s of the hls4ml C-sim, the fast emulator (and da4ml's interpreter, Verilator); printed."""
    from l1ad.emulation.csim import CSim
    from l1ad.emulation.fast import FastEmulator
    from l1ad.hls.metadata import read_metadata

    meta = read_metadata(project)
    tag = f"[{meta['target']}]"
    t0 = time.perf_counter()
    csim = CSim(project)
    print(f"{tag} hls4ml C-sim compile: {time.perf_counter() - t0:.1f} s (cached if unchanged)")
    fasts = {"fast": None, "graph": None}
    for key in fasts if model is not None and meta["strategy"] != "distributed_arithmetic" else ["fast"]:
        t0 = time.perf_counter()
        fasts[key] = FastEmulator(project, model=model if key == "graph" else None)
        print(
            f"{tag} {key} emulator: {fasts[key].name}, build {time.perf_counter() - t0:.1f} s (cached if unchanged)"
        )
    fasts = {k: f for k, f in fasts.items() if f is not None}
    y_csim = csim.predict(x)
    for emu in fasts.values():
        print(
            f"{tag} {emu.name} bit-exact vs hls4ml C-sim on {len(x):,} events: {np.array_equal(emu.predict(x), y_csim)}"
        )
    cores = os.cpu_count() or 1
    rates: dict[str, float] = {}
    for threads in sorted({1, cores}):
        n_c = min(len(x), 20_000 * threads)  # the C-sim is slow: time it on fewer events
        rates[f"csim_{threads}"] = _rate(lambda a, t=threads: csim.predict(a, n_threads=t), x[:n_c], repeat=1)
        for key, emu in fasts.items():
            rates[f"{key}_{threads}"] = _rate(lambda a, t=threads, e=emu: e.predict(a, n_threads=t), x)
    if (project / "rtl" / "model").is_dir():
        from l1ad.emulation.rtl_sim import comb_predict, load_comb

        comb = load_comb(project)
        rates[f"da4ml_interpreter_{cores}"] = _rate(lambda a: comb_predict(comb, a, meta, n_threads=cores), x)
        if rtl:
            from l1ad.emulation.rtl_sim import RTLSim

            t0 = time.perf_counter()
            sim = RTLSim(project)
            print(f"{tag} Verilator compile: {time.perf_counter() - t0:.1f} s")
            rates["verilator_1"] = _rate(sim.predict, x, repeat=1)
            print(f"{tag} Verilator bit-exact vs hls4ml C-sim: {np.array_equal(sim.predict(x), y_csim)}")
    for key, rate in rates.items():
        name, threads = key.rsplit("_", 1)
        label = f"fast: {fasts[name].name}" if name in fasts else name.replace("_", " ")
        label = "hls4ml C-sim" if name == "csim" else label
        ratio = rate / rates[f"csim_{threads}"] if f"csim_{threads}" in rates else rate / rates["csim_1"]
        print(f"{tag} {label}, {threads} thread(s): {rate:,.0f} events/s = {ratio:.1f}x C-sim; "
              f"1e8 events: {_hours(rate)}")  # fmt: skip
    return rates


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--project", type=Path, action="append", help="built project dir (repeatable)")
    p.add_argument("--events", type=Path, help="events file (.h5 / .npy); default: random encoded events")
    p.add_argument("-n", type=int, default=200_000, help="events to time (repeated to this many if fewer)")
    p.add_argument("--rtl", action="store_true", help="also build and time the Verilator model (DA projects)")
    p.add_argument(
        "--model", type=Path, help="QAT model dir: also time the adder graph traced from it (non-DA)"
    )
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    fm = runpy.run_path(str(REPO / "tests" / "fixtures" / "firmware_models.py"))["load"]()
    if args.events:
        from l1ad.events.inputs import load_inputs

        x = load_inputs(args.events, limit=args.n)
        x = np.concatenate([x] * -(-args.n // len(x)))[: args.n]  # repeat a small file up to n events
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
    model = None
    if args.model:
        from l1ad.models import registry

        model, _ = registry.firmware_model(args.model)
    for project in projects:
        bench_project(project, x, args.rtl, model)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
