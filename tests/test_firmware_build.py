"""hls4ml project generation: complete, reproducible projects; metadata; reports; the CLI."""

from __future__ import annotations

import argparse
import json
import runpy
import shutil
from pathlib import Path

import pytest

from l1ad.hls.build import build_project
from l1ad.hls.layer_features import csd_digits
from l1ad.hls.metadata import read_metadata, weights_sha256
from l1ad.hls.precision import precision_fixed_point
from l1ad.models.registry import firmware_model
from l1ad.reports.budget import budget_checks, make_report, render_markdown, write_report
from l1ad.reports.estimate import estimate

fm = runpy.run_path(str(Path(__file__).parent / "fixtures" / "firmware_models.py"))["load"]()
VENDOR = Path(__file__).parent / "data" / "vendor_reports"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_latency_project_is_complete() -> None:
    project = fm.project("Latency")
    meta = read_metadata(project)
    ns = meta["namespace"]
    for name in ("build_prj.tcl", "project.tcl", f"firmware/{meta['project_name']}.cpp", "firmware/parameters.h",
                 "firmware/defines.h", f"firmware/{ns}_thresholds.h", "tb_data/tb_input_features.dat",
                 "tb_data/tb_output_predictions.dat", "metadata.json", "hls4ml_config.yml"):  # fmt: skip
        assert (project / name).is_file(), name
    assert len((project / "tb_data" / "tb_input_features.dat").read_text().splitlines()) == 32
    assert f"namespace {ns} {{" in (project / "firmware" / f"{meta['project_name']}.cpp").read_text()
    assert 'set part "xcvu13p-flga2577-2-e"' in (project / "project.tcl").read_text()
    assert (
        meta["model_sha256"]
        == __import__("hashlib").sha256((fm.model_dir() / "model.keras").read_bytes()).hexdigest()
    )
    assert meta["data_sha256"] == "ab" * 32
    assert meta["weights_sha256"] == weights_sha256(fm.keras_model())
    assert meta["input"]["cpp"].startswith("ap_fixed<13,6") and meta["output"]["size"] == 1
    assert set(meta["versions"]) == {"hls4ml", "hgq2", "da4ml", "keras"}
    assert [t["rate_khz"] for t in meta["thresholds"]] == [5000.0, 500.0, 50.0, 5.0]
    # no absolute build paths in generated files (metadata.json records the target's own paths)
    generated = [
        p for p in project.rglob("*") if p.is_file() and p.name != "metadata.json" and "csim" not in p.parts
    ]
    assert str(fm.root()) not in "".join(p.read_text(errors="replace") for p in generated)


@pytest.mark.slow
@pytest.mark.parametrize(("strategy", "kind"), [("Latency", "ae"), ("distributed_arithmetic", "tiny")])
def test_same_model_same_target_gives_identical_bytes(tmp_path: Path, strategy: str, kind: str) -> None:
    # two fresh builds (the cached fixture project gains emulation/report outputs from other tests)
    first, second = (
        build_project(fm.target(strategy, kind), tmp_path / d, model=fm.keras_model(kind)).project_dir
        for d in ("once", "again")
    )
    a, b = _files(first), _files(second)
    assert sorted(a) == sorted(b)
    assert [k for k in a if a[k] != b[k]] == []
    if strategy == "distributed_arithmetic":
        assert any(k.startswith("rtl/src/") and k.endswith(".v") for k in a)


def test_weights_sha256_identifies_the_model_not_the_file(tmp_path: Path) -> None:
    import keras

    model = fm.keras_model("tiny")
    model.save(tmp_path / "again.keras")  # a new zip (timestamps), the same model
    again = keras.models.load_model(tmp_path / "again.keras", compile=False)
    assert weights_sha256(again) == weights_sha256(model)
    other = fm.keras_model("tiny", seed=2)
    assert weights_sha256(other) != weights_sha256(model)


def test_model_loading_is_chosen_by_framework(tmp_path: Path) -> None:
    model, note = firmware_model(fm.model_dir("tiny"))  # framework hgq2: the model file itself
    assert note is None and weights_sha256(model) == weights_sha256(fm.keras_model("tiny"))
    for framework, error in (("torch", "has no hls4ml firmware"), ("keras", "unknown model 'fw_test_tiny'")):
        d = tmp_path / framework
        shutil.copytree(fm.model_dir("tiny"), d)
        meta = json.loads((d / "meta.json").read_text())
        (d / "meta.json").write_text(json.dumps({**meta, "framework": framework}))
        # keras: l1ad.models decides (an architecture it does not know is an error, never a fallback)
        with pytest.raises(ValueError, match=error):
            firmware_model(d)


