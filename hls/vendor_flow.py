"""The vendor flow of a generated project: HLS C-synthesis (Vitis HLS / Vivado HLS), then Vivado
synthesis, place and route for utilization and timing, when the tools are on PATH.

Steps (``l1ad firmware build TARGET --synth [--export-ip]``), run in the project directory:

1. HLS, as hls4ml 1.3 runs it: the Vitis backend reads its options from ``build_opt.tcl`` and runs
   ``vitis-run --tcl build_prj.tcl --mode hls`` (``vitis_hls -f build_prj.tcl`` on installs older
   than 2024.2); the Vivado backend runs ``vivado_hls -f build_prj.tcl "reset=0 csim=0 synth=1 ..."``.
   C simulation and co-simulation are off (``l1ad firmware emulate`` does the bit-exact check);
   ``export`` packages the IP (``<prj>/solution1/impl/ip``).
2. Vivado (``vivado -mode batch -source l1ad_vivado.tcl``): out-of-context synthesis of the HLS
   Verilog with the target's clock on ``ap_clk``, then place and route. It writes, in the project
   directory, the reports :func:`l1ad.reports.vendor.find_vendor_reports` reads (:data:`VIVADO_REPORTS`).

Everything the tools print goes to ``<project>/vendor_build.log``. A missing tool raises
:class:`VendorToolMissing` before anything runs; a tool that fails raises :class:`VendorFlowError`
with the end of the log. Every function except :func:`find_vendor_tool` and :func:`run_vendor_flow`
is pure.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from l1ad.core.files import atomic_write_text
from l1ad.hls.metadata import read_metadata
from l1ad.hls.target import FirmwareTarget

logger = logging.getLogger(__name__)

#: The implementation step (Vivado synthesis, place and route), beside the HLS backends.
IMPLEMENTATION = "implementation"
#: Executables of each step, in order of preference (Vitis 2024.2 dropped ``vitis_hls``).
TOOLS = {"Vitis": ("vitis-run", "vitis_hls"), "Vivado": ("vivado_hls",), IMPLEMENTATION: ("vivado",)}
_WHAT = {"Vitis": "Vitis HLS", "Vivado": "Vivado HLS", IMPLEMENTATION: "Vivado"}
_SETTINGS = {
    "Vitis": "<Xilinx>/Vitis/<version>/settings64.sh (or Vitis_HLS/<version>)",
    "Vivado": "<Xilinx>/Vivado/<version>/settings64.sh (Vivado HLS, 2020.1 or older)",
    IMPLEMENTATION: "<Xilinx>/Vivado/<version>/settings64.sh",
}
LOG_FILE = "vendor_build.log"
VIVADO_TCL = "l1ad_vivado.tcl"
CLOCK_XDC = "l1ad_clock.xdc"
#: Reports the Vivado step writes, by what they are.
VIVADO_REPORTS = {
    "synth_utilization": "vivado_synth.rpt",
    "synth_timing": "vivado_timing_synth.rpt",
    "route_utilization": "vivado_util_route.rpt",
    "route_timing": "vivado_timing_route.rpt",
}


class VendorToolMissing(RuntimeError):
    """A vendor tool the flow needs is not on PATH; ``missing`` lists the steps."""

    def __init__(self, missing: list[str], backend: str):
        self.missing = missing
        lines = [
            f"{_WHAT[step]} not found: none of {', '.join(TOOLS[step])} is on PATH "
            f"(needed for {'C synthesis of the ' + backend + ' backend' if step != IMPLEMENTATION else 'post-synthesis and post-route utilization and timing'}); "
            f"source {_SETTINGS[step]} or add its bin/ directory to PATH"
            for step in missing
        ]  # fmt: skip
        lines.append(
            "until then `l1ad firmware report` uses the model ESTIMATE (Latency strategy) or the "
            "Yosys/da4ml figures (distributed arithmetic)"
        )
        super().__init__("; ".join(lines))


class VendorFlowError(RuntimeError):
    """A vendor tool exited with an error, or did not write the report it should have."""


def find_vendor_tool(step: str) -> str | None:
    """Path of the first executable of ``step`` (a backend, ``Vitis``/``Vivado``, or
    :data:`IMPLEMENTATION`) on PATH; None if there is none."""
    if step not in TOOLS:
        raise ValueError(f"unknown vendor flow step {step!r}; expected one of {', '.join(TOOLS)}")
    return next((path for path in map(shutil.which, TOOLS[step]) if path), None)


def build_options(synth: bool = True, export_ip: bool = False, vsynth: bool = False) -> dict[str, int]:
    """The hls4ml ``build_prj.tcl`` options: C synthesis, IP export and hls4ml's own Vivado synthesis
    (``vivado_synth.tcl``) as asked; never reset, C simulation, co-simulation, validation or FIFO depth
    optimization."""
    return {
        "reset": 0,
        "csim": 0,
        "synth": int(synth),
        "cosim": 0,
        "validation": 0,
        "export": int(export_ip),
        "vsynth": int(vsynth),
        "fifo_opt": 0,
    }


def build_opt_tcl(options: dict[str, int]) -> str:
    """``build_opt.tcl``, where hls4ml's Vitis ``build_prj.tcl`` reads its options."""
    body = "".join(f"    {name:<10} {value}\n" for name, value in options.items())
    return f"array set opt {{\n{body}}}\n"


