"""The fast bit-exact emulator of a firmware project: the one that scores every event.

Distributed-arithmetic targets: the da4ml adder graph (``rtl/model/comb.json``, the graph the
Verilog and hls4ml's DA C++ are generated from) becomes straight-line integer C++
(:func:`comb_source`): every value of the graph is an integer ``n`` at its own fractional bits
``f`` (value ``n * 2**-f``, ``(k, i, f)`` from ``da4ml.types.minimal_kif`` of the op's interval),
each op one or two integer instructions, ``L`` events per call in GCC vector lanes, blocks of
events over OpenMP threads. The firmware input type (rounding and overflow, as
:meth:`l1ad.core.fixed_point.FixedPoint.to_int`) and the output type are applied in C. Graphs this
generator does not cover (lookup tables, bit ops, values wider than 62 bits) use da4ml's own
interpreter (``CombLogic.predict``).

Latency targets: hls4ml's C++ itself, compiled with the batch bridge of :mod:`l1ad.emulation.csim`
at ``-O3`` (:data:`LATENCY_FLAGS`), events over OpenMP threads (only ~1.2x the ``-O2`` C-sim:
``ap_fixed`` arithmetic dominates); or, opt-in, the adder graph traced from the QAT model.

Both are checked against hls4ml's C-simulation and the QAT model by ``l1ad firmware emulate``
(:mod:`l1ad.emulation.run`) and tests/test_emulation_fast.py.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.core.fixed_point import FixedPoint
from l1ad.emulation.compile import build_shared
from l1ad.hls.metadata import input_fixed_point, read_metadata
from l1ad.hls.rtl import RTL_DIR

logger = logging.getLogger(__name__)

#: Flags of the generated adder-graph library (integer code: exact under any optimization).
COMB_FLAGS = ("-O3", "-fPIC", "-std=c++17", "-w", "-fopenmp", "-fwrapv", "-shared")
#: Flags of the Latency-target library (hls4ml's C++ with the C-sim bridge).
LATENCY_FLAGS = ("-O3", "-fPIC", "-std=c++17", "-w", "-fopenmp", "-shared")
#: x86-64 feature flags (``/proc/cpuinfo`` names) of ``-march=x86-64-v3`` (AVX2): where all are
#: present the adder graph is built for it with 32-byte vectors (~2.5x the SSE2 baseline's speed).
X86_64_V3 = frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"})
SUPPORTED_OPCODES = frozenset({-1, 0, 1, 2, -2, 3, -3, 4, 5, 6, -6, 7})


# --------------------------------------------------------------------------- adder graph -> C++
def _kif(qint: Any) -> tuple[int, int, int]:
    from da4ml.types import minimal_kif

    k, i, f = minimal_kif(qint)
    return int(k), int(i), int(f)


def _shift(expr: str, d: int, width: int) -> str:
    """``expr`` (an integer at some f) moved to ``f + d``: left shifts exact, right shifts floor."""
    if d == 0:
        return expr
    if d > 0:
        return f"({expr} << {d})"
    return f"({expr} >> {min(-d, width - 1)})"


def _wrap(expr: str, k: int, bits: int, width: int) -> str:
    """Two's-complement wrap of ``expr`` to ``bits`` bits (signed if ``k``): the TRN/WRAP cast."""
    if bits <= 0:
        return f"({expr} & 0)"
    if k:
        return expr if bits >= width else f"(({expr} << {width - bits}) >> {width - bits})"
    return expr if bits >= width - 1 else f"({expr} & {(1 << bits) - 1})"


