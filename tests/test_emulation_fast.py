"""The fast bit-exact emulator (l1ad.emulation.fast) against da4ml's interpreter, hls4ml's C-sim and Keras.

Fast tests: the generated adder-graph C++ on a synthetic da4ml graph whose narrow WRAP and SAT
quantizers overflow on purpose (every opcode the generator emits), and the generated input/output
conversions against :meth:`FixedPoint.to_int` for every rounding and overflow mode. Slow tests:
the tiny DA and Latency projects of tests/fixtures/firmware_models.py, on both CPU levels, against
the C-sim and the QAT model on inputs that saturate the input type, and ``emulate`` wiring.
"""

from __future__ import annotations

import ctypes
import json
import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest

from l1ad.core.fixed_point import OVERFLOW_MODES, ROUNDING_MODES, FixedPoint
from l1ad.emulation import fast
from l1ad.emulation.compile import CXX, build_shared

fm = runpy.run_path(str(Path(__file__).parent / "fixtures" / "firmware_models.py"))["load"]()

pytestmark = pytest.mark.skipif(shutil.which(CXX) is None, reason=f"{CXX} not installed")
LEVELS = sorted({"baseline", fast.cpu_level()})


def _lib(source: str, tmp: Path, level: str = "baseline") -> ctypes.CDLL:
    flags = (*fast.COMB_FLAGS, "-march=x86-64-v3") if level == "x86-64-v3" else fast.COMB_FLAGS
    return ctypes.CDLL(str(build_shared({"t.cpp": source}, [], flags, tmp, [])))


def _run(lib: ctypes.CDLL, x: np.ndarray, n_out: int, n_threads: int = 2) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.full((len(x), n_out), np.nan)
    lib.l1ad_fast_run.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, ctypes.c_int]
    lib.l1ad_fast_run(x.ctypes.data, y.ctypes.data, len(x), n_threads)
    return y


# --------------------------------------------------------------------------- synthetic graph
def synthetic_comb(seed: int = 0):
    """A da4ml graph of 8 inputs (fixed<8,5>): constant matmul, narrow WRAP/SAT quantizers, relu, products."""
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    rng = np.random.default_rng(seed)
    inp = FixedVariableArrayInput((8,))
    x = inp.quantize(1, 4, 3)
    h = x @ (rng.integers(-8, 8, (8, 6)) * 2.0 ** rng.integers(-3, 2, (8, 6))) + rng.integers(-5, 5, 6) * 0.25
    hw = h.quantize(1, 3, 2, overflow_mode="WRAP")  # wraps on purpose
    hs = h.quantize(1, 4, 1, overflow_mode="SAT")  # saturates: MSB muxes of constants
    r = h.relu(i=2, f=1)  # relu, then its own wrap
    n = (-hs).quantize(1, 2, 0, overflow_mode="WRAP")
    outs = np.concatenate([np.ravel(v._vars) for v in (hw, hs, r, hw * hs, n)])
    return comb_trace(inp, outs)


def synthetic_meta(comb) -> dict:
    k, i, f = (int(v) for v in comb.out_kifs.T.max(0))
    out = FixedPoint(1, i + 1, f)
    return {
        "target": "synthetic",
        "input": {"cpp": "ap_fixed<8,5>"},
        "output": {"fixed_point": out.to_dict()},
    }


