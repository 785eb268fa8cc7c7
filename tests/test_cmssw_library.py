"""The CMSSW emulator library (``l1ad firmware export-emulator``): interface, isolation, bit-exactness.

Two versions of the same architecture (identical target, namespace and layer names; different weights)
are exported, loaded into one C++ program with ``dlopen(RTLD_NOW | RTLD_GLOBAL)`` as CMSSW does, and
run interleaved on events (some saturating the hardware encoding on purpose). Each must equal the
C-simulation of its own project bit for bit. The same program on a build without the versioned
namespace and symbol hiding shows the clash of cmssw#44435: one model silently returns the other's scores.
"""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from l1ad.core.fixed_point import FixedPoint
from l1ad.emulation import cmssw_sources as src
from l1ad.emulation.cmssw_library import (
    default_name,
    dynamic_symbols,
    export_emulator,
    exported_symbol_problems,
    library_namespace,
    rename_namespace,
)
from l1ad.events import schema
from l1ad.events.encoding import SCALES, encode, encode_hw

fm = runpy.run_path(str(Path(__file__).parent / "fixtures" / "firmware_models.py"))["load"]()

NEEDS_GXX = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not found: cannot compile C++")
NEEDS_TOOLS = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ("g++", "make", "nm")), reason="needs g++, make and nm"
)
SEEDS = (1, 2)
NAME = "TinyAD"


# --------------------------------------------------------------------------- events
def saturating_particles(n: int = 1500, seed: int = 11) -> np.ndarray:
    """Valid events, then a third of them with objects pushed past every hardware range and onto
    rounding ties (``(k + 1/2) * lsb`` in float32) of every feature."""
    p = fm.particles(n, seed)
    rng = np.random.default_rng(seed)
    k = n // 3
    slots = rng.integers(0, schema.N_OBJECTS, (k, 4))
    extremes = {
        0: [5000.0, 2047.5, 2047.75, 2047.76, -3.0, np.inf, 1e30],
        1: [6.0, -6.0, 5.5245, -5.5682, 1e9, -np.inf],
        2: [10.0, -10.0, 5.5418, -5.585, np.inf, -1e9],
    }
    for j, scale in enumerate(SCALES):
        ties = ((rng.integers(-200, 200, k) + 0.5) * scale.lsb).astype(np.float32)
        p[np.arange(k), slots[:, 0], j] = rng.choice(np.array(extremes[j], dtype=np.float32), k)
        p[np.arange(k), slots[:, 1 + j], j] = ties
    return p


def hw_inputs(particles: np.ndarray, seed: int = 12) -> np.ndarray:
    """(N, 57) int32 hardware integers, some outside the hardware types (the library saturates them)."""
    hw = encode_hw(particles).astype(np.int32)
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(hw), 300)
    hw[rows, rng.integers(0, schema.N_INPUTS, 300)] = rng.choice([-100000, -129, 128, 4096, 100000], 300)
    return hw


def inputs_from_hw(hw: np.ndarray) -> np.ndarray:
    """The network inputs the hardware integers mean: saturated to the hardware types, shifted."""
    h = hw.reshape(len(hw), schema.N_OBJECTS, 3).astype(np.int64)
    x = np.empty(h.shape, dtype=np.float64)
    for j, s in enumerate(SCALES):
        x[:, :, j] = s.hw.to_int(h[:, :, j]) * 2.0**-s.shift
    return x.reshape(len(hw), schema.N_INPUTS)


# --------------------------------------------------------------------------- fast: the generated sources
def _meta(n_in: int = 57) -> dict:
    return {
        "target": "t", "namespace": "l1ad_t", "project_name": "l1ad_t_top", "model": "m", "quantization": "hgq",
        "input": {"type_name": "input_t", "size": n_in, "cpp": "ap_fixed<13,6>"},
        "output": {"type_name": "result_t", "size": 1, "cpp": "ap_ufixed<16,8>"},
    }  # fmt: skip


def test_names_and_makefile() -> None:
    assert library_namespace("AXO", 3) == "AXO_v3"
    assert default_name("ae_compact-vu13p.x") == "L1AD_ae_compact_vu13p_x"
    for bad in ("1abc", "a-b", "nnet", "", "std"):
        with pytest.raises(ValueError, match="C\\+\\+ identifier"):
            library_namespace(bad, 1)
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="version"):
            library_namespace("AXO", bad)
    mk = src.makefile("AXO_v3", "l1ad_t_top")
    assert "LIBRARY := AXO_v3\n" in mk and "$(LIBRARY).so:" in mk and "firmware/l1ad_t_top.cpp" in mk
    assert "-fvisibility=hidden -fvisibility-inlines-hidden" in mk and "--version-script=AXO_v3.map" in mk
    assert "-Wl,--no-undefined" in mk and "-ffp-contract=off" in mk and "-ffast-math" not in mk
    plain = src.makefile("AXO_v3", "l1ad_t_top", isolate=False)
    assert "visibility" not in plain and "version-script" not in plain
    assert (
        src.version_script() == "{\n  global:\n    create_model;\n    destroy_model;\n  local:\n    *;\n};\n"
    )


