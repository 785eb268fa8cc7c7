"""Parsers for the reports written by the vendor tools (Vivado HLS, Vitis HLS, Vivado).

Every ``parse_*`` function is pure: report text in, a plain JSON-serializable dict out, no file
I/O. They raise ``ValueError`` naming the missing field when the text is not a report of the
expected kind. :func:`find_vendor_reports` is the only function that touches the file system: it
locates the reports in an hls4ml project directory, reads them, and adds the file name to any
parse error.

Resource names are normalized across tool versions: ``LUT``, ``FF``, ``DSP`` (Vivado HLS says
``DSP48E``, Vitis HLS ``DSP``), ``BRAM_18K`` and ``URAM`` (only when the report has it).

The C-synthesis summary dict (``parse_csynth_xml`` and ``parse_csynth_rpt`` return the same keys)::

    tool_version, top, part, product_family, target_clock_ns, clock_uncertainty_ns,
    estimated_clock_ns, latency_best_cycles, latency_worst_cycles, interval_min, interval_max,
    pipeline_type, resources {LUT, FF, DSP, BRAM_18K[, URAM]}, available {same keys}

Vivado's own reports (``report_utilization``, ``report_timing_summary``) are parsed by
:mod:`l1ad.reports.vivado`; its parsers are re-exported here.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from l1ad.reports.vivado import parse_vivado_synth_rpt, parse_vivado_timing_summary, parse_vivado_utilization

__all__ = ["find_vendor_reports", "parse_app", "parse_csynth_rpt", "parse_csynth_xml"]
__all__ += [
    "parse_vivado_synth_rpt",
    "parse_vivado_timing_summary",
    "parse_vivado_utilization",
]  # l1ad.reports.vivado

logger = logging.getLogger(__name__)

VIVADO_HLS = "Vivado HLS"
VITIS_HLS = "Vitis HLS"

_RESOURCE_ALIASES = {
    "LUT": "LUT",
    "FF": "FF",
    "DSP": "DSP",
    "DSP48E": "DSP",
    "DSP48E1": "DSP",
    "DSP48E2": "DSP",
    "BRAM_18K": "BRAM_18K",
    "URAM": "URAM",
}
_REQUIRED_RESOURCES = ("LUT", "FF", "DSP", "BRAM_18K")
_RESOURCE_ORDER = ("LUT", "FF", "DSP", "BRAM_18K", "URAM")
# Values the tools print where a number is unknown (unbounded loops and the like).
_UNDEFINED = {"undef", "?", "", "-", "N/A"}


# --------------------------------------------------------------------------- helpers
def _number(text: str | None, what: str) -> float | None:
    """Parse ``'5.00'``, ``'4.049 ns'`` or ``'undef'`` (-> None); raise ValueError otherwise."""
    value = (text or "").strip().removesuffix("ns").strip()
    if value in _UNDEFINED:
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{what}: expected a number, got {text!r}") from None


def _count(text: str | None, what: str) -> int | None:
    value = _number(text, what)
    if value is None:
        return None
    if value != int(value):
        raise ValueError(f"{what}: expected an integer, got {text!r}")
    return int(value)


def _normalize_resources(raw: dict[str, str], what: str) -> dict[str, int]:
    """Map vendor resource names to LUT/FF/DSP/BRAM_18K/URAM; '-' counts as 0."""
    out: dict[str, int] = {}
    for name, text in raw.items():
        key = _RESOURCE_ALIASES.get(name.strip())
        if key is None:
            continue
        value = _count(text, f"{what} {name}")
        out[key] = 0 if value is None else value
    missing = [key for key in _REQUIRED_RESOURCES if key not in out]
    if missing:
        raise ValueError(f"{what}: missing resource(s) {', '.join(missing)}")
    return {key: out[key] for key in _RESOURCE_ORDER if key in out}


def _parse_xml(text: str, what: str) -> ET.Element:
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(f"not a valid {what} XML document ({exc})") from None


def _require_text(root: ET.Element, path: str, what: str) -> str:
    node = root.find(path)
    if node is None or node.text is None or not node.text.strip():
        raise ValueError(f"{what}: missing <{path}>")
    return node.text.strip()


def _optional_text(root: ET.Element, path: str) -> str | None:
    node = root.find(path)
    return None if node is None or node.text is None else node.text.strip()


# --------------------------------------------------------------------------- csynth.xml
def parse_csynth_xml(text: str) -> dict[str, Any]:
    """Parse a Vivado HLS / Vitis HLS ``<top>_csynth.xml`` C-synthesis report."""
    what = "csynth.xml"
    root = _parse_xml(text, what)
    if root.tag != "profile":
        raise ValueError(f"{what}: root element is <{root.tag}>, expected <profile>")
    perf = "PerformanceEstimates"
    lat = f"{perf}/SummaryOfOverallLatency"

    def area(section: str) -> dict[str, str]:
        node = root.find(f"AreaEstimates/{section}")
        if node is None:
            raise ValueError(f"{what}: missing <AreaEstimates/{section}>")
        return {child.tag: child.text or "" for child in node}

    return {
        "tool_version": _optional_text(root, "ReportVersion/Version"),
        "top": _require_text(root, "UserAssignments/TopModelName", what),
        "part": _require_text(root, "UserAssignments/Part", what),
        "product_family": _optional_text(root, "UserAssignments/ProductFamily"),
        "target_clock_ns": _number(_require_text(root, "UserAssignments/TargetClockPeriod", what), what),
        "clock_uncertainty_ns": _number(_optional_text(root, "UserAssignments/ClockUncertainty"), what),
        "estimated_clock_ns": _number(
            _require_text(root, f"{perf}/SummaryOfTimingAnalysis/EstimatedClockPeriod", what), what
        ),
        "latency_best_cycles": _count(_require_text(root, f"{lat}/Best-caseLatency", what), what),
        "latency_worst_cycles": _count(_require_text(root, f"{lat}/Worst-caseLatency", what), what),
        "interval_min": _count(_require_text(root, f"{lat}/Interval-min", what), what),
        "interval_max": _count(_require_text(root, f"{lat}/Interval-max", what), what),
        "pipeline_type": _optional_text(root, f"{perf}/PipelineType"),
        "resources": _normalize_resources(area("Resources"), f"{what} Resources"),
        "available": _normalize_resources(area("AvailableResources"), f"{what} AvailableResources"),
    }


# --------------------------------------------------------------------------- text tables
def _cells(line: str) -> list[str]:
    """``'| a | b |'`` -> ``['a', 'b']``."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _table_rows(lines: list[str]) -> list[list[str]]:
    return [_cells(line) for line in lines if line.strip().startswith("|")]


