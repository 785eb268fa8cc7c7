"""The vendor flow (l1ad.hls.vendor_flow) and the Vivado implementation report parsers.

Command lines and scripts are checked as pure functions; the orchestration runs against stand-in
executables on a PATH of their own (they check their arguments and copy checked-in reports where the
real tools would write theirs); the real tools run only where they are installed (gated, slow). The
parsers' expected values were read by eye from the real Vivado 2021.2 reports in
tests/data/vendor_reports/vivado_2021.2_zu3eg (see its README).
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import sys
from pathlib import Path

import pytest

from l1ad.hls.target import FirmwareTarget
from l1ad.hls.vendor_flow import (
    CLOCK_XDC,
    IMPLEMENTATION,
    LOG_FILE,
    VIVADO_REPORTS,
    VIVADO_TCL,
    VendorFlowError,
    VendorToolMissing,
    build_opt_tcl,
    build_options,
    clock_xdc,
    find_vendor_tool,
    run_vendor_flow,
    vendor_command,
    vivado_command,
    vivado_tcl,
)
from l1ad.reports.vendor import find_vendor_reports
from l1ad.reports.vivado import parse_vivado_synth_rpt, parse_vivado_timing_summary, parse_vivado_utilization

DATA = Path(__file__).parent / "data" / "vendor_reports"
ZU3EG = DATA / "vivado_2021.2_zu3eg"
VIVADO_SYNTH = DATA / "vivado_hls_2020.1" / "vivado_synth.rpt"
VITIS_XML = DATA / "vitis_hls_2024.1" / "solution1" / "syn" / "report" / "Topo2A_AD_proj_csynth.xml"
NO_TIMING = dict.fromkeys(
    [f"{w}_{k}" for w in ("tns", "ths", "tpws") for k in ("ns", "failing_endpoints", "total_endpoints")]
    + ["wns_ns", "whs_ns", "wpws_ns"]
)


def _read(path: Path) -> str:
    return path.read_text()


# --------------------------------------------------------------------------- report_timing_summary
def test_timing_summary_met_post_route() -> None:
    t = parse_vivado_timing_summary(_read(ZU3EG / "lpm_timing_summary_route.rpt"))
    assert (t["tool_version"], t["design"], t["device"]) == ("2021.2", "main", "xczu3eg-sbva484")
    assert (t["wns_ns"], t["tns_ns"], t["whs_ns"], t["ths_ns"], t["wpws_ns"]) == (
        0.471,
        0.0,
        0.044,
        0.0,
        2.225,
    )
    assert (t["tns_failing_endpoints"], t["tns_total_endpoints"], t["tpws_total_endpoints"]) == (
        0,
        1696,
        1077,
    )
    assert isinstance(t["ths_ns"], float) and isinstance(t["tns_total_endpoints"], int)
    assert t["constraints_met"] is True
    assert t["clocks"] == [{"name": "clk", "period_ns": 5.0, "frequency_mhz": 200.0}]
    assert (t["clock"], t["clock_period_ns"]) == ("clk", 5.0)
    assert t["achieved_clock_ns"] == pytest.approx(5.0 - 0.471)  # slack left: faster than asked
    assert t["fmax_mhz"] == pytest.approx(1000 / 4.529, abs=1e-3)
    assert json.loads(json.dumps(t)) == t


def test_timing_summary_failing_post_route() -> None:
    t = parse_vivado_timing_summary(_read(ZU3EG / "inlining_timing_summary_route.rpt"))
    assert (t["wns_ns"], t["tns_ns"], t["tns_failing_endpoints"], t["tns_total_endpoints"]) == (
        -0.089,
        -0.762,
        20,
        973,
    )
    assert t["constraints_met"] is False
    assert t["achieved_clock_ns"] == pytest.approx(5.089)  # negative slack: slower than the 5 ns asked
    assert t["fmax_mhz"] == pytest.approx(196.502, abs=1e-3)


def test_timing_summary_unconstrained_is_all_none() -> None:
    # post-synthesis, no clock constrained: Vivado prints NA everywhere and no clock
    t = parse_vivado_timing_summary(_read(ZU3EG / "lpm_timing_summary_synth.rpt"))
    assert {k: t[k] for k in NO_TIMING} == NO_TIMING
    assert (t["constraints_met"], t["clocks"], t["clock"], t["achieved_clock_ns"], t["fmax_mhz"]) == (
        None,
        [],
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda s: s.replace("| Design Timing Summary", "| Something Else"),
            "missing the 'Design Timing Summary'",
        ),
        (lambda s: s.replace("     -0.089       -0.762 ", "     -0.089 "), "has no row of 12 values"),
        (lambda s: s.replace("     -0.089 ", "      fast  "), "WNS\\(ns\\): expected a number, got 'fast'"),
        (lambda s: "", "missing the 'Design Timing Summary'"),
    ],
)
def test_timing_summary_malformed(edit, message: str) -> None:
    text = _read(ZU3EG / "inlining_timing_summary_route.rpt")
    with pytest.raises(ValueError, match=message):
        parse_vivado_timing_summary(edit(text))


# --------------------------------------------------------------------------- report_utilization
def test_post_route_utilization_ultrascale() -> None:
    u = parse_vivado_utilization(_read(ZU3EG / "lpm_util_route.rpt"))
    assert (u["tool_version"], u["design"], u["device"], u["design_state"]) == (
        "2021.2",
        "main",
        "xczu3eg-sbva484-1-e",
        "Routed",
    )
    res = u["resources"]
    assert res["LUT"] == {"used": 5648, "available": 70560, "percent": 8.0}  # "CLB LUTs"
    assert res["FF"] == {"used": 1077, "available": 141120, "percent": 0.76}  # "CLB Registers"
    assert res["DSP"] == {"used": 0, "available": 360, "percent": 0.0}
    assert res["BRAM_18K"] == {"used": 0, "available": 432, "percent": 0.0}  # 2 x 216 tiles
    assert "URAM" not in res  # the ZU3EG has none


def test_utilization_any_stage_keeps_the_synth_parse() -> None:
    text = _read(VIVADO_SYNTH)
    u = parse_vivado_utilization(text)
    assert u["design_state"] == "Synthesized"
    assert {k: v for k, v in u.items() if k != "design_state"} == parse_vivado_synth_rpt(text)
    with pytest.raises(ValueError, match="report_utilization: not a Vivado report_utilization output"):
        parse_vivado_utilization("")


# --------------------------------------------------------------------------- find_vendor_reports
def _place_vivado_reports(project: Path) -> None:
    """The checked-in Vivado reports under the names the flow's Vivado script writes."""
    for key, source in (
        ("synth_utilization", VIVADO_SYNTH),
        ("synth_timing", ZU3EG / "lpm_timing_summary_synth.rpt"),
        ("route_utilization", ZU3EG / "lpm_util_route.rpt"),
        ("route_timing", ZU3EG / "inlining_timing_summary_route.rpt"),
    ):
        shutil.copyfile(source, project / VIVADO_REPORTS[key])


