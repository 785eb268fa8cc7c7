"""Open-source resource estimate of da4ml Verilog with Yosys ``synth_xilinx``.

:func:`yosys_script` and :func:`parse_stat` are pure; :func:`run_yosys` runs the tool (cached in
``<project>/yosys/`` by a hash of the Verilog). Counts are Yosys' technology-mapped cells, not a
placed-and-routed Vivado result: an estimate, labelled ``yosys`` in reports.

Cell families: ``LUT`` = LUT1..LUT6 (+ LUT-based shift registers SRL16E/SRLC32E, also counted in
``SRL``), ``FF`` = FDRE/FDSE/FDCE/FDPE, ``CARRY`` = CARRY4/CARRY8, ``DSP`` = DSP48E1/DSP48E2,
``BRAM_18K`` = RAMB18E* + 2 x RAMB36E*, ``MUXF`` = MUXF7/8/9, ``INV`` (Vivado folds them into LUTs).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from l1ad.core.files import atomic_write_text

logger = logging.getLogger(__name__)

YOSYS_DIR = "yosys"


def yosys_family(part: str) -> str:
    """``synth_xilinx -family`` of a part: UltraScale+ (xcvu*p, xcku*p, xczu) -> xcup, 7-series -> xc7."""
    p = part.lower()
    if p.startswith("xc7"):
        return "xc7"
    if re.match(r"xc(vu|ku)\d+p|xczu", p):
        return "xcup"
    if p.startswith(("xcvu", "xcku")):
        return "xcu"
    raise ValueError(f"no Yosys synth_xilinx family known for part {part!r}")


def verilog_sources(rtl_dir: Path) -> list[Path]:
    """The Verilog files of a da4ml project (the table primitive only when it has memory files)."""
    src = Path(rtl_dir) / "src"
    static = sorted((src / "static").glob("*.v"))
    if not any((src / "memfiles").glob("*")):
        static = [p for p in static if p.name != "lookup_table.v"]
    return static + sorted(p for p in src.glob("*.v"))


def yosys_script(
    sources: list[str], top: str, family: str, stat_file: str = "stat.txt", nodsp: bool = False
) -> str:
    """The synthesis script: read, flatten, map to Xilinx cells, write the cell statistics.

    ``nodsp``: map every multiplier to LUTs (``synth_xilinx -nodsp``), for designs that must not use DSPs.
    """
    reads = "\n".join(f"read_verilog -sv {s}" for s in sources)
    return f"""{reads}
synth_xilinx -family {family} -flatten{" -nodsp" if nodsp else ""} -top {top}
tee -q -o {stat_file} stat
"""


_CELL = re.compile(r"^\s+(\w+)\s+(\d+)\s*$")


def parse_stat(text: str) -> dict[str, Any]:
    """Yosys ``stat`` output (of the flattened top) -> ``{"cells": {...}, "LUT", "FF", ...}``."""
    cells: dict[str, int] = {}
    in_cells = False
    for line in text.splitlines():
        if "Number of cells:" in line:
            in_cells, cells = True, {}
            continue
        if in_cells:
            m = _CELL.match(line)
            if m:
                cells[m.group(1)] = int(m.group(2))
            elif line.strip():
                in_cells = False
    if not cells:
        raise ValueError("yosys stat: no 'Number of cells' table")

    def total(pattern: str) -> int:
        return sum(n for name, n in cells.items() if re.fullmatch(pattern, name))

    srl = total(r"SRL16E|SRLC32E")
    return {
        "LUT": total(r"LUT[1-6](_2)?") + srl,
        "FF": total(r"FD[RSCP]E"),
        "CARRY": total(r"CARRY[48]"),
        "DSP": total(r"DSP48E\d?"),
        "BRAM_18K": total(r"RAMB18E\d?") + 2 * total(r"RAMB36E\d?"),
        "SRL": srl,
        "MUXF": total(r"MUXF[789]"),
        "INV": cells.get("INV", 0),
        "cells": dict(sorted(cells.items())),
    }


def _sources_hash(sources: list[Path], top: str, family: str) -> str:
    h = hashlib.sha256(f"{top}:{family}".encode())
    for s in sources:
        h.update(s.name.encode() + s.read_bytes())
    return h.hexdigest()[:16]


def run_yosys(
    project_dir: Path, part: str, top: str = "l1ad_model", timeout: float = 1800, nodsp: bool = False
) -> dict[str, Any]:
    """Synthesize ``<project>/rtl`` with Yosys; result cached in ``<project>/yosys/result.json``."""
    exe = shutil.which("yosys")
    if exe is None:
        raise RuntimeError("yosys not found (apt-get install yosys)")
    rtl_dir = Path(project_dir) / "rtl"
    sources = verilog_sources(rtl_dir)
    if not sources:
        raise FileNotFoundError(f"{rtl_dir}: no Verilog (run `l1ad firmware build` on a DA target)")
    family = yosys_family(part)
    out_dir = Path(project_dir) / YOSYS_DIR
    out_dir.mkdir(exist_ok=True)
    key = _sources_hash(sources, top, family + (" -nodsp" if nodsp else ""))
    cached = out_dir / "result.json"
    if cached.is_file():
        result = json.loads(cached.read_text())
        if result.get("key") == key:
            return result
    script = out_dir / "synth.ys"
    script.write_text(yosys_script([str(s.resolve()) for s in sources], top, family, nodsp=nodsp))
    t0 = time.perf_counter()
    proc = subprocess.run(
        [exe, "-q", "-l", "yosys.log", "-s", "synth.ys"],
        cwd=out_dir,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"yosys failed (see {out_dir / 'yosys.log'}):\n{(proc.stderr or proc.stdout)[-2000:]}"
        )
    version = subprocess.run([exe, "-V"], capture_output=True, text=True).stdout.strip()
    result = parse_stat((out_dir / "stat.txt").read_text())
    result.update(key=key, family=family, nodsp=nodsp, seconds=round(time.perf_counter() - t0, 1))
    result["version"] = version
    atomic_write_text(cached, json.dumps(result, indent=1, sort_keys=True) + "\n")
    logger.info(
        "yosys: %d LUT, %d FF, %d CARRY, %d DSP in %.0f s",
        result["LUT"],
        result["FF"],
        result["CARRY"],
        result["DSP"],
        result["seconds"],
    )
    return result
