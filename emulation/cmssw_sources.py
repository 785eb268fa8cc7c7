"""C++ sources of the CMSSW emulator library (:mod:`l1ad.emulation.cmssw_library`): pure functions -> strings.

The library follows the interface CMS L1 emulators (AXOL1TL, CICADA) load through
``hls4mlEmulatorExtras``: a class deriving from ``hls4mlEmulator::Model`` with
``prepare_input(std::any)``, ``predict()``, ``read_result(std::any)``, created and destroyed by the
``extern "C"`` functions ``create_model()`` / ``destroy_model()``. Everything else lives in the
versioned namespace ``<Name>_v<N>`` and is hidden (``-fvisibility=hidden``, a version script that
exports only the two factory functions), so two versions of one model load into one process.

What crosses the ``std::any`` (pointers; ``const`` or not):

``prepare_input``
    * ``const float*``: 76 floats, the event's 19 objects ``[pT GeV, eta, phi rad, class]`` in the
      ADC2021 order (:mod:`l1ad.events.schema`); encoded exactly like :func:`l1ad.events.encoding.encode`
      (``hw = sat(round(x / lsb))``, input = ``hw * 2**-shift``; the class is not used; NaN reads as 0).
    * ``const int*``: 57 hardware integers ``[pT_hw, eta_hw, phi_hw]`` per slot (the L1 scales of
      :mod:`l1ad.events.encoding`), saturated to the hardware types, then shifted.
``read_result``
    * ``double*``: the ``N_OUTPUTS`` firmware outputs (exact: the output type has at most 53 bits).
    * ``<output type>*`` (e.g. ``ap_ufixed<23,13>*``, the project's ``result_t``): the raw outputs.
    * ``bool*``: the ``N_THRESHOLDS`` trigger decisions ``fires(score, i)`` of the thresholds header.

Any other type throws ``std::invalid_argument``.
"""

from __future__ import annotations

from typing import Any

from l1ad.core.fixed_point import FixedPoint
from l1ad.emulation.fast import round_c
from l1ad.events import schema
from l1ad.events.encoding import SCALES, FeatureScale

#: The two symbols a library exports (``extern "C"``, looked up with ``dlsym`` by hls4mlEmulatorExtras).
FACTORY_SYMBOLS = ("create_model", "destroy_model")
#: Where the interface header goes (``#include "hls4ml/emulator.h"``, as with hls4mlEmulatorExtras).
INTERFACE_HEADER = "include/hls4ml/emulator.h"


def interface_header() -> str:
    """``hls4ml/emulator.h``: the ``hls4mlEmulator::Model`` interface (replaceable by hls4mlEmulatorExtras')."""
    return """// hls4mlEmulator interface, written by l1ad from its description (hls4mlEmulatorExtras).
// In CMSSW, point EMULATOR_EXTRAS_INCLUDE of the Makefile at hls4mlEmulatorExtras' include/ instead.
#ifndef EMULATOR_H
#define EMULATOR_H

#include <any>

namespace hls4mlEmulator {

class Model {
  public:
    virtual void prepare_input(std::any input) = 0;
    virtual void predict() = 0;
    virtual void read_result(std::any result) = 0;
    virtual ~Model() = default;
};

typedef Model *create_model_t();
typedef void destroy_model_t(Model *);

} // namespace hls4mlEmulator

#endif
"""


def _round_expr(mode: str, v: str) -> str:
    """C++ for ``round(v)`` in ``mode`` (the modes the hardware encoding may use): the fast emulator's
    rounding (:func:`l1ad.emulation.fast.round_c`), restricted to the modes tested here."""
    if mode not in ("RND", "TRN"):
        raise ValueError(f"hardware encoding rounding {mode!r} is not supported by the emulator library")
    return round_c(mode, v)