def test_emulator_source_shape() -> None:
    code = src.emulator_source(_meta(), "AXO_v3", has_thresholds=True)
    assert "namespace AXO_v3 {" in code and "class Emulator : public hls4mlEmulator::Model {" in code
    for fn in ("void prepare_input(std::any input) override", "void predict() override",
               "void read_result(std::any result) override"):  # fmt: skip
        assert fn in code
    assert 'extern "C" {' in code and "Model *create_model() { return new AXO_v3::Emulator; }" in code
    assert "void destroy_model(hls4mlEmulator::Model *m) { delete m; }" in code
    assert code.count('__attribute__((visibility("default")))') == 2  # the only exported symbols
    assert '#include "firmware/l1ad_t_thresholds.h"' in code and "fires(output_[0], i)" in code
    assert "std::any_cast<result_t *>" in code and "l1ad_t_top(input_, output_);" in code
    no_thr = src.emulator_source(_meta(), "AXO_v3", has_thresholds=False)
    assert "thresholds.h" not in no_thr and "no trigger thresholds" in no_thr
    with pytest.raises(ValueError, match="57 L1 inputs"):
        src.emulator_source(_meta(56), "AXO_v3", has_thresholds=False)
    header = src.interface_header()
    assert "namespace hls4mlEmulator {" in header and "virtual ~Model() = default;" in header
    assert "typedef Model *create_model_t();" in header and "typedef void destroy_model_t(Model *);" in header


def test_rename_namespace_renames_tokens_only() -> None:
    text = "#ifndef L1AD_X_TOP_H_\nnamespace l1ad_x {\nvoid l1ad_x_top();\n}\nl1ad_x::w4; using namespace l1ad_x;\n"
    assert rename_namespace(text, "l1ad_x", "AXO_v2") == (
        "#ifndef L1AD_X_TOP_H_\nnamespace AXO_v2 {\nvoid l1ad_x_top();\n}\nAXO_v2::w4; using namespace AXO_v2;\n"
    )


def test_exported_symbol_problems() -> None:
    nm = (
        "00000000000088a0 T create_model\n00000000000088d0 T destroy_model\n"
        "0000000000004000 D AXO_v1::w4\n0000000000005000 V vtable for AXO_v1::Emulator\n"
        "0000000000005100 V typeinfo name for AXO_v1::Emulator\n"
    )
    assert exported_symbol_problems(nm, "AXO_v1") == []
    leaks = (
        "0000000000004000 D l1ad_x::w4\n0000000000005000 V vtable for l1ad_x::Emulator\n"
        "0000000000006000 W std::any::_Manager_internal<float const*>::_S_manage(std::any::_Op, std::any const*, "
        "std::any::_Arg*)\n0000000000007000 W void nnet::dense<AXO_v1::a, AXO_v1::b>(AXO_v1::a*)\n"
        "0000000000008000 D AXO_v10::w4\n"
    )
    assert exported_symbol_problems(nm + leaks, "AXO_v1") == [
        "l1ad_x::w4", "vtable for l1ad_x::Emulator", leaks.splitlines()[2].split(maxsplit=2)[2],
        "void nnet::dense<AXO_v1::a, AXO_v1::b>(AXO_v1::a*)", "AXO_v10::w4",
    ]  # fmt: skip