def test_precision_fixed_point_keeps_every_mode() -> None:
    from hls4ml.model.types import FixedPrecisionType, IntegerPrecisionType, RoundingMode, SaturationMode

    from l1ad.core.fixed_point import FixedPoint

    p = FixedPrecisionType(13, 6, True, RoundingMode.RND_CONV, SaturationMode.SAT_SYM, 0)
    assert precision_fixed_point(p) == FixedPoint(1, 5, 7, "SAT_SYM", "RND_CONV")
    assert precision_fixed_point(FixedPrecisionType(8, 3, False)) == FixedPoint(0, 3, 5)
    assert precision_fixed_point(IntegerPrecisionType(4, False)) == FixedPoint(0, 4, 0, "WRAP", "TRN_ZERO")
    with pytest.raises(ValueError, match="saturation bits"):
        precision_fixed_point(FixedPrecisionType(8, 3, True, RoundingMode.TRN, SaturationMode.SAT, 2))


# --------------------------------------------------------------------------- reports
def test_csd_digits() -> None:
    assert [csd_digits(n) for n in (0, 1, 2, 3, 7, 15, 5, -7, 85)] == [0, 1, 1, 2, 2, 2, 2, 2, 4]


def test_budget_checks_pure() -> None:
    row = {"ii_ns": 4.0, "latency_ns": 60.0, "resources": {"LUT": 30000, "DSP": 2}}
    budgets = {"ii_ns": 25.0, "latency_ns": 50.0, "resource_fraction": 0.02, "require_zero_dsp": True}
    checks = {c["budget"]: c["pass"] for c in budget_checks(row, budgets, {"LUT": 1_728_000})}
    assert checks == {"II": True, "latency": False, "LUT fraction": True, "DSP": False}