def encoding_source(scales: tuple[FeatureScale, ...] = SCALES) -> str:
    """The hardware input encoding in C++: ``hw_from_physical_<j>``, ``hw_saturate_<j>``, ``INPUT_SHIFT``.

    The same double operations as :meth:`FixedPoint.to_int` (``x / lsb``, rounded, clipped); the
    LSBs are written as hexadecimal floats, the exact doubles Python uses.
    """
    lines = []
    for j, s in enumerate(scales):
        hw: FixedPoint = s.hw
        if hw.f != 0 or hw.overflow != "SAT":
            raise ValueError(f"{s.name}: the hardware type must be a saturating integer, got {hw.hls()}")
        lo, hi = hw.int_min, hw.int_max
        lines.append(
            f"// {s.name}: lsb {s.lsb!r}, hardware {hw.hls()} in [{lo}, {hi}], input = hw >> {s.shift}\n"
            f"inline int hw_from_physical_{j}(float x) {{\n"
            f"    const double v = {_round_expr(hw.rounding, f'static_cast<double>(x) / {s.lsb.hex()}')};\n"
            f"    return std::isnan(v) ? 0 : v < {lo} ? {lo} : v > {hi} ? {hi} : static_cast<int>(v);\n"
            f"}}\n"
            f"inline int hw_saturate_{j}(int hw) {{ return hw < {lo} ? {lo} : hw > {hi} ? {hi} : hw; }}\n"
        )
    shifts = ", ".join(str(s.shift) for s in scales)
    lsbs = ", ".join(f"{s.lsb!r}" for s in scales)
    return (
        f"static const int N_FEATURES = {len(scales)};  // {', '.join(s.name for s in scales)} per object\n"
        f"static const int INPUT_SHIFT[{len(scales)}] = {{{shifts}}};  // network input = hw * 2^-shift\n"
        f"static const int INPUT_OFFSET[{len(scales)}] = {{{', '.join('0' for _ in scales)}}};  "
        "// no offset: eta, phi centred, pT from 0\n"
        f"static const double INPUT_LSB[{len(scales)}] = {{{lsbs}}};  // physical value of one hw unit\n\n"
        + "\n".join(lines)
    )