def comb_bits_needed(comb: Any) -> int:
    """Signed bits the widest intermediate integer of :func:`comb_source` needs (lane-width choice)."""
    ops, kifs = comb.ops, [_kif(op.qint) for op in comb.ops]
    need = 1
    for n, op in enumerate(ops):
        k, i, f = kifs[n]
        cands = [i + f + 1]
        if op.opcode in (0, 1, 6, -6):
            f1 = kifs[op.id1][2] - (op.data if op.opcode in (0, 1) else _mux_shift(op.data))
            top = max(kifs[op.id0][2], f1, f)
            cands += [kifs[op.id0][1] + top + 2, kifs[op.id1][1] + (top - f1) + kifs[op.id1][2] + 2]
        elif op.opcode == 7:
            cands.append(sum(kifs[op.id0][1:]) + sum(kifs[op.id1][1:]) + 2)
        elif op.opcode in (2, -2, 3, -3, 4):
            top = max(kifs[op.id0][2], f)
            cands.append(kifs[op.id0][1] + top + 2)
        need = max(need, *cands)
    return need


def _mux_shift(data: int) -> int:
    s = (data >> 32) & 0xFFFFFFFF
    return s - (1 << 32) if s >= (1 << 31) else s


def unsupported(comb: Any) -> str | None:
    """Why :func:`comb_source` cannot emit this graph, or None."""
    if comb.lookup_tables:
        return "lookup tables"
    bad = sorted({op.opcode for op in comb.ops} - SUPPORTED_OPCODES)
    if bad:
        return f"opcodes {bad}"
    if comb_bits_needed(comb) > 62:
        return f"{comb_bits_needed(comb)}-bit intermediates"
    return None


def _op_line(n: int, op: Any, kifs: list[tuple[int, int, int]], comb: Any, width: int, in_f: int) -> str:
    """The C++ statement computing op ``n`` of the graph (an integer at the op's own f)."""
    k, i, f = kifs[n]
    bits = k + i + f
    a = f"v{op.id0}"
    f0 = kifs[op.id0][2] if op.id0 >= 0 else 0
    code = op.opcode
    if code == -1:  # input (the firmware input type already applied), shifted, cast to the op's type
        expr = _wrap(_shift(f"in[{op.id0}]", f - (in_f - comb.inp_shifts[op.id0]), width), k, bits, width)
    elif code in (0, 1):  # a +/- b * 2**data
        f1 = kifs[op.id1][2] - op.data
        top = max(f0, f1)
        s = f"{_shift(a, top - f0, width)} {'-' if code else '+'} {_shift(f'v{op.id1}', top - f1, width)}"
        expr = _shift(f"({s})", f - top, width)
    elif code in (2, -2):  # relu(+/-a), floor to f, wrapped to i + f bits (da4ml: v % 2**i)
        t = _shift(a if code == 2 else f"(-{a})", f - f0, width)
        expr = f"(({t} & ({t} > 0)) & {(1 << (i + f)) - 1 if i + f > 0 else 0})"
    elif code in (3, -3):  # quantize(+/-a): floor to f, wrap to k + i + f bits
        expr = _wrap(_shift(a if code == 3 else f"(-{a})", f - f0, width), k, bits, width)
    elif code == 4:  # a + constant (op.data in steps of the result)
        top = max(f0, f)
        c = _const(op.data * op.qint.step, top)
        expr = _shift(f"({_shift(a, top - f0, width)} + {c})", f - top, width)
    elif code == 5:  # constant
        expr = f"(zero + {_const(op.data * op.qint.step, f)})"
    elif code in (6, -6):  # msb(c) ? a : +/-b * 2**shift
        idc = op.data & 0xFFFFFFFF
        kc, ic, fc = kifs[idc]
        if kc:
            cond = f"(v{idc} < 0)"
        elif ic + fc > 0:
            cond = f"(v{idc} >= {1 << (ic + fc - 1)})"
        else:
            cond = "(zero != 0)"
        f1 = kifs[op.id1][2] - _mux_shift(op.data)
        b = f"v{op.id1}" if code == 6 else f"(-v{op.id1})"
        expr = f"select({cond}, {_shift(a, f - f0, width)}, {_shift(b, f - f1, width)})"
    elif code == 7:  # a * b
        expr = _shift(f"({a} * v{op.id1})", f - (f0 + kifs[op.id1][2]), width)
    else:
        raise ValueError(f"unsupported opcode {code}")
    return f"    const V v{n} = {expr};"


def _const(value: float, f: int) -> str:
    n = value * 2.0**f
    if n != int(n):
        raise ValueError(f"constant {value} is not on the grid 2**-{f}")
    return f"(T){int(n)}LL"