def vendor_command(
    project_dir: str | Path,
    backend: str,
    synth: bool = True,
    export_ip: bool = False,
    vsynth: bool = True,
    tool: str | None = None,
) -> list[str]:
    """The HLS command line for ``backend`` (run it in ``project_dir``).

    ``tool``: the executable (its name or path), default the backend's first (:data:`TOOLS`). The
    Vitis backend takes its options from ``build_opt.tcl`` (:func:`build_opt_tcl`), so for it the
    flags only matter through that file; Vivado HLS takes them on the command line.
    """
    if backend not in ("Vitis", "Vivado"):
        raise ValueError(f"unknown backend {backend!r}; expected Vitis or Vivado")
    tool = tool or TOOLS[backend][0]
    script = str(Path(project_dir) / "build_prj.tcl")
    if Path(tool).name == "vitis-run":
        return [tool, "--tcl", script, "--mode", "hls"]
    if backend == "Vitis":
        return [tool, "-f", script]
    options = " ".join(f"{k}={v}" for k, v in build_options(synth, export_ip, vsynth).items())
    return [tool, "-f", script, options]


def clock_xdc(clock_period_ns: float) -> str:
    """The clock constraint of the HLS top (``ap_clk``) at the target's period."""
    return f"create_clock -period {clock_period_ns:g} -name ap_clk [get_ports ap_clk]\n"


def vivado_tcl(top: str, part: str) -> str:
    """The Vivado batch script: out-of-context synthesis of the HLS Verilog of ``top`` on ``part``
    with :data:`CLOCK_XDC`, then place and route, writing :data:`VIVADO_REPORTS`."""
    r = VIVADO_REPORTS
    return "\n".join(
        [
            "# written by l1ad (l1ad.hls.vendor_flow): Vivado synthesis, place and route of the HLS output",
            f"add_files {top}_prj/solution1/syn/verilog",
            f"read_xdc {CLOCK_XDC}",
            f"synth_design -top {top} -part {part} -mode out_of_context",
            "opt_design",
            f"report_utilization -file {r['synth_utilization']}",
            f"report_timing_summary -file {r['synth_timing']}",
            "place_design",
            "route_design",
            f"report_utilization -file {r['route_utilization']}",
            f"report_timing_summary -file {r['route_timing']}",
            "",
        ]
    )


def vivado_command(project_dir: str | Path, tool: str = "vivado") -> list[str]:
    """The Vivado command line that runs :data:`VIVADO_TCL` (run it in ``project_dir``)."""
    script = str(Path(project_dir) / VIVADO_TCL)
    return [tool, "-mode", "batch", "-nojournal", "-nolog", "-notrace", "-source", script]


