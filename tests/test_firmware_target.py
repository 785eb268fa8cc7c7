"""Firmware target YAML files: validation, defaults, save/load round trip, thresholds header."""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from l1ad.core.fixed_point import FixedPoint
from l1ad.hls.target import FirmwareTarget, default_namespace, find_target
from l1ad.hls.thresholds import (
    Threshold,
    find_rate_tables,
    fires,
    make_thresholds,
    read_rate_table,
    threshold_int,
    thresholds_header,
)

SCORE = FixedPoint(k=1, i=8, f=6)  # ap_fixed<15,9>
USCORE = FixedPoint(k=0, i=9, f=4, overflow="SAT")  # ap_ufixed<13,9,AP_TRN,AP_SAT>: scores >= 0


def test_defaults_and_round_trip(tmp_path: Path) -> None:
    t = FirmwareTarget(
        name="ae_compact", model="runs/default/ae_compact-hgq", thresholds_from="runs/x/evaluation.json"
    )
    assert (t.backend, t.strategy, t.io_type, t.reuse_factor) == ("Vitis", "Latency", "io_parallel", 1)
    assert (t.ii_budget_ns, t.latency_budget_ns) == (25.0, 50.0)
    assert t.namespace == "l1ad_ae_compact" and t.project_name == "l1ad_ae_compact_top"
    path = t.save(tmp_path)
    assert path == tmp_path / "ae_compact.yaml"
    assert FirmwareTarget.load(path) == t
    da = FirmwareTarget(name="da", model="/abs/model", strategy="distributed_arithmetic", backend="Vivado",
                        part="xc7vx690tffg1927-2", clock_period_ns=2.778, namespace="my_ns", require_zero_dsp=True)  # fmt: skip
    assert FirmwareTarget.load(da.save(tmp_path)) == da
    assert find_target(path) == path


def test_integers_in_yaml_become_floats(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text("model: m\nclock_period_ns: 25\nii_budget_ns: 25\n")
    t = FirmwareTarget.load(tmp_path / "t.yaml")
    assert t.clock_period_ns == 25.0 and isinstance(t.clock_period_ns, float)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("model: m\nclock: 5\n", "clock"),
        ("backend: Vitis\n", "model"),
        ("model: m\nbackend: Quartus\n", "backend"),
        ("model: m\nstrategy: Resource\n", "strategy"),
        ("model: m\nreuse_factor: 0\n", "reuse_factor"),
        ("model: m\nreuse_factor: 1.5\n", "reuse_factor"),
        ("model: m\nclock_period_ns: -1\n", "clock_period_ns"),
        ("model: m\nclock_period_ns: fast\n", "clock_period_ns"),
        ("model: m\nresource_budget_fraction: 2\n", "resource_budget_fraction"),
        ("model: m\nnamespace: 1bad\n", "namespace"),
        ("model: m\nnamespace: nnet\n", "namespace"),
        ("model: m\nio_type: io_stream\n", "io_type"),
        ("model: m\nrequire_zero_dsp: 1\n", "require_zero_dsp"),
        ("model: ''\n", "model"),
    ],
)
def test_invalid_targets_name_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=rf"bad\.yaml.*'{key}'"):
        FirmwareTarget.load(path)


def test_not_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="x.yaml"):
        FirmwareTarget.load(tmp_path / "x.yaml")


def test_default_namespace() -> None:
    assert default_namespace("ae-compact.v2") == "l1ad_ae_compact_v2"


def test_checked_in_targets_are_valid() -> None:
    for path in sorted((Path(__file__).parent.parent / "firmware_projects").glob("*.yaml")):
        assert FirmwareTarget.load(path).name == path.stem