def test_find_vendor_reports_picks_up_the_flow_reports(tmp_path: Path) -> None:
    _place_vivado_reports(tmp_path)
    (tmp_path / "notes.rpt").write_text("not a Vivado report\n")  # ignored
    found = find_vendor_reports(tmp_path)
    assert found is not None and found["csynth"] is None
    assert found["vivado_synth"] == parse_vivado_synth_rpt(_read(VIVADO_SYNTH))
    route = found["vivado_route"]
    assert route["design_state"] == "Routed" and route["resources"]["LUT"]["used"] == 5648
    assert route["file"] == str(tmp_path / VIVADO_REPORTS["route_utilization"])
    assert sorted(found["timing"]) == ["route", "synth"]
    assert found["timing"]["route"]["achieved_clock_ns"] == pytest.approx(5.089)
    assert found["timing"]["route"]["stage"] == "route"
    assert found["timing"]["synth"]["wns_ns"] is None
    assert sorted(found["files"]) == sorted(str(tmp_path / name) for name in VIVADO_REPORTS.values())
    assert json.loads(json.dumps(found)) == found


def test_find_vendor_reports_timing_stage_from_file_name(tmp_path: Path) -> None:
    # Vivado project-mode names: <top>_timing_summary_routed.rpt; an unnamed stage is 'unknown'
    shutil.copyfile(ZU3EG / "lpm_timing_summary_route.rpt", tmp_path / "top_timing_summary_routed.rpt")
    shutil.copyfile(ZU3EG / "lpm_timing_summary_synth.rpt", tmp_path / "timing.rpt")
    found = find_vendor_reports(tmp_path)
    assert sorted(found["timing"]) == ["route", "unknown"]
    assert found["timing"]["route"]["wns_ns"] == 0.471
    assert found["vivado_route"] is None and found["vivado_synth"] is None