def _section(text: str, title: str) -> list[str]:
    """Lines of the ``== <title>`` section of a Vivado/Vitis HLS text report."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == f"== {title}"), None)
    if start is None:
        raise ValueError(f"csynth.rpt: missing section '== {title}'")
    end = next((i for i in range(start + 2, len(lines)) if lines[i].startswith("== ")), len(lines))
    return lines[start + 1 : end]


def _block(lines: list[str], marker: str, stop: str) -> list[str]:
    """Lines after the one starting with ``marker`` and before the next one starting with ``stop``."""
    stripped = [line.strip() for line in lines]
    start = next((i for i, line in enumerate(stripped) if line.startswith(marker)), None)
    if start is None:
        raise ValueError(f"csynth.rpt: missing '{marker}' block")
    end = next((i for i in range(start + 1, len(lines)) if stripped[i].startswith(stop)), len(lines))
    return lines[start + 1 : end]


def _header_field(text: str, name: str) -> str | None:
    match = re.search(rf"^\*\s*{re.escape(name)}:\s*(.+?)\s*$", text, re.MULTILINE)
    return match.group(1) if match else None


def parse_csynth_rpt(text: str) -> dict[str, Any]:
    """Parse a Vivado HLS / Vitis HLS ``<top>_csynth.rpt`` text report (same keys as the xml)."""
    what = "csynth.rpt"
    title = re.search(r"^== (?:Vivado|Vitis) HLS Report for '([^']+)'", text, re.MULTILINE)
    if title is None:
        raise ValueError(f"{what}: missing the \"== Vivado/Vitis HLS Report for '<top>'\" title")
    part = _header_field(text, "Target device")
    if part is None:
        raise ValueError(f"{what}: missing '* Target device:' header line")
    version = _header_field(text, "Version")

    perf = _section(text, "Performance Estimates")
    timing = _table_rows(_block(perf, "+ Timing:", "+ Latency:"))
    if len(timing) < 2 or timing[0][:3] != ["Clock", "Target", "Estimated"]:
        raise ValueError(f"{what}: missing the Timing summary table (Clock | Target | Estimated)")
    clock = timing[1]
    latency_rows = _table_rows(_block(perf, "+ Latency:", "+ Detail:"))
    # Two header rows ('Latency (cycles)...', 'min | max ...'), then one data row.
    data = [row for row in latency_rows if row and re.fullmatch(r"\d+|undef|\?", row[0])]
    if not data or len(data[0]) < 6:
        raise ValueError(f"{what}: missing the Latency summary data row")
    latency = data[0]

    summary = _table_rows(_block(_section(text, "Utilization Estimates"), "* Summary:", "+ Detail:"))
    header = next((row for row in summary if row and row[0] == "Name"), None)
    if header is None:
        raise ValueError(f"{what}: missing the Utilization Estimates summary header (Name | ...)")
    by_name = {row[0]: dict(zip(header[1:], row[1:], strict=False)) for row in summary}
    for row_name in ("Total", "Available"):
        if row_name not in by_name:
            raise ValueError(f"{what}: missing the Utilization Estimates '{row_name}' row")

    return {
        "tool_version": version.split()[0] if version else None,
        "top": title.group(1),
        "part": part,
        "product_family": _header_field(text, "Product family"),
        "target_clock_ns": _number(clock[1], f"{what} target clock"),
        "clock_uncertainty_ns": _number(clock[3], f"{what} clock uncertainty") if len(clock) > 3 else None,
        "estimated_clock_ns": _number(clock[2], f"{what} estimated clock"),
        "latency_best_cycles": _count(latency[0], f"{what} latency min"),
        "latency_worst_cycles": _count(latency[1], f"{what} latency max"),
        "interval_min": _count(latency[4], f"{what} interval min"),
        "interval_max": _count(latency[5], f"{what} interval max"),
        "pipeline_type": latency[6] if len(latency) > 6 else None,
        "resources": _normalize_resources(by_name["Total"], f"{what} Total"),
        "available": _normalize_resources(by_name["Available"], f"{what} Available"),
    }


# --------------------------------------------------------------------------- .app
def parse_app(text: str) -> dict[str, Any]:
    """Parse an HLS project file (``vivado_hls.app`` / ``hls.app``).

    The tool is inferred from the content: Vitis HLS writes an ``ideType`` attribute on the
    project element, Vivado HLS does not (:func:`find_vendor_reports` trusts the file name first).
    """
    what = "HLS .app"
    root = _parse_xml(text, what)
    if root.tag.rsplit("}", 1)[-1] != "project":
        raise ValueError(f"{what}: root element is <{root.tag}>, expected <AutoPilot:project>")
    top = root.get("top")
    if not top:
        raise ValueError(f"{what}: project element has no 'top' attribute")
    part = clock = None
    for node in root.iter():
        for attr, value in node.attrib.items():
            name = attr.rsplit("}", 1)[-1].lower()
            if name in ("part", "device") and part is None:
                part = value
            elif name in ("clock", "period", "clockperiod") and clock is None:
                clock = value
    solutions = [node.get("name") for node in root.iter() if node.tag.rsplit("}", 1)[-1] == "solution"]
    return {
        "tool": VITIS_HLS if "ideType" in root.attrib else VIVADO_HLS,
        "project": root.get("name"),
        "top": top,
        "part": part,
        "clock": clock,
        "solutions": [name for name in solutions if name],
    }


# --------------------------------------------------------------------------- file level
_APP_FILES = {"hls.app": VITIS_HLS, "vivado_hls.app": VIVADO_HLS}


def _read_parsed(path: Path, parser: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    try:
        return parser(path.read_text(errors="replace"))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def find_vendor_reports(project_dir: str | Path) -> dict[str, Any] | None:
    """Locate, read and parse the vendor reports of an hls4ml project; None when there are none.

    Looks in ``project_dir`` and its ``*_prj`` subdirectories for the ``hls.app`` /
    ``vivado_hls.app`` project file and ``solution*/syn/report/<top>_csynth.{xml,rpt}``, and for
    ``vivado_synth.rpt`` in ``project_dir`` or the ``<prj>`` directory. Other ``*.rpt`` files there
    that are Vivado reports (by content) are read too: ``vivado_route`` is the post-route
    ``report_utilization`` (None if none), ``timing`` the ``report_timing_summary`` parses keyed by
    stage (``synth``/``place``/``route`` from the file name, else ``unknown``), each with its ``file``.
    """
    root = Path(project_dir)
    files: list[Path] = []
    app: dict[str, Any] | None = None
    tool: str | None = None
    csynth: dict[str, Any] | None = None
    prj_dir: Path | None = None
    # project_dir itself (an HLS <prj> dir), then hls4ml's <output>/<name>_prj dirs.
    for prj in [root, *sorted(p for p in root.glob("*_prj") if p.is_dir())]:
        apps = [(prj / name, name_tool) for name, name_tool in _APP_FILES.items() if (prj / name).is_file()]
        top = None
        if apps:
            app_path, tool = apps[0]
            app = _read_parsed(app_path, parse_app)
            files.append(app_path)
            top = app["top"]
        elif prj.name.endswith("_prj"):
            top = prj.name.removesuffix("_prj")
        reports = sorted(prj.glob("*/syn/report"))
        pattern = f"{top}_csynth" if top else "*_csynth"
        xmls = [p for d in reports for p in sorted(d.glob(f"{pattern}.xml"))]
        rpts = [p for d in reports for p in sorted(d.glob(f"{pattern}.rpt"))]
        if not top and len(xmls) + len(rpts) > 2:
            logger.warning("%s: no project file names the top function; several csynth reports", prj)
        if xmls:
            csynth = _read_parsed(xmls[0], parse_csynth_xml)
            files.append(xmls[0])
        if rpts:
            from_rpt = _read_parsed(rpts[0], parse_csynth_rpt)
            files.append(rpts[0])
            if csynth is None:
                csynth = from_rpt
            elif from_rpt != csynth:
                logger.warning("%s and %s disagree; using the xml", xmls[0], rpts[0])
        if app is not None or csynth is not None:
            prj_dir = prj
            break

    vivado_synth = None
    for candidate in dict.fromkeys([root / "vivado_synth.rpt", (prj_dir or root) / "vivado_synth.rpt"]):
        if candidate.is_file():
            vivado_synth = _read_parsed(candidate, parse_vivado_synth_rpt)
            files.append(candidate)
            break
    vivado_route, timing = _find_vivado_reports([root, prj_dir or root], files)

    if csynth is None and vivado_synth is None and vivado_route is None and not timing:
        if app is not None:
            logger.info("%s: HLS project file but no synthesis report yet", root)
        return None
    if tool is None and csynth is not None:
        tool = _tool_from_version(csynth.get("tool_version"))
    return {
        "source": "vendor",
        "tool": tool,
        "app": app,
        "csynth": csynth,
        "vivado_synth": vivado_synth,
        "vivado_route": vivado_route,
        "timing": timing,
        "files": [str(path) for path in files],
    }


def _timing_stage(name: str) -> str:
    """Stage of a timing report from its file name (the header does not say): route, place, synth."""
    lower = name.lower()
    for stage, words in (("route", ("route", "impl")), ("place", ("place",)), ("synth", ("synth",))):
        if any(word in lower for word in words):
            return stage
    return "unknown"


def _find_vivado_reports(dirs: list[Path], files: list[Path]) -> tuple[dict | None, dict[str, dict]]:
    """The post-route ``report_utilization`` (Design State: Routed) and the ``report_timing_summary``
    files per stage among the ``*.rpt`` files of ``dirs`` (``vivado_synth.rpt`` is read by the caller).

    A file is classified by its content (the ``Command`` header line or the report title)."""
    route = None
    timing: dict[str, dict[str, Any]] = {}
    for path in sorted({p for d in dict.fromkeys(dirs) for p in d.glob("*.rpt") if p.is_file()}):
        if path.name == "vivado_synth.rpt":
            continue
        head = path.read_text(errors="replace")[:4000]
        if "report_timing_summary" in head or "Timing Summary Report" in head:
            stage = _timing_stage(path.name)
            if stage in timing:
                logger.warning("%s: a second %s timing summary; using the first", path, stage)
                continue
            timing[stage] = {
                **_read_parsed(path, parse_vivado_timing_summary),
                "stage": stage,
                "file": str(path),
            }
            files.append(path)
        elif "report_utilization" in head or "Utilization Design Information" in head:
            parsed = _read_parsed(path, parse_vivado_utilization)
            if route is None and (parsed["design_state"] or "").lower() == "routed":
                route = {**parsed, "file": str(path)}
                files.append(path)
    return route, timing


def _tool_from_version(version: str | None) -> str | None:
    """Vivado HLS ended with 2020.1; later HLS reports come from Vitis HLS (2020.1 is ambiguous)."""
    if not version or not re.fullmatch(r"\d{4}\.\d", version):
        return None
    return VITIS_HLS if version > "2020.1" else VIVADO_HLS if version < "2020.1" else None