def _run_logged(command: list[str], cwd: Path, log: Path, timeout_s: float | None) -> float:
    """Run ``command`` in ``cwd``, its stdout and stderr appended to ``log`` as they come."""
    t0 = time.perf_counter()
    with log.open("a") as out:
        out.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} $ {' '.join(command)}\n")
        out.flush()
        try:
            rc = subprocess.run(
                command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s
            ).returncode
        except subprocess.TimeoutExpired:
            raise VendorFlowError(f"{command[0]} ran past {timeout_s:g} s; see {log}") from None
    if rc != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise VendorFlowError(
            f"{Path(command[0]).name} failed (exit {rc}); see {log}; its last lines:\n{tail}"
        )
    return time.perf_counter() - t0


def run_vendor_flow(
    project_dir: str | Path,
    target: FirmwareTarget,
    export_ip: bool = False,
    implement: bool = True,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """Run HLS C-synthesis (and, with ``implement``, Vivado synthesis, place and route) on a project
    written by ``l1ad firmware build``; the log goes to ``<project>/vendor_build.log``.

    Returns ``{"backend", "tools", "commands", "log", "seconds", "reports", "ip"}``: the executables,
    the command lines, per-step wall time, the report files written and the exported IP archives.
    Raises :class:`VendorToolMissing` before running anything if a tool is missing, and
    :class:`VendorFlowError` if one fails.
    """
    project = Path(project_dir).resolve()
    meta = read_metadata(project)
    top = target.project_name
    if meta.get("project_name") != top:
        raise ValueError(
            f"{project} is the project of top {meta.get('project_name')!r}, not of target {target.name!r} ({top!r})"
        )
    steps = [target.backend] + ([IMPLEMENTATION] if implement else [])
    tools = {step: find_vendor_tool(step) for step in steps}
    missing = [step for step, path in tools.items() if path is None]
    if missing:
        raise VendorToolMissing(missing, target.backend)

    log = project / LOG_FILE
    log.write_text("")
    hls = vendor_command(
        project, target.backend, export_ip=export_ip, vsynth=False, tool=tools[target.backend]
    )
    commands, seconds = [hls], {}
    if target.backend == "Vitis":
        atomic_write_text(
            project / "build_opt.tcl", build_opt_tcl(build_options(True, export_ip, vsynth=False))
        )
    logger.info("%s: %s C synthesis (log: %s)", target.name, _WHAT[target.backend], log)
    seconds["hls"] = _run_logged(hls, project, log, timeout_s)
    csynth = sorted((project / f"{top}_prj").glob(f"solution*/syn/report/{top}_csynth.xml"))
    if not csynth:
        raise VendorFlowError(f"{_WHAT[target.backend]} wrote no {top}_csynth.xml under {top}_prj; see {log}")
    reports = [str(csynth[0])]

    if implement:
        atomic_write_text(project / CLOCK_XDC, clock_xdc(target.clock_period_ns))
        atomic_write_text(project / VIVADO_TCL, vivado_tcl(top, target.part))
        impl = vivado_command(project, tools[IMPLEMENTATION])
        commands.append(impl)
        logger.info("%s: Vivado synthesis, place and route (log: %s)", target.name, log)
        seconds["vivado"] = _run_logged(impl, project, log, timeout_s)
        absent = [name for name in VIVADO_REPORTS.values() if not (project / name).is_file()]
        if absent:
            raise VendorFlowError(f"Vivado did not write {', '.join(absent)}; see {log}")
        reports += [str(project / name) for name in VIVADO_REPORTS.values()]
    ip = []  # Vitis HLS: solution1/impl/export.zip; Vivado HLS: solution1/impl/ip/<vendor>_<top>_<version>.zip
    for pattern in ("solution*/impl/export.zip", "solution*/impl/ip/*.zip") if export_ip else ():
        ip += sorted(str(p) for p in (project / f"{top}_prj").glob(pattern))
    return {
        "backend": target.backend,
        "tools": tools,
        "commands": commands,
        "log": str(log),
        "seconds": seconds,
        "reports": reports,
        "ip": ip,
    }