def emulator_source(meta: dict[str, Any], namespace: str, has_thresholds: bool) -> str:
    """``<Name>_v<N>.cpp``: the ``hls4mlEmulator::Model`` of one project, in ``namespace``.

    ``meta`` is the project's metadata (after re-namespacing, its top function lives in ``namespace``).
    """
    top, n_in, n_out = meta["project_name"], meta["input"]["size"], meta["output"]["size"]
    in_t, out_t = meta["input"]["type_name"], meta["output"]["type_name"]
    n_obj, n_feat = schema.N_OBJECTS, schema.N_FEATURES
    if n_in != schema.N_INPUTS:
        raise ValueError(
            f"{meta['target']}: {n_in} inputs; the emulator library encodes the {schema.N_INPUTS} L1 inputs"
        )
    thr_include = f'#include "firmware/{meta["namespace"]}_thresholds.h"\n' if has_thresholds else ""
    n_thr = "N_THRESHOLDS" if has_thresholds else "0"
    fires = (
        "for (unsigned i = 0; i < N_THRESHOLDS; i++) p[i] = fires(output_[0], i);"
        if has_thresholds
        else 'throw std::invalid_argument("' + namespace + ': no trigger thresholds in this model");'
    )
    feats = "\n".join(
        f"            input_[{len(SCALES)} * o + {j}] = to_input(hw_from_physical_{j}(p[{n_feat} * o + {j}]), {j});"
        for j in range(len(SCALES))
    )
    hw_feats = "\n".join(
        f"            input_[{len(SCALES)} * o + {j}] = to_input(hw_saturate_{j}(p[{len(SCALES)} * o + {j}]), {j});"
        for j in range(len(SCALES))
    )
    return f"""// {namespace}: CMSSW emulator library of {meta["target"]} (model {meta.get("model")}/{meta.get("quantization")},
// weights sha256 {str(meta.get("weights_sha256"))[:16]}...). Generated by l1ad.emulation.cmssw_library. Do not edit.
//
// prepare_input(std::any): const float* -> {n_obj}x{n_feat} particles [pT GeV, eta, phi rad, class] (ADC2021 order),
//                          const int*   -> {n_in} hardware integers [pT_hw, eta_hw, phi_hw] per object.
// predict():               the firmware top function {top} (bit-exact C-simulation of the HLS project).
// read_result(std::any):   double* -> {n_out} outputs; {meta["output"]["cpp"]}* -> the raw outputs;
//                          bool* -> the trigger decisions fires(score, i) of the thresholds header.
#include <any>
#include <cmath>
#include <cstddef>
#include <map>
#include <stdexcept>
#include <string>

#include "hls4ml/emulator.h"
#include "firmware/{top}.h"
#include "firmware/nnet_utils/nnet_helpers.h"
{thr_include}
// hls4ml's C-simulation trace hooks (inert: tracing stays off); hidden in the library.
namespace nnet {{
bool trace_enabled = false;
std::map<std::string, void *> *trace_outputs = NULL;
size_t trace_type_size = sizeof(double);
}} // namespace nnet

namespace {namespace} {{

static const int N_OBJECTS = {n_obj};
static const int N_PARTICLE_FEATURES = {n_feat};
static const int N_INPUTS = {n_in};
static const int N_OUTPUTS = {n_out};
static const unsigned N_TRIGGERS = {n_thr};

// Hardware input encoding (l1ad.events.encoding)
{encoding_source()}
inline {in_t} to_input(int hw, int j) {{ return {in_t}(std::ldexp(static_cast<double>(hw), -INPUT_SHIFT[j])); }}

template <class T> const T *any_pointer(const std::any &a) {{
    if (const T *const *p = std::any_cast<const T *>(&a)) return *p;
    if (T *const *p = std::any_cast<T *>(&a)) return *p;
    return nullptr;
}}

class Emulator : public hls4mlEmulator::Model {{
  public:
    Emulator() {{
        for (int i = 0; i < N_INPUTS; i++) input_[i] = 0;
        predict(); // fills any static tables of the firmware once, before events arrive
    }}

    void prepare_input(std::any input) override {{
        if (const float *p = any_pointer<float>(input)) {{
            for (int o = 0; o < N_OBJECTS; o++) {{
{feats}
            }}
        }} else if (const int *p = any_pointer<int>(input)) {{
            for (int o = 0; o < N_OBJECTS; o++) {{
{hw_feats}
            }}
        }} else {{
            throw std::invalid_argument("{namespace}::prepare_input takes const float* ({n_obj}x{n_feat} particles) or const int* ({n_in} hardware integers)");
        }}
    }}

    void predict() override {{ {top}(input_, output_); }}

    void read_result(std::any result) override {{
        if (double *const *q = std::any_cast<double *>(&result)) {{
            for (int i = 0; i < N_OUTPUTS; i++) (*q)[i] = output_[i].to_double();
        }} else if ({out_t} *const *q = std::any_cast<{out_t} *>(&result)) {{
            for (int i = 0; i < N_OUTPUTS; i++) (*q)[i] = output_[i];
        }} else if (bool *const *q = std::any_cast<bool *>(&result)) {{
            bool *p = *q;
            {fires}
        }} else {{
            throw std::invalid_argument("{namespace}::read_result takes double*, {meta["output"]["cpp"]}* or bool*");
        }}
    }}

  private:
    {in_t} input_[N_INPUTS];
    {out_t} output_[N_OUTPUTS];
}};

}} // namespace {namespace}

extern "C" {{
__attribute__((visibility("default"))) hls4mlEmulator::Model *create_model() {{ return new {namespace}::Emulator; }}
__attribute__((visibility("default"))) void destroy_model(hls4mlEmulator::Model *m) {{ delete m; }}
}}
"""


def version_script() -> str:
    """Linker version script: export the two factory functions, nothing else (no std:: instantiations)."""
    return "{\n  global:\n" + "".join(f"    {s};\n" for s in FACTORY_SYMBOLS) + "  local:\n    *;\n};\n"