def test_export_refuses_to_replace_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "metadata.json").write_text(json.dumps({"target": "t"}))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    with pytest.raises(FileExistsError, match="not an emulator export"):
        export_emulator(tmp_path / "proj", tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep me"


@NEEDS_GXX
def test_cpp_encoding_equals_encode_hw(tmp_path: Path) -> None:
    """The generated C++ encoding alone (no hls4ml): saturation, ties and infinities like encode_hw."""
    p = saturating_particles(3000, seed=5)
    program = (
        "#include <cmath>\n#include <cstdio>\nnamespace enc {\n" + src.encoding_source() + "}\n"
        "int main() {\n  float v[4];\n"
        '  while (std::fread(v, sizeof(float), 4, stdin) == 4) std::printf("%d %d %d\\n", '
        "enc::hw_from_physical_0(v[0]), enc::hw_from_physical_1(v[1]), enc::hw_from_physical_2(v[2]));\n}\n"
    )
    (tmp_path / "enc.cpp").write_text(program)
    exe = tmp_path / "enc"
    subprocess.run(["g++", "-std=c++17", "-O2", "-ffp-contract=off", str(tmp_path / "enc.cpp"), "-o", str(exe)],
                   check=True)  # fmt: skip
    out = subprocess.run(
        [str(exe)], input=p.astype(np.float32).tobytes(), capture_output=True, check=True
    ).stdout
    cpp = np.array(out.split(), dtype=np.int64).reshape(len(p), schema.N_INPUTS)
    want = encode_hw(p)
    for j, s in enumerate(SCALES):  # the events really saturate at both ends of every feature
        assert (want[:, j::3].min(), want[:, j::3].max()) == (s.hw.int_min, s.hw.int_max)
        assert (p[:, :, j] < s.hw.int_min * s.lsb - s.lsb).any() and (
            p[:, :, j] > (s.hw.int_max + 1) * s.lsb
        ).any()
    np.testing.assert_array_equal(cpp, want)


# --------------------------------------------------------------------------- slow: two versions in one process
@pytest.fixture(scope="module")
def projects() -> list[Path]:
    """Two builds of one target (same namespace and layer names) from two trainings (different weights)."""
    from l1ad.hls.build import build_project

    out = []
    for seed in SEEDS:
        t = fm.target("Latency", "tiny", name="tiny_cmssw", model=str(fm.model_dir("tiny", seed)),
                      thresholds_from=str(fm.evaluation_json("tiny", seed)))  # fmt: skip
        out.append(
            build_project(
                t, fm.root() / "cmssw" / f"seed{seed}", model=fm.keras_model("tiny", seed)
            ).project_dir
        )
    return out


@pytest.fixture(scope="module")
def events() -> dict[str, np.ndarray]:
    p = saturating_particles()
    return {"particles": p, "hw": hw_inputs(p)}


@pytest.fixture(scope="module")
def reference(projects: list[Path], events: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """C-simulation of each project (own library each: the two projects share a namespace)."""
    from l1ad.emulation.csim import CSim

    out = []
    for k, project in enumerate(projects):
        csim = CSim(project, build_dir=fm.root() / "cmssw" / f"csim{k}")
        out.append(
            {
                "float": csim.predict(encode(events["particles"])),
                "hw": csim.predict(inputs_from_hw(events["hw"])),
            }
        )
    return out


def _export(projects: list[Path], root: Path, isolate: bool) -> list[Path]:
    return [
        export_emulator(p, root / f"v{v}", NAME, v, isolate=isolate)
        for v, p in zip(SEEDS, projects, strict=True)
    ]


def _run_host(libs: list[Path], metas: list[dict], events: dict[str, np.ndarray], out: Path) -> dict:
    """Compile :func:`host_source` against the first export and run it on ``events``; outputs per library."""
    out.mkdir(parents=True, exist_ok=True)
    code = src.host_source([m["output"]["cpp"] for m in metas], [len(m["thresholds"]) for m in metas],
                           [m["output"]["size"] for m in metas])  # fmt: skip
    (out / "host.cpp").write_text(code)
    inc = libs[0].parent
    subprocess.run(["g++", "-std=c++17", "-O2", "-w", "-I", str(inc / "include"), "-I", str(inc / "firmware" / "ap_types"),
                    str(out / "host.cpp"), "-o", str(out / "host"), "-ldl"], check=True)  # fmt: skip
    p, hw = events["particles"], events["hw"]
    (out / "p.f32").write_bytes(np.ascontiguousarray(p, dtype=np.float32).tobytes())
    (out / "hw.i32").write_bytes(np.ascontiguousarray(hw, dtype=np.int32).tobytes())
    run = subprocess.run([str(out / "host"), str(len(p)), str(out / "p.f32"), str(out / "hw.i32"), str(out), "1",
                          *map(str, libs)], capture_output=True, text=True, check=True)  # fmt: skip
    res = {"stdout": run.stdout}
    for k, m in enumerate(metas):
        n_out = m["output"]["size"]
        res[k] = {
            "float": np.fromfile(out / f"{k}_score.f64", dtype=np.float64).reshape(-1, n_out),
            "hw": np.fromfile(out / f"{k}_hw.f64", dtype=np.float64).reshape(-1, n_out),
            "raw": np.fromfile(out / f"{k}_raw.i64", dtype=np.int64).reshape(-1, n_out),
            "fires": np.fromfile(out / f"{k}_fires.u8", dtype=np.uint8)
            .reshape(-1, len(m["thresholds"]))
            .astype(bool),
        }
    return res


@pytest.mark.slow
@NEEDS_TOOLS
def test_two_versions_in_one_process_are_bit_exact(projects, events, reference, tmp_path: Path) -> None:
    from l1ad.emulation.compare import score_ints
    from l1ad.hls.metadata import read_metadata
    from l1ad.hls.thresholds import fires

    metas = [read_metadata(p) for p in projects]
    assert (
        metas[0]["namespace"] == metas[1]["namespace"]
        and metas[0]["weights_sha256"] != metas[1]["weights_sha256"]
    )
    assert not np.array_equal(reference[0]["float"], reference[1]["float"])  # two different models
    libs = _export(projects, tmp_path, isolate=True)
    assert [lib.name for lib in libs] == [f"{NAME}_v1.so", f"{NAME}_v2.so"]
    res = _run_host(libs, metas, events, tmp_path / "run")
    assert res["stdout"].count("rejects a wrong input type") == 2
    for k, (lib, meta) in enumerate(zip(libs, metas, strict=True)):
        ns = library_namespace(NAME, SEEDS[k])
        # exported: the two factory functions, nothing else (no std::, nnet::, unversioned names)
        exported = {line.split(maxsplit=2)[2] for line in dynamic_symbols(lib).splitlines()}
        assert exported == {"create_model", "destroy_model"}
        assert exported_symbol_problems(dynamic_symbols(lib), ns) == []
        # inside, the project's names moved to the versioned namespace (hidden ones included)
        local = subprocess.run(["nm", "-C", str(lib)], capture_output=True, text=True, check=True).stdout
        names = [line.split(maxsplit=2)[-1] for line in local.splitlines()]
        assert f"{ns}::Emulator::predict()" in names and any(n.startswith(f"{ns}::w") for n in names)
        assert not [n for n in names if n.startswith(f"{meta['namespace']}::")]
        # bit-exact against the project's own C-simulation, both input paths
        np.testing.assert_array_equal(res[k]["float"], reference[k]["float"])
        np.testing.assert_array_equal(res[k]["hw"], reference[k]["hw"])
        score_type = FixedPoint.from_dict(meta["output"]["fixed_point"])
        np.testing.assert_array_equal(
            res[k]["raw"][:, 0], score_ints(reference[k]["float"][:, 0], score_type)
        )
        want = fires(res[k]["raw"][:, 0], np.array([t["raw"] for t in meta["thresholds"]], dtype=np.int64))
        assert want.any() and not want.all()
        np.testing.assert_array_equal(res[k]["fires"], want)
        info = json.loads((lib.parent / "emulator.json").read_text())
        assert (info["namespace"], info["library"], info["weights_sha256"]) == (
            ns,
            lib.name,
            meta["weights_sha256"],
        )
    assert len(np.unique(res[0]["float"])) > 50


@pytest.mark.slow
@NEEDS_TOOLS
def test_without_versioned_namespace_one_model_returns_the_others(
    projects, events, reference, tmp_path
) -> None:
    """The failure the isolation prevents (cmssw#44435), shown with the same program and checks."""
    from l1ad.hls.metadata import read_metadata

    metas = [read_metadata(p) for p in projects]
    libs = _export(projects, tmp_path, isolate=False)
    problems = exported_symbol_problems(dynamic_symbols(libs[1]), library_namespace(NAME, SEEDS[1]))
    assert any(p.startswith(f"{metas[1]['namespace']}::w") for p in problems)  # unversioned weights exported
    assert any(p.startswith("std::") for p in problems)  # and libstdc++ instantiations
    res = _run_host(libs, metas, events, tmp_path / "run")
    # ap_fixed weight arrays are initialized at load time: the second library's static initializers
    # write its weights into the first library's (interposed) arrays, so BOTH models now compute the
    # second one's scores: the first model silently returns the wrong values
    np.testing.assert_array_equal(res[0]["float"], res[1]["float"])
    np.testing.assert_array_equal(res[0]["float"], reference[1]["float"])
    assert not np.array_equal(res[0]["float"], reference[0]["float"])


@pytest.mark.slow
@NEEDS_TOOLS
def test_distributed_arithmetic_export_is_bit_exact(events, tmp_path: Path) -> None:
    """The default L1 target is a DA project (hls4ml's da4ml C++, no weight arrays): its library too
    exports the two factories only and equals the project's C-simulation on saturating events."""
    from l1ad.emulation.csim import CSim
    from l1ad.hls.metadata import read_metadata

    project = fm.project("distributed_arithmetic", "tiny")
    meta = read_metadata(project)
    lib = export_emulator(project, tmp_path / "da", NAME, 3)
    assert {line.split(maxsplit=2)[2] for line in dynamic_symbols(lib).splitlines()} == {
        "create_model",
        "destroy_model",
    }
    res = _run_host([lib], [meta], events, tmp_path / "run")
    csim = CSim(project)
    np.testing.assert_array_equal(res[0]["float"], csim.predict(encode(events["particles"])))
    np.testing.assert_array_equal(res[0]["hw"], csim.predict(inputs_from_hw(events["hw"])))