def test_find_vendor_reports_malformed_timing_names_the_file(tmp_path: Path) -> None:
    text = _read(ZU3EG / "lpm_timing_summary_route.rpt").replace("      0.471 ", "      oops  ")
    (tmp_path / VIVADO_REPORTS["route_timing"]).write_text(text)
    with pytest.raises(ValueError, match=r"vivado_timing_route\.rpt: report_timing_summary WNS\(ns\)"):
        find_vendor_reports(tmp_path)


# --------------------------------------------------------------------------- commands
def test_vendor_command_vitis(tmp_path: Path) -> None:
    script = str(tmp_path / "build_prj.tcl")
    # hls4ml 1.3's Vitis backend: vitis-run reads the options from build_opt.tcl
    assert vendor_command(tmp_path, "Vitis") == ["vitis-run", "--tcl", script, "--mode", "hls"]
    assert vendor_command(tmp_path, "Vitis", tool="/opt/x/bin/vitis-run")[0] == "/opt/x/bin/vitis-run"
    assert vendor_command(tmp_path, "Vitis", tool="/opt/x/bin/vitis_hls") == [
        "/opt/x/bin/vitis_hls",
        "-f",
        script,
    ]


def test_vendor_command_vivado_hls(tmp_path: Path) -> None:
    script = str(tmp_path / "build_prj.tcl")
    assert vendor_command(tmp_path, "Vivado") == [
        "vivado_hls",
        "-f",
        script,
        "reset=0 csim=0 synth=1 cosim=0 validation=0 export=0 vsynth=1 fifo_opt=0",
    ]
    assert vendor_command(tmp_path, "Vivado", synth=True, export_ip=True, vsynth=False)[-1] == (
        "reset=0 csim=0 synth=1 cosim=0 validation=0 export=1 vsynth=0 fifo_opt=0"
    )
    with pytest.raises(ValueError, match="unknown backend 'Quartus'"):
        vendor_command(tmp_path, "Quartus")


def test_build_opt_tcl_is_what_hls4ml_build_prj_reads() -> None:
    text = build_opt_tcl(build_options(synth=True, export_ip=True, vsynth=False))
    assert text.startswith("array set opt {\n") and text.endswith("}\n")
    opts = dict(line.split() for line in text.splitlines()[1:-1])
    assert opts == {
        "reset": "0",
        "csim": "0",
        "synth": "1",
        "cosim": "0",
        "validation": "0",
        "export": "1",
        "vsynth": "0",
        "fifo_opt": "0",
    }
    # the same option names as the build_opt.tcl hls4ml writes into a project
    hls4ml_opt = Path(__import__("hls4ml").__file__).parent / "templates" / "vitis" / "build_opt.tcl"
    assert [line.split()[0] for line in hls4ml_opt.read_text().splitlines()[1:-1]] == list(opts)


def test_vivado_script_writes_the_reports_find_vendor_reports_reads(tmp_path: Path) -> None:
    tcl = vivado_tcl("l1ad_x_top", "xcvu13p-flga2577-2-e")
    assert "add_files l1ad_x_top_prj/solution1/syn/verilog" in tcl
    assert "synth_design -top l1ad_x_top -part xcvu13p-flga2577-2-e -mode out_of_context" in tcl
    assert tcl.index(f"read_xdc {CLOCK_XDC}") < tcl.index("synth_design") < tcl.index("route_design")
    for key, name in VIVADO_REPORTS.items():
        command = "report_timing_summary" if key.endswith("timing") else "report_utilization"
        line = f"{command} -file {name}"
        assert line in tcl
        # synth reports before place_design, route reports after route_design
        assert (tcl.index(line) < tcl.index("place_design")) == key.startswith("synth")
    assert clock_xdc(6.25) == "create_clock -period 6.25 -name ap_clk [get_ports ap_clk]\n"
    assert vivado_command(tmp_path, "/x/vivado") == [
        "/x/vivado",
        "-mode",
        "batch",
        "-nojournal",
        "-nolog",
        "-notrace",
        "-source",
        str(tmp_path / VIVADO_TCL),
    ]


# --------------------------------------------------------------------------- tools and the flow
def _target(backend: str = "Vitis") -> FirmwareTarget:
    return FirmwareTarget(
        name="flow", model="m", backend=backend, part="xcvu13p-flga2577-2-e", clock_period_ns=6.25
    )


def _project(root: Path, target: FirmwareTarget) -> Path:
    project = root / "proj"
    project.mkdir()
    (project / "metadata.json").write_text(json.dumps({"project_name": target.project_name}))
    return project