@pytest.mark.slow
def test_model_estimate_is_labelled(tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(fm.project("Latency"), project, ignore=shutil.ignore_patterns("csim"))
    report = make_report(project)
    assert report["primary"] == "model estimate"
    row = report["sources"][0]
    assert "ESTIMATE" in row["label"] and row["latency_cycles"] >= 1 and row["resources"]["LUT"] > 0
    md = render_markdown(report)
    assert "ESTIMATE" in md and "II" in md and ("PASS" in md or "FAIL" in md)
    js, mdp = write_report(project, report)
    assert json.loads(js.read_text())["primary"] == "model estimate" and mdp.is_file()
    meta = read_metadata(project)
    slow, fast = estimate(meta["estimate_layers"], 25.0), estimate(meta["estimate_layers"], 2.5)
    assert slow["critical_path_ns"] == fast["critical_path_ns"] > 0
    from l1ad.reports.estimate import CLOCK_UNCERTAINTY

    stage = 25.0 * (1 - CLOCK_UNCERTAINTY)  # HLS stages at the clock less its uncertainty; none when it fits
    assert (
        slow["latency_cycles"] == max(0, -(-slow["critical_path_ns"] // stage) - 1) < fast["latency_cycles"]
    )
    assert slow["latency_ns"] == slow["latency_cycles"] * 25.0
    assert estimate([], 4.0)["latency_cycles"] == 0  # no logic: combinational, latency 0


@pytest.mark.slow
def test_estimate_rows_of_a_real_project_cost_the_squarers_and_the_accumulators() -> None:
    """On a project hls4ml 1.3 really converted: the score's QMultiply arrives as class ``Merge`` with
    op ``multiply`` and is costed as multipliers; each Dense row's accumulator width is the width of the
    ``<layer>_accum_t`` type hls4ml wrote into the project's defines.h (not the output width)."""
    import re

    project = fm.project("Latency")
    rows = {r["name"]: r for r in read_metadata(project)["estimate_layers"]}
    assert (rows["sq"]["class"], rows["sq"].get("op")) == ("Merge", "multiply")
    assert (rows["diff"]["class"], rows["diff"].get("op")) == ("Merge", "subtract")
    per_layer = {r["name"]: r for r in estimate(list(rows.values()), 5.0)["layers"]}
    assert per_layer["sq"]["multipliers"] == rows["sq"]["n_out"] > 0
    assert per_layer["diff"]["multipliers"] == 0
    defines = (project / "firmware" / "defines.h").read_text()
    accum = {
        m[2]: int(m[1])
        for m in re.finditer(r"typedef ap_u?fixed<(\d+),\s*-?\d+[^>]*> (\w+)_accum_t;", defines)
    }
    dense = {n: r for n, r in rows.items() if "weights" in r}
    assert dense and set(dense) == set(accum)
    for name, r in dense.items():
        assert r["weights"]["accum_width"] == accum[name], name
    assert any(accum[n] != r["out_width"] for n, r in dense.items())  # the case the old estimate got wrong


def _claim_reports(project: Path, top: str, part: str) -> None:
    """Make the project's metadata name the reports' top function and part, the reports newer than it."""
    import os

    meta = json.loads((project / "metadata.json").read_text())
    meta.update(project_name=top, part=part)
    (project / "metadata.json").write_text(json.dumps(meta))
    later = (project / "metadata.json").stat().st_mtime + 1
    for f in [*project.rglob("*.rpt"), *project.rglob("*.xml"), *project.rglob("*.app")]:
        os.utime(f, (later, later))


@pytest.mark.slow
def test_report_on_vendor_reports(tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(fm.project("Latency"), project, ignore=shutil.ignore_patterns("csim"))
    report_dir = project / "myproject_prj" / "solution1" / "syn" / "report"
    report_dir.mkdir(parents=True)
    for name in ("myproject_csynth.xml", "myproject_csynth.rpt"):
        shutil.copyfile(VENDOR / "vivado_hls_2020.1" / name, report_dir / name)
    shutil.copyfile(
        VENDOR / "vivado_hls_2020.1" / "vivado_hls.app", project / "myproject_prj" / "vivado_hls.app"
    )
    shutil.copyfile(VENDOR / "vivado_hls_2020.1" / "vivado_synth.rpt", project / "vivado_synth.rpt")
    # the fixture reports are of another design (top myproject on a Zynq 7020): refused, and said why
    report = make_report(project)
    assert [r["source"] for r in report["sources"]] == ["model estimate"]
    assert "top function 'myproject'" in report["vendor_refused"]
    assert "part xc7z020-clg400-1" in report["vendor_refused"]
    assert "Vendor reports found but not used" in render_markdown(report)
    # declared the project's own (and newer than its build): used
    _claim_reports(project, "myproject", "xc7z020-clg400-1")
    report = make_report(project)
    assert report["vendor_refused"] is None
    assert (
        "Vivado synthesis / HLS C-synthesis estimate (vendor: Vivado HLS 2020.1): LUT 0."
        in render_markdown(report)
    )
    assert [r["source"] for r in report["sources"]] == ["vendor", "model estimate"]
    vendor = report["sources"][0]
    assert vendor["label"].startswith("vendor: Vivado HLS")
    assert vendor["resources_from"].startswith("Vivado synthesis")
    assert vendor["latency_ns"] == vendor["latency_cycles"] * vendor["clock_ns"]
    assert {c["budget"] for c in report["budgets"]} == {"II", "latency", "LUT fraction"}
    lut_pct = vendor["percent"]["LUT"]
    assert lut_pct == pytest.approx(100 * vendor["resources"]["LUT"] / report["available"]["LUT"])


@pytest.mark.slow
def test_report_on_vitis_layout(tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(fm.project("Latency"), project, ignore=shutil.ignore_patterns("csim"))
    shutil.copytree(VENDOR / "vitis_hls_2024.1", project / "Topo2A_AD_proj_prj")
    refused = make_report(project)["vendor_refused"]  # another design, and older than this build (copy2)
    assert "top function 'Topo2A_AD_proj'" in refused and "older than the project's build" in refused
    _claim_reports(project, "Topo2A_AD_proj", "xcvu9p-flga2104-2-e")
    vendor = make_report(project)["sources"][0]
    assert (vendor["source"], vendor["latency_cycles"], vendor["ii_cycles"]) == ("vendor", 0, 1)
    assert vendor["resources"] == {"LUT": 44405, "FF": 838, "DSP": 42, "BRAM_18K": 0}


# --------------------------------------------------------------------------- CLI
def _cli(*argv: str) -> int:
    from l1ad.cli import firmware

    parser = argparse.ArgumentParser()
    firmware.add_args(parser.add_subparsers(dest="command"))
    return firmware.main(parser.parse_args(["firmware", *argv]))


@pytest.mark.slow
@pytest.mark.allow_error_logs
def test_cli_build_emulate_report(tmp_path: Path, capsys, caplog) -> None:
    target = fm.target("Latency", "tiny", name="cli_tiny")
    path = target.save(tmp_path)
    assert _cli("build", str(path)) == 0
    project = tmp_path / "cli_tiny"
    assert (project / "metadata.json").is_file()
    scores = tmp_path / "scores"  # written at exactly this path, in .npy format
    assert _cli("emulate", str(path), "--out", str(scores), "--no-progress") == 0
    assert not (tmp_path / "scores.npy").exists()
    assert json.loads((project / "emulation.json").read_text())["ok"] is True
    out = capsys.readouterr().out
    assert "0 score mismatches" in out and "BIT-EXACT" in out
    assert __import__("numpy").load(scores).shape == (3000, 1)
    rc = _cli("report", str(path), "--json")
    rep = json.loads(capsys.readouterr().out)
    assert rc == (0 if rep["pass"] else 1) and rep == json.loads((project / "report.json").read_text())
    assert "ESTIMATE" in (project / "report.md").read_text()
    # a budget that fails: exit 1, and the log names the budget
    meta = json.loads((project / "metadata.json").read_text())
    meta["budgets"]["latency_ns"] = 0.01
    (project / "metadata.json").write_text(json.dumps(meta))
    assert _cli("report", str(path)) == 1
    assert "budget latency FAILS" in caplog.text
    caplog.clear()
    # an empty events file: no comparison, so not a success
    empty = tmp_path / "empty.npy"
    __import__("numpy").save(empty, __import__("numpy").zeros((0, 57), dtype="float32"))
    assert _cli("emulate", str(path), "--events", str(empty), "--no-progress") == 1
    assert "NO EVENTS" in capsys.readouterr().out
    # the model changed since the build: stale project, exit 2 before any simulation
    other = fm.model_dir("tiny", seed=2)
    path.write_text(path.read_text().replace(str(fm.model_dir("tiny")), str(other)))
    assert _cli("emulate", str(path), "--no-progress", "--limit", "500") == 2
    err = capsys.readouterr().err
    assert f"project is stale (model changed since build): rebuild with `l1ad firmware build {path}`" in err
    # a project whose firmware does not compute its model: non-zero exit, first differing layer named
    meta = json.loads((project / "metadata.json").read_text())
    meta["model_sha256"] = __import__("hashlib").sha256((other / "model.keras").read_bytes()).hexdigest()
    (project / "metadata.json").write_text(json.dumps(meta))
    assert _cli("emulate", str(path), "--no-progress", "--limit", "500") == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "first layer that differs: proj" in out
    assert json.loads((project / "emulation.json").read_text())["ok"] is False


def test_score_type_is_exact_and_enforced_at_build() -> None:
    from l1ad.hls.build import check_output_type
    from l1ad.quantization.score_path import SCORE_SQ_TYPE, SCORE_TYPE, score_sum_type

    # 19 pT errors of at most 2^8 - 2^-10 each sum below 2^13: ufixed<23,13>, exactly what hls4ml infers
    assert score_sum_type(19).hls() == "ap_ufixed<23,13>"
    assert (
        19 * SCORE_SQ_TYPE.max < score_sum_type(19).max
        and 16 * SCORE_SQ_TYPE.max > score_sum_type(15).max / 2
    )
    assert SCORE_TYPE == score_sum_type(57)

    def io(cpp: str) -> dict:
        from l1ad.core.fixed_point import FixedPoint

        return {"output": {"cpp": cpp, "fixed_point": FixedPoint.parse(cpp).to_dict()}}

    meta = {"model": "ae_compact", "quantization": "hgq", "output_type": score_sum_type(19).hls()}
    check_output_type(meta, io("ap_ufixed<23,13>"))
    check_output_type(meta, io("ap_ufixed<25,14>"))  # wider holds it
    with pytest.raises(ValueError, match="cannot hold the declared output type"):
        check_output_type(meta, io("ap_ufixed<22,12>"))
    check_output_type({"model": "x"}, io("ap_ufixed<4,2>"))  # nothing declared: nothing to check