def synthetic_inputs(n: int, seed: int = 1) -> np.ndarray:
    """On the fixed<8,5> grid, a third of them outside [-16, 16) (the input type wraps them)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (n, 8)) / 8.0
    x[: n // 3] *= rng.choice([3.0, -5.0, 17.0], (n // 3, 1))
    return x


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("lane_bits", [32, 64])
def test_graph_cpp_equals_da4ml_interpreter(tmp_path: Path, level: str, lane_bits: int) -> None:
    comb = synthetic_comb()
    ops = {op.opcode for op in comb.ops}
    assert ops >= {-1, 0, 1, 2, 3, -3, 4, 5, 6, 7}, ops  # the test exercises every op kind
    assert fast.unsupported(comb) is None and fast.comb_bits_needed(comb) <= 31
    meta = synthetic_meta(comb)
    src = fast.comb_source(comb, meta, lane_bits, 32 if level == "x86-64-v3" else 16)
    x = synthetic_inputs(3001)  # not a multiple of the lanes: the tail block is padded
    y = _run(_lib(src, tmp_path, level), x, comb.shape[1])
    x_hw = FixedPoint.parse("ap_fixed<8,5>").quantize(x)
    ref = comb.predict(x_hw, n_threads=1)
    np.testing.assert_array_equal(y, ref)
    assert len(np.unique(y[:, :6])) > 20 and np.any(x != x_hw)  # real values, wrapped inputs


def test_unsupported_graphs_are_named() -> None:
    comb = synthetic_comb()
    lut = comb._replace(ops=[*comb.ops, comb.ops[-1]._replace(opcode=8)])
    assert "opcodes [8]" in fast.unsupported(lut)
    assert "lookup tables" in fast.unsupported(comb._replace(lookup_tables=("t",)))
    wide = comb._replace(
        ops=[*comb.ops, comb.ops[-1]._replace(qint=type(comb.ops[-1].qint)(-(2.0**70), 0.0, 1.0))]
    )
    assert "bit intermediates" in fast.unsupported(wide)


# --------------------------------------------------------------------------- type conversions
def test_c_conversions_equal_fixed_point_to_int(tmp_path: Path) -> None:
    types = [FixedPoint(k, i, f, o, r) for (k, i, f) in [(1, 3, 2), (0, 4, 1), (1, 6, -1)]
             for o in OVERFLOW_MODES for r in ROUNDING_MODES]  # fmt: skip
    fns = [fast._to_int_c(t, f"cv{j}") for j, t in enumerate(types)]
    calls = "\n".join(
        f"    if (which == {j}) for (long e = 0; e < n; e++) y[e] = cv{j}(x[e]);" for j in range(len(types))
    )
    src = (
        "#include <cmath>\n"
        + "\n".join(fns)
        + f"""