def makefile(library: str, top: str, isolate: bool = True) -> str:
    """The Makefile building ``<library>.so`` from ``<library>.cpp`` and the firmware top function.

    ``isolate=False`` drops the hidden visibility and the version script (every symbol exported, as a
    plain hls4ml build): only for tests that show the clash the isolation prevents.
    """
    isolation = "-fvisibility=hidden -fvisibility-inlines-hidden" if isolate else ""
    link_isolation = f"-Wl,--version-script={library}.map" if isolate else ""
    return f"""# Builds {library}.so, an hls4mlEmulator::Model library. Generated by l1ad. Usage: make [-j2]
# In CMSSW: make EMULATOR_EXTRAS_INCLUDE=<hls4mlEmulatorExtras>/include AP_TYPES=<hls>/include
LIBRARY := {library}
EMULATOR_EXTRAS_INCLUDE ?= include
AP_TYPES ?= firmware/ap_types
OPT ?= -O3
ISOLATION := {isolation}
LINK_ISOLATION := {link_isolation}
# no fast-math flags, no FP contraction: the input encoding must round exactly like l1ad.events.encoding
FLAGS := $(OPT) -std=c++17 -fPIC -ffp-contract=off -w $(ISOLATION) -I$(EMULATOR_EXTRAS_INCLUDE) -I$(AP_TYPES) -Ifirmware -I.
HEADERS := $(wildcard firmware/*.h firmware/weights/*.h firmware/nnet_utils/*.h)

all: $(LIBRARY).so

$(LIBRARY).o: $(LIBRARY).cpp $(HEADERS)
\t$(CXX) $(FLAGS) $(CXXFLAGS) -c $< -o $@

firmware/{top}.o: firmware/{top}.cpp $(HEADERS)
\t$(CXX) $(FLAGS) $(CXXFLAGS) -c $< -o $@

$(LIBRARY).so: $(LIBRARY).o firmware/{top}.o $(wildcard $(LIBRARY).map)
\t$(CXX) -shared $(LINK_ISOLATION) -Wl,--no-undefined $(LDFLAGS) $(LIBRARY).o firmware/{top}.o -o $@

clean:
\trm -f $(LIBRARY).so $(LIBRARY).o firmware/{top}.o

.PHONY: all clean
"""


