"""``l1ad firmware emulate`` as a function: refuse a stale project, C-simulate every event against the
QAT model (:func:`l1ad.emulation.compare.emulate`), optionally check the da4ml RTL under Verilator,
and write ``<project>/emulation.json``."""

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
) -> EmulationRun:
    """Emulate ``project`` on ``events``; write ``emulation.json``; ``ok`` is False on any mismatch."""
    from l1ad.emulation.compare import emulate
    from l1ad.emulation.csim import CSim

    meta = check_fresh(project, model_dir, target_name)
    model, _ = registry.firmware_model(model_dir)
    csim = CSim(project)
    n_total = event_inputs.count_events(events)
    if limit is not None:
        n_total = min(n_total, limit)
    chunks = event_inputs.iter_inputs(events, chunk=chunk, limit=limit)
    result = emulate(csim, model, chunks, chunk=chunk, progress=progress, scores_out=scores_out,
                     n_total=n_total, n_threads=threads)  # fmt: skip
    lines = [result.summary()]
    record = result.to_dict()
    ok = result.ok
    if rtl:
        check = rtl_check(project, meta, events, limit, csim)
        record["rtl"] = check
        lines.append(
            f"RTL (Verilator): {check['n_events']} events, {check['n_mismatch']} mismatches vs C-sim "
            f"({check['events_per_second']:,.0f} events/s)"
        )
        ok = ok and check["n_mismatch"] == 0 and check["n_events"] > 0
    atomic_write_text(
        project / EMULATION_FILE, json.dumps(record, indent=1, sort_keys=True, default=str) + "\n"
    )
    return EmulationRun("\n".join(lines), record, ok)


def rtl_check(project: Path, meta: dict, events: Path, limit: int | None, csim: Any) -> dict[str, Any]:
    """Verilator simulation of the da4ml Verilog vs the C-simulation on every event."""
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
        bad += count_mismatches(y_rtl, csim.predict(x))
        n += len(x)
    return {"n_events": n, "n_mismatch": bad, "events_per_second": n / seconds if seconds else 0.0}