# --------------------------------------------------------------------------- thresholds
@pytest.mark.parametrize("score_type", [SCORE, USCORE], ids=str)
def test_threshold_int_consistent_with_python_decision(score_type: FixedPoint) -> None:
    rng = np.random.default_rng(0)
    ints = np.arange(score_type.int_min, score_type.int_max + 1)
    scores = score_type.from_int(ints)  # every representable score
    values = np.concatenate(
        [rng.uniform(-300, 300, 200), scores[::97], scores[::97] - score_type.lsb / 3,
         [score_type.max, score_type.min, 1e9, -1e9, 1e300, -1e300, 0.0, -0.1, -score_type.lsb]]
    )  # fmt: skip
    for v in [*values, math.inf, -math.inf]:
        raw = threshold_int(float(v), score_type)
        assert score_type.int_min - 1 <= raw <= score_type.int_max
        # every threshold, in range or not: the firmware integers decide like Python on the floats
        np.testing.assert_array_equal(fires(ints, raw), fires(scores, v), err_msg=str(v))
    assert (
        threshold_int(1.0, SCORE) == 64
        and threshold_int(1.01, SCORE) == 64
        and threshold_int(0.99, SCORE) == 63
    )
    assert threshold_int(math.inf, SCORE) == SCORE.int_max
    assert threshold_int(-0.1, USCORE) == -1 and threshold_int(-1e300, USCORE) == -1
    with pytest.raises(ValueError):
        threshold_int(math.nan, SCORE)


def test_fires_is_strictly_greater() -> None:
    np.testing.assert_array_equal(fires(np.array([1.0, 2.0, 3.0]), 2.0)[:, 0], [False, False, True])


def test_rate_tables_found_by_model_name(tmp_path: Path) -> None:
    rows = [
        {"target_rate_khz": 10.0, "threshold": 3.3, "resolved": True},
        {"target_rate_khz": 1.0, "threshold": None, "resolved": False},
    ]
    doc = {"models": {"a": {"rates": rows}, "b": {"rates": [{"target_rate_khz": 5, "threshold": 1.0}]}}}
    assert set(find_rate_tables(doc)) == {"/models/a/rates", "/models/b/rates"}
    path = tmp_path / "evaluation.json"
    path.write_text(__import__("json").dumps(doc))
    assert read_rate_table(path, ("a",)) == rows
    with pytest.raises(ValueError, match="2 rate tables"):
        read_rate_table(path, ("zzz",))
    assert make_thresholds(rows, SCORE) == (Threshold(10.0, 3.3, 211),)


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
@pytest.mark.parametrize(
    ("score_type", "values"),
    [
        (SCORE, (12.34, -0.5, SCORE.min - 1.0, -1e300)),
        # unsigned score: a negative threshold fires on every score, the score 0 included
        (USCORE, (12.34, -0.1, 0.0, 1e9)),
    ],
    ids=str,
)
def test_thresholds_header_compiles_and_decides_like_python(
    tmp_path: Path, score_type: FixedPoint, values: tuple[float, ...]
) -> None:
    ap_types = Path(__import__("hls4ml").__file__).parent / "templates" / "vivado" / "ap_types"
    rates = (500.0, 50.0, 5.0, 0.5)
    ts = tuple(Threshold(r, v, threshold_int(v, score_type)) for r, v in zip(rates, values, strict=True))
    (tmp_path / "l1ad_t_thresholds.h").write_text(thresholds_header(ts, score_type, "l1ad_t"))
    w = score_type.width
    raws = np.arange(score_type.int_min, score_type.int_max + 1)  # every score, exhaustively
    (tmp_path / "main.cpp").write_text(
        '#include <cstdio>\n#include "l1ad_t_thresholds.h"\nint main(){\n'
        f"  for (long r = {raws[0]}; r <= {raws[-1]}; r++) {{\n"
        f"    l1ad_t::trigger_score_t s; s.range({w - 1}, 0) = ap_int<{w + 1}>(r);\n"
        '    for (unsigned i = 0; i < l1ad_t::N_THRESHOLDS; i++) std::printf("%d", l1ad_t::fires(s, i));\n'
        '    std::printf("\\n");\n'
        "  }\n}\n"
    )
    exe = tmp_path / "main"
    subprocess.run(
        ["g++", "-std=c++17", "-w", "-I", str(ap_types), str(tmp_path / "main.cpp"), "-o", str(exe)],
        check=True,
    )
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()
    cpp = np.array([[c == "1" for c in line] for line in out])
    python = fires(score_type.from_int(raws), np.array(values))
    assert python.any() and not python.all()
    np.testing.assert_array_equal(cpp, python)
    if score_type is USCORE:
        assert cpp[0, 1] and not cpp[0, 2]  # score 0 > -0.1 fires, score 0 > 0 does not