def round_c(mode: str, v: str) -> str:
    """C++ for the rounding ``mode`` of :meth:`FixedPoint.to_int` applied to the double ``v`` (an expression)."""
    return {
        "TRN": f"std::floor({v})",
        "RND": f"std::floor({v} + 0.5)",
        "RND_CONV": f"std::nearbyint({v})",
        "TRN_ZERO": f"std::trunc({v})",
        "RND_ZERO": f"({v} >= 0 ? std::ceil({v} - 0.5) : std::floor({v} + 0.5))",
        "RND_INF": f"({v} >= 0 ? std::floor({v} + 0.5) : std::ceil({v} - 0.5))",
        "RND_MIN_INF": f"std::ceil({v} - 0.5)",
    }[mode]


def _to_int_c(t: FixedPoint, name: str) -> str:
    """A C function ``double -> double``: :meth:`FixedPoint.to_int` (rounding, then overflow)."""
    rnd = round_c(t.rounding, "v")
    lo, hi = float(t.int_min), float(t.int_max)
    if t.overflow == "SAT":
        ovf = f"n = n < {lo!r} ? {lo!r} : n; n = n > {hi!r} ? {hi!r} : n;"
    elif t.overflow == "SAT_SYM":
        lo = -float(t.k) * hi
        ovf = f"n = n < {lo!r} ? {lo!r} : n; n = n > {hi!r} ? {hi!r} : n;"
    else:
        span = 2.0**t.width
        ovf = f"n = std::fmod(n - {lo!r}, {span!r}); if (n < 0) n += {span!r}; n += {lo!r};"
    return f"""static inline double {name}(double x) {{  // {t.hls()}: value * 2**{t.f}, rounded, overflowed
    double v = x * {2.0**t.f!r};
    double n = {rnd};
    {ovf}
    return n;
}}"""


def comb_source(comb: Any, meta: dict[str, Any], lane_bits: int = 32, vector_bytes: int = 16) -> str:
    """C++ of the adder graph: ``extern "C" l1ad_fast_run(x, y, n, n_threads)`` over doubles."""
    t_in = input_fixed_point(meta)
    t_out = FixedPoint.from_dict(meta["output"]["fixed_point"])
    n_in, n_out = comb.shape
    width = lane_bits
    lanes = vector_bytes * 8 // lane_bits
    kifs = [_kif(op.qint) for op in comb.ops]
    refs = comb.ref_count
    body = [
        _op_line(n, op, kifs, comb, width, t_in.f)
        for n, op in enumerate(comb.ops)
        if refs[n] or op.opcode == -1
    ]
    outs = []
    for j, idx in enumerate(comb.out_idxs):
        if idx < 0:
            outs.append(f"    out[{j}] = zero;")
            continue
        outs.append(f"    out[{j}] = v{idx};")
    scales = [
        0.0 if idx < 0 else (-1.0 if neg else 1.0) * 2.0 ** (sh - kifs[idx][2])
        for idx, sh, neg in zip(comb.out_idxs, comb.out_shifts, comb.out_negs, strict=True)
    ]
    return f"""// Generated by l1ad.emulation.fast from the da4ml adder graph of {meta["target"]}:
// {len(comb.ops)} ops, {lanes} events per call in {lane_bits}-bit lanes.
#include <cmath>
#include <cstdint>
#include <cstring>

typedef int{lane_bits}_t T;
typedef T V __attribute__((vector_size({vector_bytes})));
static const int LANES = {lanes};
static const int N_IN = {n_in}, N_OUT = {n_out};
static const double OUT_SCALE[N_OUT] = {{{", ".join(repr(s) for s in scales)}}};

static inline V select(V m, V a, V b) {{ return (a & m) | (b & ~m); }}

{_to_int_c(t_in, "input_int")}

{_to_int_c(t_out, "output_int")}

// One block of LANES events: in[j] holds input j (as an integer of the input type) of each event.
static inline void graph(const V *in, V *out) {{
    const V zero = {{0}};
{chr(10).join(body)}
{chr(10).join(outs)}
}}

// Inputs -> integers of the input type (contiguous, vectorizable), transposed into lanes.
template <typename X> static void block(const X *x, double *y, long n) {{
    T flat[LANES * N_IN], lanes[N_IN][LANES];
    V in[N_IN], out[N_OUT];
    for (long k = 0; k < n * N_IN; k++) flat[k] = (T)input_int((double)x[k]);
    for (long k = n * N_IN; k < LANES * N_IN; k++) flat[k] = 0;
    for (int j = 0; j < N_IN; j++)
        for (int e = 0; e < LANES; e++) lanes[j][e] = flat[e * N_IN + j];
    std::memcpy(in, lanes, sizeof(in));
    graph(in, out);
    for (long e = 0; e < n; e++)
        for (int o = 0; o < N_OUT; o++)
            y[e * N_OUT + o] = output_int((double)out[o][e] * OUT_SCALE[o]) * {t_out.lsb!r};
}}

template <typename X> static void run(const X *x, double *y, long n, int n_threads) {{
    long n_blocks = (n + LANES - 1) / LANES;
    #pragma omp parallel for num_threads(n_threads > 0 ? n_threads : 1) schedule(static)
    for (long b = 0; b < n_blocks; b++) {{
        long start = b * LANES, m = n - start < LANES ? n - start : LANES;
        block<X>(x + start * N_IN, y + start * N_OUT, m);
    }}
}}

extern "C" {{
int l1ad_fast_sizes(int which) {{ return which == 0 ? N_IN : N_OUT; }}
void l1ad_fast_run(const double *x, double *y, long n, int n_threads) {{ run<double>(x, y, n, n_threads); }}
void l1ad_fast_run_f32(const float *x, double *y, long n, int n_threads) {{ run<float>(x, y, n, n_threads); }}
}}
"""