def host_source(output_types: list[str], n_thresholds: list[int], n_outputs: list[int]) -> str:
    """A C++ program that loads libraries the way CMSSW does and runs events through each, interleaved.

    ``host N PARTICLES.f32 HW.i32 OUTDIR REPEAT lib0.so lib1.so ...``: every library is ``dlopen``-ed
    (``RTLD_NOW | RTLD_GLOBAL``) before any model is created; per library ``k`` it writes
    ``OUTDIR/<k>_score.f64`` (float path, ``double*``), ``<k>_raw.i64`` (``<output type>*``, raw
    integers), ``<k>_fires.u8`` (``bool*``) and ``<k>_hw.f64`` (``const int*`` input path), then times
    ``REPEAT`` passes of prepare/predict/read and prints ``lib <k>: <events/s> events/s``.
    """
    readers = []
    for k, (t, n_out) in enumerate(zip(output_types, n_outputs, strict=True)):
        fp = FixedPoint.parse(t)
        bits = f"ap_{'' if fp.k else 'u'}int<{fp.width}>"
        readers.append(
            f"static void read_raw_{k}(hls4mlEmulator::Model *m, long long *raw) {{\n"
            f"    {t} r[{n_out}];\n    m->read_result(r);\n"
            f"    for (int i = 0; i < {n_out}; i++) {{ {bits} b; b.range({fp.width - 1}, 0) = r[i].range({fp.width - 1}, 0); raw[i] = b.to_int64(); }}\n"
            "}\n"
        )
    table = ", ".join(
        f"{{read_raw_{k}, {n}, {t}}}" for k, (n, t) in enumerate(zip(n_outputs, n_thresholds, strict=True))
    )
    return f"""// Loads hls4mlEmulator libraries like CMSSW (dlopen RTLD_NOW | RTLD_GLOBAL) and runs events. By l1ad.
#include <dlfcn.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "ap_fixed.h"
#include "ap_int.h"
#include "hls4ml/emulator.h"

{"".join(readers)}
struct Lib {{ void (*read_raw)(hls4mlEmulator::Model *, long long *); int n_out, n_thr; }};
static const Lib LIBS[] = {{{table}}};

static std::vector<char> slurp(const char *path, size_t n) {{
    std::vector<char> buf(n);
    FILE *f = std::fopen(path, "rb");
    if (!f || std::fread(buf.data(), 1, n, f) != n) {{ std::fprintf(stderr, "cannot read %s\\n", path); std::exit(2); }}
    std::fclose(f);
    return buf;
}}

static void spit(const std::string &path, const void *data, size_t n) {{
    FILE *f = std::fopen(path.c_str(), "wb");
    if (!f || std::fwrite(data, 1, n, f) != n) {{ std::fprintf(stderr, "cannot write %s\\n", path.c_str()); std::exit(2); }}
    std::fclose(f);
}}

int main(int argc, char **argv) {{
    if (argc < 7) {{ std::fprintf(stderr, "usage: host N PARTICLES.f32 HW.i32 OUTDIR REPEAT LIB...\\n"); return 2; }}
    const long n = std::atol(argv[1]);
    const int repeat = std::atoi(argv[5]), n_libs = argc - 6;
    std::vector<char> particles = slurp(argv[2], n * 76 * sizeof(float)), hw = slurp(argv[3], n * 57 * sizeof(int));
    const float *x = reinterpret_cast<const float *>(particles.data());
    const int *h = reinterpret_cast<const int *>(hw.data());
    std::vector<void *> handles;
    for (int k = 0; k < n_libs; k++) {{
        void *handle = dlopen(argv[6 + k], RTLD_NOW | RTLD_GLOBAL);
        if (!handle) {{ std::fprintf(stderr, "dlopen: %s\\n", dlerror()); return 3; }}
        handles.push_back(handle);
    }}
    std::vector<hls4mlEmulator::Model *> models;
    for (int k = 0; k < n_libs; k++) {{
        auto create = reinterpret_cast<hls4mlEmulator::create_model_t *>(dlsym(handles[k], "create_model"));
        if (!create) {{ std::fprintf(stderr, "dlsym: %s\\n", dlerror()); return 3; }}
        models.push_back(create());
        try {{ models[k]->prepare_input(std::string("not an event")); std::printf("lib %d: no type check\\n", k); }}
        catch (const std::invalid_argument &) {{ std::printf("lib %d: rejects a wrong input type\\n", k); }}
    }}
    std::vector<std::vector<double>> score(n_libs), score_hw(n_libs);
    std::vector<std::vector<long long>> raw(n_libs);
    std::vector<std::vector<char>> fire(n_libs);
    for (int k = 0; k < n_libs; k++) {{
        score[k].resize(n * LIBS[k].n_out); score_hw[k].resize(n * LIBS[k].n_out);
        raw[k].resize(n * LIBS[k].n_out); fire[k].resize(n * LIBS[k].n_thr);
    }}
    bool flags[64];
    for (long e = 0; e < n; e++) {{
        for (int k = 0; k < n_libs; k++) {{  // interleaved: a shared symbol would mix the models up
            hls4mlEmulator::Model *m = models[k];
            m->prepare_input(x + 76 * e);
            m->predict();
            m->read_result(&score[k][e * LIBS[k].n_out]);
            LIBS[k].read_raw(m, &raw[k][e * LIBS[k].n_out]);
            if (LIBS[k].n_thr > 0) {{
                m->read_result(flags);
                for (int i = 0; i < LIBS[k].n_thr; i++) fire[k][e * LIBS[k].n_thr + i] = flags[i];
            }}
            m->prepare_input(h + 57 * e);
            m->predict();
            m->read_result(&score_hw[k][e * LIBS[k].n_out]);
        }}
    }}
    const std::string out = argv[4];
    for (int k = 0; k < n_libs; k++) {{
        const std::string p = out + "/" + std::to_string(k);
        spit(p + "_score.f64", score[k].data(), score[k].size() * sizeof(double));
        spit(p + "_hw.f64", score_hw[k].data(), score_hw[k].size() * sizeof(double));
        spit(p + "_raw.i64", raw[k].data(), raw[k].size() * sizeof(long long));
        spit(p + "_fires.u8", fire[k].data(), fire[k].size());
        std::vector<double> y(LIBS[k].n_out);
        auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < repeat; r++)
            for (long e = 0; e < n; e++) {{
                models[k]->prepare_input(x + 76 * e);
                models[k]->predict();
                models[k]->read_result(y.data());
            }}
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        std::printf("lib %d: %.0f events/s\\n", k, s > 0 ? repeat * n / s : 0.0);
    }}
    for (int k = 0; k < n_libs; k++) {{
        auto destroy = reinterpret_cast<hls4mlEmulator::destroy_model_t *>(dlsym(handles[k], "destroy_model"));
        destroy(models[k]);
    }}
    return 0;
}}
"""