def test_resolve_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    t = FirmwareTarget(name="t", model="runs/default/ae_compact-hgq", thresholds_from="evaluation.json")
    assert t.resolve(t.model) == tmp_path / "runs/default/ae_compact-hgq"  # from the current directory
    assert t.resolve(t.model, tmp_path) == tmp_path / "ae_compact-hgq"
    assert t.resolve(t.thresholds_from, tmp_path) == tmp_path / "evaluation.json"
    assert t.resolve("/abs/x", tmp_path) == Path("/abs/x") and t.resolve(None) is None


def test_targets_found_and_projects_written_under_the_current_directory(tmp_path: Path, monkeypatch) -> None:
    """A target name finds ./firmware_projects/<name>.yaml first, then the package's; the project goes
    under the current directory, never into the package."""
    from l1ad.hls.target import PACKAGE_TARGETS_DIR, load_target, project_dir

    monkeypatch.chdir(tmp_path)
    target, path = load_target("ae_compact_vu13p")
    assert path == PACKAGE_TARGETS_DIR / "ae_compact_vu13p.yaml"
    assert project_dir(target, path) == tmp_path / "firmware_projects" / "ae_compact_vu13p"
    local = tmp_path / "firmware_projects" / "ae_compact_vu13p.yaml"
    local.parent.mkdir()
    local.write_text(path.read_text().replace("tb_events: 128", "tb_events: 7"))
    target, path = load_target("ae_compact_vu13p")
    assert path == local and target.tb_events == 7
    elsewhere = tmp_path / "mine" / "x.yaml"
    elsewhere.parent.mkdir()
    elsewhere.write_text(local.read_text())
    target, path = load_target(str(elsewhere))
    assert project_dir(target, path) == tmp_path / "mine" / "x"


def test_da4ml_option_keys(tmp_path: Path) -> None:
    t = FirmwareTarget(name="t", model="m")
    assert (t.latency_cutoff, t.da_delay_constraint) == (
        None,
        None,
    )  # da4ml defaults: no change to old targets
    (tmp_path / "da.yaml").write_text(
        "model: m\nstrategy: distributed_arithmetic\nlatency_cutoff: 8\nda_delay_constraint: 0\n"
    )
    da = FirmwareTarget.load(tmp_path / "da.yaml")
    assert da.latency_cutoff == 8.0 and isinstance(da.latency_cutoff, float) and da.da_delay_constraint == 0
    assert FirmwareTarget.load(da.save(tmp_path)) == da
    assert da.to_dict()["latency_cutoff"] == 8.0  # reaches metadata.json target_config (read by l1ad.hls.rtl)


@pytest.mark.parametrize(
    "text",
    [
        "latency_cutoff: 0\n",
        "latency_cutoff: 0.5\n",
        "latency_cutoff: -1\n",
        "latency_cutoff: .inf\n",
        "latency_cutoff: fast\n",
        "latency_cutoff: true\n",
        "da_delay_constraint: -1\n",
        "da_delay_constraint: 1.5\n",
        "da_delay_constraint: true\n",
        "da_delay_constraint: two\n",
    ],
)
def test_invalid_da4ml_options_name_the_key(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model: m\n" + text)
    key = text.split(":")[0]
    with pytest.raises(ValueError, match=rf"bad\.yaml.*'{key}'"):
        FirmwareTarget.load(path)