# --------------------------------------------------------------------------- compilation
def cpu_level() -> str:
    """``x86-64-v3`` where this CPU has AVX2 and the rest of that level (``/proc/cpuinfo``), else ``baseline``."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return "baseline"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return "x86-64-v3" if X86_64_V3 <= set(line.split(":", 1)[1].split()) else "baseline"
    except OSError:
        pass
    return "baseline"


# --------------------------------------------------------------------------- the emulator
def load_comb_logic(project_dir: Path) -> Any:
    """The project's whole adder graph (``rtl/model/comb.json``) as a da4ml ``CombLogic``."""
    from da4ml.types import CombLogic

    return CombLogic.load(Path(project_dir) / RTL_DIR / "model" / "comb.json")


class FastEmulator:
    """The fastest bit-exact emulator of a project: ``predict(x (N, n_in)) -> (N, n_out)`` float64.

    DA projects run their adder graph (``rtl/model/comb.json``). Other projects run hls4ml's C++
    at ``-O3``, or, when ``model`` (the QAT Keras model) is given, the adder graph da4ml traces from
    it: ~150x faster, but the *model's* answer, equal to the firmware's only where a C-sim check
    shows it (``firmware emulate`` does not use it for that reason). ``name`` says which path is
    used, ``source`` what it runs.
    """

    def __init__(
        self,
        project_dir: str | Path,
        build_dir: Path | None = None,
        level: str | None = None,
        model: Any = None,
    ) -> None:
        self.project_dir = Path(project_dir)
        self.meta = read_metadata(self.project_dir)
        self.build_dir = Path(build_dir) if build_dir else self.project_dir / "fast"
        self.level = level or cpu_level()
        self.n_in, self.n_out = self.meta["input"]["size"], self.meta["output"]["size"]
        self._comb, self._fn, self._fn32 = None, None, None
        comb_file = self.project_dir / RTL_DIR / "model" / "comb.json"
        if self.meta["strategy"] == "distributed_arithmetic" and comb_file.is_file():
            self._use_graph(load_comb_logic(self.project_dir), str(comb_file))
        elif model is not None:
            from l1ad.hls.rtl import trace_comb

            self._use_graph(trace_comb(model, self.meta), "adder graph traced from the QAT model")
        else:
            self._use_hls()

    def _flags(self, flags: tuple[str, ...]) -> tuple[str, ...]:
        return (*flags, "-march=x86-64-v3") if self.level == "x86-64-v3" else flags

    def _use_graph(self, comb: Any, origin: str) -> None:
        why = unsupported(comb)
        if tuple(comb.shape) != (self.n_in, self.n_out):
            why = f"shape {tuple(comb.shape)}, not the project's"
        if why is not None:
            logger.info("%s: adder graph has %s: da4ml's interpreter", self.meta["target"], why)
            self._comb, self.name, self.source, self.lib_path = comb, "da4ml-interpreter", origin, None
            return
        bits = max(comb_bits_needed(comb), input_fixed_point(self.meta).width + 2)
        lane_bits = 32 if bits <= 31 else 64
        vector_bytes = 32 if self.level == "x86-64-v3" else 16
        src = comb_source(comb, self.meta, lane_bits, vector_bytes)
        self.name = f"da4ml-graph-c++ ({vector_bytes * 8 // lane_bits} x {lane_bits}-bit lanes, {self.level})"
        self.source = origin
        self.lib_path = build_shared(
            {"graph.cpp": src}, [], self._flags(COMB_FLAGS), self.build_dir / "graph", []
        )
        self._fn, self._fn32 = self._bind("l1ad_fast_run"), self._bind("l1ad_fast_run_f32")

    def _use_hls(self) -> None:
        from l1ad.emulation.csim import bridge_source, common_source

        ns, top = self.meta["namespace"], self.meta["project_name"]
        fw = self.project_dir / "firmware"
        self.name, self.source = f"hls4ml-c++ {LATENCY_FLAGS[0]}", str(fw / f"{top}.cpp")
        self.lib_path = build_shared(
            {"common.cpp": common_source(), f"bridge_{ns}.cpp": bridge_source(self.meta)},
            [fw / f"{top}.cpp"],
            self._flags(LATENCY_FLAGS),
            self.build_dir / "hls",
            [fw / "ap_types", fw, self.project_dir],
            hashed=[fw],  # the sources: not the project's generated, vendor or export trees
        )
        self._fn = self._bind(f"l1ad_run_{ns}")

    def _bind(self, symbol: str) -> Any:
        self._lib = getattr(self, "_lib", None) or ctypes.CDLL(str(self.lib_path))
        fn = getattr(self._lib, symbol)
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long, ctypes.c_int]
        return fn

    def predict(self, x: np.ndarray, n_threads: int | None = None) -> np.ndarray:
        """Firmware outputs (N, n_out) float64 of network inputs (N, n_in); threads default: all cores.

        float32 inputs go to the adder-graph library as they are (no float64 copy). NaN inputs are
        refused: the firmware input conversion of NaN is not defined.
        """
        x = np.asarray(x)
        f32 = x.dtype == np.float32 and self._fn32 is not None
        x = np.ascontiguousarray(x, dtype=np.float32 if f32 else np.float64)
        x = x.reshape(len(x), -1) if len(x) else x.reshape(0, self.n_in)
        if x.shape[1] != self.n_in:
            raise ValueError(f"{self.meta['target']}: expected {self.n_in} inputs, got {x.shape[1]}")
        if np.isnan(x).any():
            raise ValueError(
                f"{self.meta['target']}: NaN inputs (the firmware input conversion is undefined)"
            )
        threads = n_threads or os.cpu_count() or 1
        if self._comb is not None:
            from l1ad.emulation.rtl_sim import comb_predict

            return _output_cast(comb_predict(self._comb, x, self.meta, n_threads=threads), self.meta)
        y = np.empty((len(x), self.n_out), dtype=np.float64)
        if len(x):
            (self._fn32 if f32 else self._fn)(x.ctypes.data, y.ctypes.data, len(x), threads)
        return y


def _output_cast(y: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """The adder graph's outputs in the firmware output type (as the hls4ml top function writes them)."""
    return FixedPoint.from_dict(meta["output"]["fixed_point"]).quantize(y)
