"""The ESTIMATE against vendor numbers: hls4ml's own C-synthesis baselines (tests/fixtures/hls4ml_baselines,
source in its README) of the architectures of its test_keras_api tests, costed from the layer features of the
same architectures rebuilt with seeded weights (layer_features.json, by scripts/calibrate_estimate.py).

The committed calibration (reports/estimate_calibration.json) must be what the fixtures and today's estimate
give; on the reference tool version the estimate holds LUT within +-30 % and cycles and BRAM exactly, and DSP
inside the vendor's own spread for the architecture (the stated exception); anything left out of a band is
named with its reason. The budget report prints the band next to every ESTIMATE figure."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from l1ad.reports import budget, calibration
from l1ad.reports.estimate import estimate

FIXTURES = Path(__file__).parent / "fixtures" / "hls4ml_baselines"
FEATURES = json.loads((FIXTURES / "layer_features.json").read_text())
CAL = calibration.load_calibration()
LUT_LIMIT = 0.30


def _script():
    path = Path(__file__).resolve().parents[1] / "scripts" / "calibrate_estimate.py"
    spec = importlib.util.spec_from_file_location("calibrate_estimate", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table() -> dict:
    return calibration.calibration_table(
        FEATURES["features"], calibration.load_baselines(FIXTURES), CAL["excluded"]
    )


def test_the_committed_calibration_is_what_the_fixtures_and_the_estimate_give() -> None:
    # a hand-edited band, or an estimate.py change without rerunning the script, fails here
    table = _table()
    for key in ("rows", "bands", "bands_all", "vendor_dsp_spread", "reference", "excluded"):
        assert table[key] == CAL[key], key
    assert CAL["features"]["seeds"] == FEATURES["seeds"] and len(FEATURES["seeds"]) >= 5


def test_the_fixtures_are_the_hls4ml_baselines_they_name() -> None:
    readme = (FIXTURES / "README.md").read_text()
    files = sorted(p.relative_to(FIXTURES).as_posix() for p in FIXTURES.glob("*_*/*.json"))
    assert len(files) == 19 and all(f in readme for f in files)
    relu = calibration.parse_baseline(
        (
            FIXTURES / "Vitis_2024.1" / "test_keras_api_test_activations_io_parallel-Vitis-relu.json"
        ).read_text()
    )
    assert relu == {"LUT": 2983, "FF": 18, "DSP": 58, "BRAM_18K": 0, "cycles": 0, "clock_ns": 5.0}
    assert calibration.baseline_model("test_keras_api_test_dense_io_parallel-Vivado.json") == "dense_elu"


def test_on_the_reference_lut_is_within_30_percent_cycles_and_bram_exact() -> None:
    table = _table()
    rows = [r for r in table["rows"] if r["tool"] == calibration.REFERENCE]
    assert {r["model"] for r in rows} == set(FEATURES["features"])  # every architecture, once
    for r in rows:
        assert r["estimate"]["cycles"] == r["vendor"]["cycles"], r["model"]
        assert r["estimate"]["BRAM_18K"] == r["vendor"]["BRAM_18K"], r["model"]
        if "LUT" not in table["excluded"].get(r["model"], {}):
            assert abs(r["error"]["LUT"]) <= LUT_LIMIT, (r["model"], r["error"]["LUT"])
    b = table["bands"][calibration.REFERENCE]
    assert -LUT_LIMIT <= b["LUT"]["lo"] <= b["LUT"]["hi"] <= LUT_LIMIT
    assert b["cycles"]["exact"] and b["BRAM_18K"]["exact"]


def test_dsp_is_inside_the_vendor_spread_and_its_exception_is_stated() -> None:
    table = _table()
    for r in table["rows"]:
        lo, hi = table["vendor_dsp_spread"][r["model"]]
        assert lo <= r["estimate"]["DSP"] <= hi, r
    if not table["bands"][calibration.REFERENCE]["DSP"]["exact"]:
        assert "not exact" in CAL["exceptions"]["DSP"]
    assert "cycles" in CAL["exceptions"] and "scope" in CAL["exceptions"]


def test_nothing_leaves_a_band_silently() -> None:
    # the only exclusion: the slope-1 leaky relu's LUTs (its activation folds away), with its reason
    assert {m: set(v) for m, v in CAL["excluded"].items()} == {"dense64_leaky_relu": {"LUT"}}
    assert all(len(reason) > 40 for v in CAL["excluded"].values() for reason in v.values())
    band = CAL["bands"][calibration.REFERENCE]
    assert band["LUT"]["excluded"] == ["dense64_leaky_relu"] and band["DSP"]["excluded"] == []
    full = CAL["bands_all"][calibration.REFERENCE]["LUT"]
    assert full["n"] == band["LUT"]["n"] + 1 and full["lo"] < -LUT_LIMIT  # shown, not hidden


def test_format_band_gives_the_vendor_range_the_band_implies() -> None:
    band = {"LUT": {"lo": -0.2, "hi": 0.25, "abs_lo": 0, "abs_hi": 0, "n": 6}, "cycles": "exact",
            "DSP": {"lo": 0.0, "hi": 0.05, "abs_lo": -1, "abs_hi": 2, "n": 6}, "reference": "Vitis 2024.1"}  # fmt: skip
    assert calibration.format_band("LUT", 1000, band) == (
        "1,000 LUT (ESTIMATE, calibrated band -20%/+25% on 6 hls4ml baselines (Vitis 2024.1): vendor 800–1,250)"
    )
    assert (
        calibration.format_band("cycles", 4, band)
        == "4 cycles (ESTIMATE, exact on 6 hls4ml baselines (Vitis 2024.1))"
    )
    assert calibration.compact_band("DSP", band["DSP"]) == "[+0%/+5%]"
    assert calibration.estimate_band()["reference"] == calibration.REFERENCE


def _report(layers: list[dict]) -> dict:
    meta = {"target": "t", "part": "xcvu13p-flga2577-2-e", "clock_period_ns": 5.0, "strategy": "Latency",
            "model_sha256": "0" * 64, "budgets": {"ii_ns": 25, "latency_ns": 50, "resource_fraction": 0.5}}  # fmt: skip
    row = calibration.attach_band(estimate(layers, 5.0))
    return budget.assemble(meta, [row], {"LUT": 1728000, "FF": 3456000, "DSP": 12288, "BRAM_18K": 5376})


def test_the_budget_report_prints_the_band_next_to_every_estimate_figure() -> None:
    report = _report(FEATURES["features"]["dense64_relu"][0])
    row = report["sources"][0]
    md = budget.render_markdown(report)
    band = calibration.estimate_band()
    table_row = next(line for line in md.splitlines() if line.startswith("| ESTIMATE"))
    for key in ("LUT", "FF", "DSP", "BRAM_18K", "cycles"):
        assert calibration.compact_band(key, band[key]) in table_row, key
        assert row["band_text"][key] in md
    assert f"{row['resources']['LUT']:,} LUT (ESTIMATE, calibrated band" in md
    assert "Band not applicable" not in md and "Band scope" in md
    assert json.loads(json.dumps(report, default=str))["sources"][0]["band"]["LUT"] == band["LUT"]


def test_an_estimate_from_old_metadata_says_the_band_does_not_apply() -> None:
    rows = [dict(r) for r in FEATURES["features"]["dense64_relu"][0]]
    rows[1] = {**rows[1], "weights": {k: v for k, v in rows[1]["weights"].items() if k != "mult_widths"}}
    md = budget.render_markdown(_report(rows))
    assert "Band not applicable: uncalibrated fallback for 1 row(s) (Dense: weights.mult_widths)" in md


@pytest.mark.slow
def test_reconverting_the_architectures_gives_the_committed_features(tmp_path: Path) -> None:
    """hls4ml conversion + layer_features of seed 0 of every architecture equal the committed fixture (an
    hls4ml or layer_features change that moves the calibration inputs fails here: rerun the script)."""
    script = _script()
    for model in script.MODELS:
        assert script.convert(model, 0, tmp_path) == FEATURES["features"][model][0], model
