"""Bit-exact C-simulation of generated projects vs the QAT Keras model (Latency and DA strategies).

Both projects of the test model are compiled into ONE emulator library (each project lives in its
own C++ namespace), then compared with Keras on encoded events and on inputs pushed outside the
input range (saturation), including the trigger decisions from the header integers.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

from l1ad.core.fixed_point import FixedPoint
from l1ad.emulation.compare import (
    EmulationResult,
    LayerDiff,
    compare_layers,
    count_mismatches,
    emulate,
    first_bad,
    match_layers,
    score_ints,
    threshold_arrays,
)
from l1ad.emulation.csim import CSim
from l1ad.hls.convert import keras_predict
from l1ad.hls.metadata import read_metadata
from l1ad.hls.thresholds import fires

fm = runpy.run_path(str(Path(__file__).parent / "fixtures" / "firmware_models.py"))["load"]()

STRATEGIES = ("Latency", "distributed_arithmetic")


@pytest.fixture(scope="module")
def csim() -> CSim:
    projects = [fm.project(s) for s in STRATEGIES]
    return CSim(projects, build_dir=fm.root() / "csim_both")


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return fm.inputs(3000, seed=3, n_overflow=200)


def test_inputs_include_overflow(x: np.ndarray) -> None:
    assert np.abs(x).max() > fm.RANGE  # outside fixed<13,6>: the input type saturates


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_csim_bit_exact(csim: CSim, x: np.ndarray, strategy: str) -> None:
    project = STRATEGIES.index(strategy)
    y_fw = csim.predict(x, project)
    y_k = keras_predict(fm.keras_model(), x)
    np.testing.assert_array_equal(y_fw, y_k)
    assert len(np.unique(y_fw)) > 100  # a real comparison, not constant outputs
    # the overflow rows saturate to the same scores in both
    np.testing.assert_array_equal(csim.predict(x[:200], project), y_k[:200])


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_emulate_counts_and_trigger_decisions(
    csim: CSim, x: np.ndarray, strategy: str, tmp_path: Path
) -> None:
    project = STRATEGIES.index(strategy)
    result = emulate(csim, fm.keras_model(), x, project=project, chunk=1000, progress=False)
    assert (result.n_events, result.n_mismatch, result.ok) == (len(x), 0, True)
    assert set(result.decision_mismatch) == {"5kHz", "50kHz", "500kHz", "5000kHz"}
    assert all(v == 0 for v in result.decision_mismatch.values())
    assert result.fire_counts["5000kHz"] > result.fire_counts["5kHz"]
    # the project's own generated C++ `fires()` on the C-sim scores decides like Python on the Keras scores
    meta = read_metadata(fm.project(strategy))
    values, _ = threshold_arrays(meta["thresholds"])
    cpp = _project_fires(fm.project(strategy), meta, csim.predict(x, project)[:, 0], tmp_path)
    python = fires(keras_predict(fm.keras_model(), x)[:, 0], values)
    assert python.any() and not python.all()
    np.testing.assert_array_equal(cpp, python)


def _project_fires(project: Path, meta: dict, scores: np.ndarray, tmp: Path) -> np.ndarray:
    """Compile a program against ``<project>/firmware/<ns>_thresholds.h`` (and the project's ap_types)
    that reads raw score integers and prints ``fires(score, i)`` for every threshold."""
    import subprocess

    ns = meta["namespace"]
    score_type = FixedPoint.from_dict(meta["output"]["fixed_point"])
    w = score_type.width
    (tmp / "raw.txt").write_text("\n".join(str(int(v)) for v in score_ints(scores, score_type)) + "\n")
    (tmp / "fires.cpp").write_text(
        f'#include <cstdio>\n#include "{ns}_thresholds.h"\nint main(){{\n  long long r;\n'
        '  while (std::scanf("%lld", &r) == 1) {\n'
        f"    {ns}::trigger_score_t s; s.range({w - 1}, 0) = ap_int<{w + 1}>(r);\n"
        f'    for (unsigned i = 0; i < {ns}::N_THRESHOLDS; i++) std::printf("%d", {ns}::fires(s, i));\n'
        '    std::printf("\\n");\n  }\n}\n'
    )
    fw = project / "firmware"
    exe = tmp / "fires"
    subprocess.run(["g++", "-std=c++17", "-w", "-I", str(fw), "-I", str(fw / "ap_types"), str(tmp / "fires.cpp"),
                    "-o", str(exe)], check=True)  # fmt: skip
    with open(tmp / "raw.txt") as fh:
        out = subprocess.run([str(exe)], stdin=fh, capture_output=True, text=True, check=True).stdout.split()
    assert len(out) == len(scores)
    return np.array([[c == "1" for c in line] for line in out])


@pytest.mark.slow
@pytest.mark.allow_error_logs
def test_mismatch_names_first_differing_layer(csim: CSim, x: np.ndarray, tmp_path: Path) -> None:
    import hgq  # noqa: F401
    import keras

    broken = keras.models.load_model(fm.model_dir() / "model.keras", compile=False)
    layer = broken.get_layer("latent")
    layer.kernel.assign(layer.kernel + 0.75)
    out = tmp_path / "scores.bin"  # written at exactly this path (no .npy appended), in .npy format
    result = emulate(csim, broken, x[:500], project=0, progress=False, scores_out=out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.bin"]
    assert result.n_mismatch > 0 and not result.ok
    assert result.first_bad_layer.startswith("latent")
    assert [d.n_mismatch for d in result.layers if d.keras_layer == "enc1"] == [0]
    np.testing.assert_array_equal(np.load(out), csim.predict(x[:500], 0))


@pytest.mark.slow
def test_trace_matches_keras_layer_by_layer(csim: CSim, x: np.ndarray) -> None:
    from l1ad.emulation.compare import trace_first_difference

    diffs = trace_first_difference(fm.keras_model(), csim, x[:300], project=0)
    names = [d.keras_layer for d in diffs]
    assert {"enc1", "latent", "dec1", "recon", "diff", "sq", "score"} <= set(names)
    assert all(d.n_mismatch == 0 for d in diffs)


def test_match_layers_and_first_bad() -> None:
    pairs = match_layers(
        ["enc1", "enc1_b", "sq"], ["enc1_iq", "enc1", "enc1_relu", "enc1_b", "quantizer", "sq"]
    )
    assert pairs == [("enc1", "enc1_relu"), ("enc1_b", "enc1_b"), ("sq", "sq")]
    k = {"a": np.zeros((2, 3)), "b": np.ones((2, 2))}
    h = {"a": np.zeros((2, 3)), "b": np.array([[1.0, 1.0], [1.0, 0.0]])}
    diffs = compare_layers(k, h, ["a", "b"])
    assert diffs == [LayerDiff("a", "a", 6, 0), LayerDiff("b", "b", 4, 1)]
    assert first_bad(diffs).startswith("b (hls4ml b: 1/4")


@pytest.mark.slow
def test_zero_events_is_not_ok(csim: CSim, x: np.ndarray, tmp_path: Path) -> None:
    out = tmp_path / "scores.npy"
    result = emulate(csim, fm.keras_model(), x[:0], project=0, progress=False, scores_out=out)
    assert (result.n_events, result.n_mismatch, result.ok) == (0, 0, False)
    assert "NO EVENTS" in result.summary() and "BIT-EXACT" not in result.summary()
    assert np.load(out).shape == (0, 1)


def test_ok_needs_events_and_equal_decisions() -> None:
    assert not EmulationResult("t", 0, 0).ok and not EmulationResult("t", 0, 0).to_dict()["ok"]
    assert EmulationResult("t", 10, 0, {"5kHz": 0}).ok
    assert not EmulationResult("t", 10, 0, {"5kHz": 1}).ok and not EmulationResult("t", 10, 1).ok
    assert count_mismatches(np.array([[1.0], [2.0]]), np.array([1.0, 2.5])) == 1


def test_compare_layers_accepts_the_firmware_type_conversion() -> None:
    # hls4ml writes layer b in ap_fixed<4,2,AP_RND_CONV,AP_SAT_SYM>: Keras values converted to it agree
    k = {"b": np.array([[0.375, 0.125, 5.0, -5.0]])}
    h = {"b": np.array([[0.5, 0.0, 1.75, -1.75]])}  # half-even ties, symmetric saturation
    types = {"b": "ap_fixed<4,2,AP_RND_CONV,AP_SAT_SYM,0>"}
    assert compare_layers(k, h, ["b"], types) == [LayerDiff("b", "b", 4, 0)]
    assert compare_layers(k, {"b": np.array([[0.25, 0.0, 1.75, -2.0]])}, ["b"], types)[0].n_mismatch == 2
    with pytest.raises(ValueError, match="not an ap_fixed"):
        compare_layers(k, h, ["b"], {"b": "float"})
