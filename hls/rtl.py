"""da4ml RTL of distributed-arithmetic targets: trace the Keras model into an adder graph, pipeline
it and write the Verilog into ``<project>/rtl/`` (called by the build; simulation is the emulation
stage's, :mod:`l1ad.emulation.rtl_sim`).

The Keras model is traced by da4ml (``da4ml.converter.trace_model`` + ``da4ml.trace.comb_trace``)
with the firmware input type of the HLS project (``metadata.json``: ``input``), giving a
combinational adder graph (``CombLogic``) with a LUT cost estimate, an adder depth and a C++
emulator. ``VerilogModel`` pipelines it (``latency_cutoff`` da4ml delay units per stage; da4ml's
own CLI pairs 5 units with a 5 ns clock, so the default here is one unit per ns of the target
clock).

Options, from the target (``latency_cutoff``, ``da_delay_constraint``; :mod:`l1ad.hls.target`, saved
in the project's ``metadata.json`` ``target_config``) unless given explicitly:

* ``latency_cutoff``: delay units per pipeline stage. da4ml's latency model (``HWConfig(1, -1, -1)``)
  counts one unit per adder whatever its width and ``b`` units for a ``b``-bit multiplication, so a
  unit is one adder level (LUT + carry chain + routing); the cutoff must fit the clock period.
* ``da_delay_constraint``: da4ml's ``hard_dc`` (the CMVM solver may exceed the minimal adder depth of
  each constant-matrix multiplication by this many units; ``None``: no constraint, da4ml's default).
  hls4ml's distributed-arithmetic kernels of the C-simulation use ``DA_HARD_DC`` (default 2); both
  graphs compute the same function bit for bit.

da4ml always registers the input and every stage's output (:func:`latency_cycles`); there is no option
to register the output only.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.core.files import atomic_write_text
from l1ad.hls.metadata import input_fixed_point, read_metadata

logger = logging.getLogger(__name__)

RTL_TOP = "l1ad_model"
RTL_DIR = "rtl"
SUMMARY_FILE = "l1ad_summary.json"


def latency_cycles(stages: int) -> int:
    """Clock edges from an input to its output (the HLS reports' latency) for ``stages`` da4ml
    pipeline stages: da4ml registers the input and every stage's output, ``stages + 1`` register
    levels; 0 stages is a combinational design. Measured in :mod:`l1ad.emulation.rtl_latency`."""
    return stages + 1 if stages else 0


@dataclass(frozen=True)
class CombSummary:
    """da4ml's view of the design: LUT estimate, adder depth, pipeline stages at the clock."""

    cost_luts: float
    depth: float
    n_inputs: int
    n_outputs: int
    latency_cutoff: float
    stages: int
    reg_bits: int
    clock_period_ns: float
    delay_constraint: int | None = None

    @property
    def latency_cycles(self) -> int:
        return latency_cycles(self.stages)

    @property
    def latency_ns(self) -> float:
        return self.latency_cycles * self.clock_period_ns

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["latency_cycles"] = self.latency_cycles
        d["latency_ns"] = self.latency_ns
        return d


def solver_options(delay_constraint: int | None) -> dict[str, Any] | None:
    """da4ml CMVM solver options for a delay constraint (``None``: da4ml's defaults)."""
    if delay_constraint is None:
        return None
    if isinstance(delay_constraint, bool) or not isinstance(delay_constraint, int) or delay_constraint < 0:
        raise ValueError(f"delay constraint must be an integer >= 0 or None, got {delay_constraint!r}")
    return {"hard_dc": delay_constraint}


def trace_comb(model: Any, meta: dict[str, Any], delay_constraint: int | None = None) -> Any:
    """The da4ml ``CombLogic`` of ``model`` with the project's input type."""
    from da4ml.converter import trace_model
    from da4ml.trace import comb_trace

    t = input_fixed_point(meta)
    inp, out = trace_model(model, solver_options=solver_options(delay_constraint), inputs_kif=(t.k, t.i, t.f))
    return comb_trace(inp, out)


def default_latency_cutoff(clock_period_ns: float) -> float:
    """da4ml delay units per pipeline stage for a clock (one unit per ns, as da4ml's CLI defaults)."""
    return max(1.0, float(clock_period_ns))


def verilog_model(comb: Any, rtl_dir: Path, meta: dict[str, Any], latency_cutoff: float | None = None) -> Any:
    """A ``da4ml.codegen.VerilogModel`` for the project (not written yet)."""
    from da4ml.codegen import VerilogModel

    clock = float(meta["clock_period_ns"])
    return VerilogModel(
        comb,
        RTL_TOP,
        rtl_dir,
        latency_cutoff=latency_cutoff if latency_cutoff is not None else default_latency_cutoff(clock),
        clock_period=clock,
        part_name=meta["part"],
    )


def rtl_options(meta: dict[str, Any]) -> tuple[float | None, int | None]:
    """``(latency_cutoff, delay_constraint)`` of the project's target (``None`` when unset)."""
    config = meta.get("target_config") or {}
    cutoff = config.get("latency_cutoff")
    return (None if cutoff is None else float(cutoff)), config.get("da_delay_constraint")


def write_rtl(
    model: Any,
    project_dir: Path,
    latency_cutoff: float | None = None,
    delay_constraint: int | None = None,
) -> CombSummary:
    """Trace, pipeline and write the Verilog into ``<project>/rtl/``; returns the summary (also saved).

    ``latency_cutoff`` / ``delay_constraint`` default to the target's (``metadata.json``), else
    one delay unit per ns of the clock / no constraint."""
    meta = read_metadata(project_dir)
    target_cutoff, target_dc = rtl_options(meta)
    latency_cutoff = latency_cutoff if latency_cutoff is not None else target_cutoff
    delay_constraint = delay_constraint if delay_constraint is not None else target_dc
    comb = trace_comb(model, meta, delay_constraint)
    rtl_dir = Path(project_dir) / RTL_DIR
    if rtl_dir.exists():
        shutil.rmtree(rtl_dir)
    vm = verilog_model(comb, rtl_dir, meta, latency_cutoff)
    vm.write()
    rtl_meta = json.loads((rtl_dir / "metadata.json").read_text())
    summary = CombSummary(
        cost_luts=float(comb.cost),
        depth=float(np.max(comb.latency)),
        n_inputs=int(comb.shape[0]),
        n_outputs=int(comb.shape[1]),
        latency_cutoff=float(rtl_meta.get("latency_cutoff", -1)),
        stages=int(rtl_meta.get("latency", 0)),
        reg_bits=int(rtl_meta.get("reg_bits", 0)),
        clock_period_ns=float(meta["clock_period_ns"]),
        delay_constraint=delay_constraint,
    )
    atomic_write_text(rtl_dir / SUMMARY_FILE, json.dumps(summary.to_dict(), indent=1, sort_keys=True) + "\n")
    logger.info(
        "da4ml RTL in %s: %d stages (cutoff %g, delay constraint %s), ~%d LUTs",
        rtl_dir,
        summary.stages,
        summary.latency_cutoff,
        delay_constraint,
        summary.cost_luts,
    )
    return summary


def read_rtl_summary(project_dir: Path) -> dict[str, Any] | None:
    """The :class:`CombSummary` saved by :func:`write_rtl` (a dict), or None for projects without RTL."""
    path = Path(project_dir) / RTL_DIR / SUMMARY_FILE
    return json.loads(path.read_text()) if path.is_file() else None