extern "C" void conv(int which, const double *x, double *y, long n) {{
{calls}
}}
"""
    )
    lib = ctypes.CDLL(str(build_shared({"c.cpp": src}, [], fast.COMB_FLAGS, tmp_path, [])))
    lib.conv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
    rng = np.random.default_rng(0)
    x = np.concatenate([np.arange(-80, 80) / 8.0, rng.normal(0, 30, 2000), [1e30, -1e30, 2.0**40 + 0.5]])
    x = np.concatenate([x, np.arange(-40, 40) / 4.0 + 1 / 8.0])  # exact halves for every rounding mode
    for j, t in enumerate(types):
        y = np.empty_like(x)
        lib.conv(j, x.ctypes.data, y.ctypes.data, len(x))
        np.testing.assert_array_equal(y, t.to_int(x).astype(np.float64), err_msg=t.hls())


# --------------------------------------------------------------------------- projects
@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return fm.inputs(5001, seed=21, n_overflow=400)


@pytest.mark.slow
@pytest.mark.parametrize("level", LEVELS)
def test_da_project_bit_exact_vs_csim_and_keras(x: np.ndarray, level: str, tmp_path: Path) -> None:
    from l1ad.emulation.csim import CSim
    from l1ad.hls.convert import keras_predict

    project = fm.project("distributed_arithmetic", "tiny")
    emu = fast.FastEmulator(project, build_dir=tmp_path, level=level)
    assert emu.name.startswith("da4ml-graph-c++") and level in emu.name
    y = emu.predict(x)
    y_cs = CSim(project).predict(x)
    np.testing.assert_array_equal(y, y_cs)
    np.testing.assert_array_equal(y, keras_predict(fm.keras_model("tiny"), x))
    assert len(np.unique(y)) > 100
    np.testing.assert_array_equal(
        emu.predict(x.astype(np.float64), n_threads=1), y
    )  # float64 entry, 1 thread
    for n in (0, 1, 7, 9):  # partial blocks
        np.testing.assert_array_equal(emu.predict(x[:n]), y_cs[:n])
    bad = x[:3].copy()
    bad[1, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        emu.predict(bad)


@pytest.mark.slow
def test_latency_project_hls_and_traced_graph_bit_exact(x: np.ndarray, tmp_path: Path) -> None:
    from l1ad.emulation.csim import CSim
    from l1ad.hls.convert import keras_predict

    project = fm.project("Latency", "tiny")
    y_cs = CSim(project).predict(x)
    hls = fast.FastEmulator(project, build_dir=tmp_path)
    assert hls.name == "hls4ml-c++ -O3"
    np.testing.assert_array_equal(hls.predict(x), y_cs)
    graph = fast.FastEmulator(project, build_dir=tmp_path, model=fm.keras_model("tiny"))
    assert graph.name.startswith("da4ml-graph-c++")
    np.testing.assert_array_equal(graph.predict(x), y_cs)
    np.testing.assert_array_equal(y_cs, keras_predict(fm.keras_model("tiny"), x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["graph", "hls"]  # neither evicts the other


class _OffByOne:
    """A fast emulator wrong by one score LSB on event ``bad`` of the stream (one call per chunk)."""

    def __init__(self, inner, lsb: float, bad: int) -> None:
        self.inner, self.lsb, self.bad, self.seen, self.name = inner, lsb, bad, 0, "off-by-one"

    def predict(self, x, n_threads=None):
        y = self.inner.predict(x, n_threads=n_threads)
        if 0 <= self.bad - self.seen < len(y):
            y[self.bad - self.seen] += self.lsb
        self.seen += len(y)
        return y


@pytest.mark.slow
@pytest.mark.allow_error_logs
def test_emulate_cross_checks_fast_with_csim(x: np.ndarray, tmp_path: Path) -> None:
    from l1ad.emulation.compare import emulate
    from l1ad.emulation.csim import CSim

    project = fm.project("distributed_arithmetic", "tiny")
    csim, model = CSim(project), fm.keras_model("tiny")
    emu = fast.FastEmulator(project, build_dir=tmp_path)
    r = emulate(csim, model, x, chunk=1000, progress=False, fast=emu, csim_sample=2500)
    assert (r.n_events, r.n_mismatch, r.ok, r.emulator) == (len(x), 0, True, emu.name)
    assert (r.csim_check["n_events"], r.csim_check["n_mismatch"]) == (2500, 0)
    assert "hls4ml C-sim cross-check: 2500 events, 0 mismatches" in r.summary()
    lsb = FixedPoint.from_dict(emu.meta["output"]["fixed_point"]).lsb
    r = emulate(csim, model, x, chunk=1000, progress=False, fast=_OffByOne(emu, lsb, 1203), csim_sample=2500)
    assert (r.n_mismatch, r.csim_check["n_mismatch"], r.ok) == (1, 1, False)
    assert r.csim_check["examples"][0]["event"] == 1203 and r.mismatch_examples[0]["event"] == 1203
    r = emulate(csim, model, x, chunk=1000, progress=False, fast=_OffByOne(emu, lsb, 4000), csim_sample=2500)
    assert (r.n_mismatch, r.csim_check["n_mismatch"], r.ok) == (
        1,
        0,
        False,
    )  # beyond the sample: Keras sees it


@pytest.mark.slow
def test_emulate_project_records_fast_path_and_sample(tmp_path: Path) -> None:
    from l1ad.emulation.run import EMULATION_FILE, emulate_project

    project = fm.project("distributed_arithmetic", "tiny")
    run = emulate_project(project, fm.model_dir("tiny"), fm.events_file(), "tiny_da", csim_sample=1000,
                          progress=False)  # fmt: skip
    record = json.loads((project / EMULATION_FILE).read_text())
    assert run.ok and record["ok"] is True and record["n_events"] == 3000 and record["n_mismatch"] == 0
    assert record["emulator"].startswith("da4ml-graph-c++")
    assert (record["csim_check"]["n_events"], record["csim_check"]["n_mismatch"]) == (1000, 0)
    assert record["events_per_second"] > 0 and record["csim_check"]["events_per_second"] > 0
