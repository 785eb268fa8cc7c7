"""``l1ad firmware emulate`` as a function: refuse a stale project, score every event with the fast
bit-exact emulator (:class:`l1ad.emulation.fast.FastEmulator`) against the QAT model and
cross-check it with hls4ml's C-simulation on a sample (:func:`l1ad.emulation.compare.emulate`),
optionally check the da4ml RTL under Verilator, and write ``<project>/emulation.json``."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from l1ad.core.files import atomic_write_text, sha256_file
from l1ad.events import inputs as event_inputs
from l1ad.hls.metadata import read_metadata
from l1ad.models import registry

logger = logging.getLogger(__name__)

EMULATION_FILE = "emulation.json"


class StaleProjectError(RuntimeError):
    """The model changed since the project was built."""


def check_fresh(project: Path, model_dir: Path, target_name: str) -> dict[str, Any]:
    """The project's metadata, after checking it was built from the model file now in ``model_dir``."""
    meta = read_metadata(project)
    if sha256_file(registry.firmware_model_file(model_dir)) != meta["model_sha256"]:
        raise StaleProjectError(
            f"{project}: project is stale (model changed since build): rebuild with `l1ad firmware build {target_name}`"
        )
    return meta


@dataclass(frozen=True)
class EmulationRun:
    summary: str
    record: dict[str, Any]
    ok: bool


def emulate_project(
    project: Path,
    model_dir: Path,
    events: Path,
    target_name: str,
    chunk: int = 65536,
    limit: int | None = None,
    threads: int | None = None,
    scores_out: Path | None = None,
    rtl: bool = False,
    progress: bool = True,
    csim_sample: int = 100_000,
    fast: bool = True,
) -> EmulationRun:
    """Emulate ``project`` on ``events``; write ``emulation.json``; ``ok`` is False on any mismatch.

    ``fast``: the fast emulator of the firmware (DA: its adder graph; Latency: hls4ml's C++ at -O3)
    scores every event and the C-sim checks the first ``csim_sample`` (``csim_check`` in the
    record); else the C-sim scores every event (the record has no check).
    """
    from l1ad.emulation.compare import emulate
    from l1ad.emulation.csim import CSim
    from l1ad.emulation.fast import FastEmulator
    from l1ad.emulation.trigger import CompiledMenu

    meta = check_fresh(project, model_dir, target_name)
    model, _ = registry.firmware_model(model_dir)
    csim = CSim(project)
    emulator = FastEmulator(project) if fast else None
    menu = CompiledMenu(project) if meta.get("thresholds_header") else None
    n_total = event_inputs.count_events(events)
    if limit is not None:
        n_total = min(n_total, limit)
    chunks = event_inputs.iter_inputs(events, chunk=chunk, limit=limit)
    result = emulate(csim, model, chunks, chunk=chunk, progress=progress, scores_out=scores_out,
                     n_total=n_total, n_threads=threads, fast=emulator, csim_sample=csim_sample, menu=menu)  # fmt: skip
    lines = [result.summary()]
    record = result.to_dict()
    if menu is not None:
        lines += _rate_check(meta, result, record)
    ok = result.ok
    if rtl:
        check = rtl_check(project, meta, events, limit, emulator or csim)
        record["rtl"] = check
        lines.append(
            f"RTL (Verilator): {check['n_events']} events, {check['n_mismatch']} mismatches vs "
            f"{check['reference']} ({check['events_per_second']:,.0f} events/s)"
        )
        ok = ok and check["n_mismatch"] == 0 and check["n_events"] > 0
    atomic_write_text(
        project / EMULATION_FILE, json.dumps(record, indent=1, sort_keys=True, default=str) + "\n"
    )
    return EmulationRun("\n".join(lines), record, ok)


def _rate_check(meta: dict[str, Any], result: Any, record: dict[str, Any]) -> list[str]:
    """Fire rates of the header's thresholds on these events against their calibration (pulls)."""
    from l1ad.emulation.trigger import rate_check

    source = meta.get("thresholds_source") or {}
    if source.get("kind") != "calibration":
        record["rate_check_skipped"] = (
            f"thresholds from {source.get('file', 'a rate table')}, not calibrated on independent background"
        )
        return [f"  rate check skipped: {record['rate_check_skipped']}"]
    counts = [result.fire_counts[f"{t['rate_khz']:g}kHz"] for t in meta["thresholds"]]
    rows = rate_check(counts, result.n_events, meta["thresholds"])
    record["rate_check"] = rows
    lines = []
    for r in rows:
        lines.append(
            f"  rate {r['rate_khz']:g} kHz: {r['test_rate_khz']:.3f} +- {r['test_err_khz']:.3f} kHz on these events "
            f"(calibration +- {r['calibration_err_khz']:.3f}), pull {r['pull']:+.2f}{'' if r['ok'] else '  |pull| >= 3'}"
        )
        if not r["ok"]:
            logger.warning(
                "%s: fire rate at %g kHz off by %.1f sigma", meta["target"], r["rate_khz"], r["pull"]
            )
    return lines


def rtl_check(project: Path, meta: dict, events: Path, limit: int | None, reference: Any) -> dict[str, Any]:
    """Verilator simulation of the da4ml Verilog vs ``reference`` (fast emulator or C-sim) on every event."""
    from l1ad.emulation.compare import count_mismatches
    from l1ad.emulation.rtl_sim import RTLSim

    if meta["strategy"] != "distributed_arithmetic":
        raise ValueError("--rtl needs a distributed_arithmetic target")
    sim = RTLSim(project)
    n, bad, seconds = 0, 0, 0.0
    for x in event_inputs.iter_inputs(events, limit=limit):
        t0 = time.perf_counter()
        y_rtl = sim.predict(x)
        seconds += time.perf_counter() - t0
        bad += count_mismatches(y_rtl, reference.predict(x))
        n += len(x)
    name = getattr(reference, "name", "hls4ml C-sim")
    return {
        "n_events": n,
        "n_mismatch": bad,
        "events_per_second": n / seconds if seconds else 0.0,
        "reference": name,
    }