def _tool(bin_dir: Path, name: str, body: str) -> None:
    """A stand-in executable: a Python script (argv in ``sys.argv``, run in the project directory)."""
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f"#!{sys.executable}\nimport os, shutil, sys\nfrom pathlib import Path\n{body}\n")
    path.chmod(0o755)


def test_find_vendor_tool_prefers_vitis_run(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert all(find_vendor_tool(step) is None for step in ("Vitis", "Vivado", IMPLEMENTATION))
    _tool(tmp_path / "bin", "vitis_hls", "")
    assert find_vendor_tool("Vitis") == str(tmp_path / "bin" / "vitis_hls")
    _tool(tmp_path / "bin", "vitis-run", "")
    assert find_vendor_tool("Vitis") == str(tmp_path / "bin" / "vitis-run")
    assert find_vendor_tool("Vivado") is None  # vivado_hls is another tool
    with pytest.raises(ValueError, match="unknown vendor flow step 'vivado'"):
        find_vendor_tool("vivado")


def test_missing_tools_say_what_to_do(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    target = _target()
    project = _project(tmp_path, target)
    with pytest.raises(VendorToolMissing) as info:
        run_vendor_flow(project, target)
    message = str(info.value)
    assert info.value.missing == ["Vitis", IMPLEMENTATION]
    assert "Vitis HLS not found: none of vitis-run, vitis_hls is on PATH" in message
    assert "Vivado not found: none of vivado is on PATH" in message
    assert "settings64.sh" in message and "ESTIMATE" in message and "Yosys" in message
    assert not (project / LOG_FILE).exists()  # nothing ran
    _tool(tmp_path / "bin", "vivado_hls", "")
    with pytest.raises(VendorToolMissing, match="^Vivado not found") as info:
        run_vendor_flow(project, _target("Vivado"))
    assert info.value.missing == [IMPLEMENTATION]


def test_project_of_another_target_refused(tmp_path: Path) -> None:
    project = _project(tmp_path, _target())
    other = FirmwareTarget(name="other", model="m")
    with pytest.raises(ValueError, match="not of target 'other'"):
        run_vendor_flow(project, other)


_FAKE_VITIS_RUN = f"""
assert sys.argv[1:] == ["--tcl", str(Path.cwd() / "build_prj.tcl"), "--mode", "hls"], sys.argv
opts = Path("build_opt.tcl").read_text()
assert "csim       0" in opts and "synth      1" in opts and "export     1" in opts, opts
print("***** C/RTL SYNTHESIS *****")
print("oops on stderr", file=sys.stderr)
top = os.environ["FAKE_TOP"]
report = Path(top + "_prj/solution1/syn/report")
report.mkdir(parents=True)
shutil.copyfile({str(VITIS_XML)!r}, report / (top + "_csynth.xml"))
Path(top + "_prj/solution1/impl").mkdir(parents=True)
Path(top + "_prj/solution1/impl/export.zip").write_text("ip")
"""

_FAKE_VIVADO = f"""
assert sys.argv[1:7] == ["-mode", "batch", "-nojournal", "-nolog", "-notrace", "-source"], sys.argv
assert "synth_design -top" in Path(sys.argv[7]).read_text()
assert Path("{CLOCK_XDC}").read_text().startswith("create_clock -period 6.25 ")
print("route_design completed")
for name, source in {
    [
        (VIVADO_REPORTS["synth_utilization"], str(VIVADO_SYNTH)),
        (VIVADO_REPORTS["synth_timing"], str(ZU3EG / "lpm_timing_summary_synth.rpt")),
        (VIVADO_REPORTS["route_utilization"], str(ZU3EG / "lpm_util_route.rpt")),
        (VIVADO_REPORTS["route_timing"], str(ZU3EG / "lpm_timing_summary_route.rpt")),
    ]
}:
    shutil.copyfile(source, name)
"""


def test_flow_with_stand_in_tools(tmp_path: Path, monkeypatch) -> None:
    target = _target()
    project = _project(tmp_path, target)
    bin_dir = tmp_path / "bin"
    _tool(bin_dir, "vitis-run", _FAKE_VITIS_RUN)
    _tool(bin_dir, "vivado", _FAKE_VIVADO)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_TOP", target.project_name)
    result = run_vendor_flow(project, target, export_ip=True)

    top = target.project_name
    assert result["tools"] == {"Vitis": str(bin_dir / "vitis-run"), IMPLEMENTATION: str(bin_dir / "vivado")}
    assert result["commands"] == [
        vendor_command(project, "Vitis", tool=str(bin_dir / "vitis-run")),
        vivado_command(project, str(bin_dir / "vivado")),
    ]
    assert result["ip"] == [str(project / f"{top}_prj" / "solution1" / "impl" / "export.zip")]
    assert result["reports"][0] == str(project / f"{top}_prj/solution1/syn/report/{top}_csynth.xml")
    log = (project / LOG_FILE).read_text()
    assert (
        "***** C/RTL SYNTHESIS *****" in log and "oops on stderr" in log and "route_design completed" in log
    )
    assert log.count("==== ") == 2  # one header per step
    found = find_vendor_reports(project)
    assert found["timing"]["route"]["achieved_clock_ns"] == pytest.approx(4.529)
    assert found["vivado_route"]["design_state"] == "Routed"
    assert found["csynth"]["estimated_clock_ns"] == 17.294


def test_flow_failure_shows_the_log_tail(tmp_path: Path, monkeypatch) -> None:
    target = _target("Vivado")
    project = _project(tmp_path, target)
    _tool(tmp_path / "bin", "vivado_hls", "print('ERROR: [HLS 200-70] synthesis failed'); sys.exit(3)")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    with pytest.raises(VendorFlowError, match=r"vivado_hls failed \(exit 3\)[\s\S]*HLS 200-70"):
        run_vendor_flow(project, target, implement=False)
    # a tool that succeeds without writing its report is a failure too
    _tool(tmp_path / "bin", "vivado_hls", "print('done')")
    with pytest.raises(VendorFlowError, match="wrote no l1ad_flow_top_csynth.xml"):
        run_vendor_flow(project, target, implement=False)


# --------------------------------------------------------------------------- the real tools
def _real_flow_skip_reason() -> str | None:
    missing = [
        what
        for step, what in (("Vitis", "vitis-run or vitis_hls"), (IMPLEMENTATION, "vivado"))
        if find_vendor_tool(step) is None
    ]
    if missing:
        return f"needs {' and '.join(missing)} on PATH"
    if os.environ.get("L1AD_RUN_SYNTHESIS") != "1":
        return "vendor tools found; set L1AD_RUN_SYNTHESIS=1 to run synthesis and place & route (minutes)"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_real_flow_skip_reason() is not None, reason=str(_real_flow_skip_reason()))
def test_real_vendor_flow(tmp_path: Path) -> None:
    fm = runpy.run_path(str(Path(__file__).parent / "fixtures" / "firmware_models.py"))["load"]()
    project = tmp_path / "p"
    shutil.copytree(fm.project("Latency", "tiny"), project, ignore=shutil.ignore_patterns("csim"))
    target = fm.target("Latency", "tiny")
    result = run_vendor_flow(project, target)
    found = find_vendor_reports(project)
    assert found["csynth"]["top"] == target.project_name
    assert found["vivado_route"]["design_state"] == "Routed"
    assert found["timing"]["route"]["clock_period_ns"] == target.clock_period_ns
    assert found["timing"]["route"]["achieved_clock_ns"] is not None
    assert set(result["seconds"]) == {"hls", "vivado"}


# --------------------------------------------------------------------------- the budget report's use of them
def test_budget_row_takes_post_route_utilization_and_the_achieved_clock(tmp_path: Path) -> None:
    """Post-route utilization wins over synthesis; the achieved clock (period - WNS) becomes a budget
    that fails when timing is not met (WNS -0.089 ns at 5 ns)."""
    from l1ad.reports.budget import budget_checks, from_vendor

    _place_vivado_reports(tmp_path)
    row = from_vendor(find_vendor_reports(tmp_path), clock_period_ns=5.0)
    assert row["resources_from"].startswith("Vivado post-route") and row["resources"]["LUT"] == 5648
    assert row["timing_stage"] == "route" and row["achieved_clock_ns"] == pytest.approx(5.089)
    assert row["timing_met"] is False
    budgets = {"ii_ns": 25.0, "latency_ns": 50.0, "resource_fraction": 1.0, "require_zero_dsp": False}
    checks = {c["budget"]: c for c in budget_checks(row, budgets, {"LUT": 70560})}
    assert checks["achieved clock"]["value"] == pytest.approx(5.089) and not checks["achieved clock"]["pass"]


def test_vendor_refusal_checks_every_vivado_report_device(tmp_path: Path) -> None:
    from l1ad.reports.budget import vendor_refusal

    _place_vivado_reports(tmp_path)
    vendor = find_vendor_reports(tmp_path)
    reason = vendor_refusal(vendor, {"project_name": "x_top", "part": "xcvu13p-flga2577-2-e"}, None)
    assert reason is not None and "post-route utilization report is for device" in reason
