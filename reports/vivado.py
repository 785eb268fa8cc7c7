"""Parsers for Vivado's own reports, at any stage (synthesized, placed, routed).

* ``report_utilization`` (:func:`parse_vivado_utilization`; :func:`parse_vivado_synth_rpt` for
  ``vivado_synth.rpt``, the post-synthesis one hls4ml's ``vivado_synth.tcl`` writes): per resource
  ``{"used", "available", "percent"}``, names normalized to LUT/FF/DSP/BRAM_tile/RAMB36/RAMB18/URAM
  for 7-series (``Slice LUTs``) and UltraScale (``CLB LUTs``) reports, plus ``BRAM_18K``.
* ``report_timing_summary`` (:func:`parse_vivado_timing_summary`): the Design Timing Summary (WNS,
  TNS, WHS, THS, pulse-width slack and their endpoint counts), the clocks, and the achieved clock.
  The achieved clock period is the requested period minus the WNS of the clock with the worst
  intra-clock slack: 0.47 ns of slack at 5 ns closes at about 4.53 ns (221 MHz), -0.09 ns needs
  5.09 ns. This is the usual single-clock reading of WNS (the critical path could change at
  another period).

Pure ``str -> dict`` functions, no file I/O; ``ValueError`` names what is missing.
:func:`l1ad.reports.vendor.find_vendor_reports` locates the files in a project.
"""

from __future__ import annotations

import re
from typing import Any

_UNDEFINED = {"", "-", "NA", "N/A"}


def _cells(line: str) -> list[str]:
    """``'| a | b |'`` -> ``['a', 'b']``."""
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _value(text: str | None, key: str, what: str) -> float | int | None:
    """A report cell: blank/``NA`` -> None; endpoint counts (``key``) -> int; else float."""
    text = (text or "").strip()
    if text in _UNDEFINED:
        return None
    try:
        return int(text) if key.endswith("_endpoints") else float(text)
    except ValueError:
        raise ValueError(f"{what}: expected a number, got {text!r}") from None


def _header(text: str, name: str) -> str | None:
    """A ``| Name : value`` field of a Vivado report header (first word of the value)."""
    match = re.search(rf"^\|\s*{re.escape(name)}\s*:\s*(\S+)", text, re.MULTILINE)
    return match.group(1) if match else None


def _identity(text: str) -> dict[str, str | None]:
    """``tool_version`` (``Vivado v.2021.2`` -> ``2021.2``), ``design`` and ``device`` of a report."""
    version = re.search(r"^\|\s*Tool Version\s*:\s*Vivado v\.(\S+)", text, re.MULTILINE)
    return {
        "tool_version": version.group(1) if version else None,
        "design": _header(text, "Design"),
        "device": _header(text, "Device"),
    }


# --------------------------------------------------------------------------- report_utilization
# report_utilization site types (7-series name, UltraScale name) -> normalized key.
_UTILIZATION_SITES = {
    "Slice LUTs": "LUT",
    "CLB LUTs": "LUT",
    "Slice Registers": "FF",
    "CLB Registers": "FF",
    "DSPs": "DSP",
    "Block RAM Tile": "BRAM_tile",
    "RAMB36/FIFO": "RAMB36",
    "RAMB18": "RAMB18",
    "URAM": "URAM",
}


def parse_vivado_synth_rpt(text: str) -> dict[str, Any]:
    """Parse Vivado ``report_utilization`` output (``vivado_synth.rpt``).

    Each resource is ``{"used", "available", "percent"}``. ``BRAM_18K`` is derived as two per
    36 Kb Block RAM tile, for comparison with the HLS estimate.
    """
    return _parse_utilization(text, "vivado_synth.rpt")


def parse_vivado_utilization(text: str) -> dict[str, Any]:
    """Parse ``report_utilization`` output of any stage: :func:`parse_vivado_synth_rpt`'s keys plus
    ``design_state`` (the header's ``Design State``: ``Synthesized``, ``Placed``, ``Routed``; None if absent)."""
    parsed = _parse_utilization(text, "report_utilization")
    return {**parsed, "design_state": _header(text, "Design State")}


def _parse_utilization(text: str, what: str) -> dict[str, Any]:
    if "report_utilization" not in text and "Utilization Design Information" not in text:
        raise ValueError(f"{what}: not a Vivado report_utilization output")
    resources: dict[str, dict[str, float | int | None]] = {}
    columns: list[str] | None = None
    for line in text.splitlines():
        if not line.strip().startswith("|"):
            continue
        row = _cells(line)
        if row[0] == "Site Type":
            columns = row
            continue
        if columns is None or len(row) != len(columns):
            continue
        key = _UTILIZATION_SITES.get(row[0].rstrip("*"))
        if key is None or key in resources:
            continue
        cell = dict(zip(columns, row, strict=True))
        resources[key] = {
            "used": _int_if_whole(_value(cell.get("Used"), "", f"{what} {row[0]} Used")),
            "available": _int_if_whole(_value(cell.get("Available"), "", f"{what} {row[0]} Available")),
            "percent": _value(cell.get("Util%"), "", f"{what} {row[0]} Util%"),
        }
    missing = [key for key in ("LUT", "FF", "DSP", "BRAM_tile") if key not in resources]
    if missing:
        raise ValueError(f"{what}: missing utilization row(s) for {', '.join(missing)}")
    tile = resources["BRAM_tile"]
    resources["BRAM_18K"] = {
        "used": _int_if_whole(2 * tile["used"]) if tile["used"] is not None else None,
        "available": _int_if_whole(2 * tile["available"]) if tile["available"] is not None else None,
        "percent": tile["percent"],
    }
    return {**_identity(text), "resources": resources}


def _int_if_whole(value: float | None) -> float | int | None:
    return int(value) if value is not None and value == int(value) else value


# --------------------------------------------------------------------------- report_timing_summary
# "Design Timing Summary" columns (Vivado prints them separated by two or more spaces) -> keys.
_TIMING_COLUMNS = {
    "WNS(ns)": "wns_ns",
    "TNS(ns)": "tns_ns",
    "TNS Failing Endpoints": "tns_failing_endpoints",
    "TNS Total Endpoints": "tns_total_endpoints",
    "WHS(ns)": "whs_ns",
    "THS(ns)": "ths_ns",
    "THS Failing Endpoints": "ths_failing_endpoints",
    "THS Total Endpoints": "ths_total_endpoints",
    "WPWS(ns)": "wpws_ns",
    "TPWS(ns)": "tpws_ns",
    "TPWS Failing Endpoints": "tpws_failing_endpoints",
    "TPWS Total Endpoints": "tpws_total_endpoints",
}
_CONSTRAINTS = {
    "All user specified timing constraints are met.": True,
    "Timing constraints are not met.": False,
    "There are no user specified timing constraints.": None,
}


def _timing_section(lines: list[str], title: str) -> list[str]:
    """Lines of a ``| <title>`` section of a Vivado report (up to the next ``| ...`` title)."""
    start = next((i for i, line in enumerate(lines) if line.strip() == f"| {title}"), None)
    if start is None:
        return []
    end = next((i for i in range(start + 2, len(lines)) if re.match(r"\|\s*\w", lines[i])), len(lines))
    return lines[start + 2 : end]


def _timing_table(section: list[str], first: str) -> tuple[list[str], list[list[str]]]:
    """Header (split on 2+ spaces) and data rows (split on whitespace) of the table whose header starts
    with ``first``; the row under the header is the ``----`` rule."""
    at = next((i for i, line in enumerate(section) if line.strip().startswith(first)), None)
    if at is None:
        return [], []
    header = re.split(r"\s{2,}", section[at].strip())
    rows = []
    for line in section[at + 2 :]:
        if not line.strip() or line.startswith("---"):
            break
        rows.append(line.split())
    return header, rows


def parse_vivado_timing_summary(text: str) -> dict[str, Any]:
    """Parse Vivado ``report_timing_summary`` output.

    Keys: ``tool_version``, ``design``, ``device``, the Design Timing Summary figures (``wns_ns``,
    ``tns_ns``, ``whs_ns``, ``ths_ns``, ``wpws_ns``, ``tpws_ns`` and their endpoint counts; None where
    Vivado prints NA, i.e. nothing constrained), ``constraints_met`` (True/False from the report's
    verdict line, None without user constraints), ``clocks`` (``[{name, period_ns, frequency_mhz}]``),
    ``clock`` (the clock of the worst intra-clock WNS, else the only clock), ``clock_period_ns``
    (its requested period), ``achieved_clock_ns`` = period - WNS and ``fmax_mhz`` = 1000 / achieved.
    """
    what = "report_timing_summary"
    lines = text.splitlines()
    summary = _timing_section(lines, "Design Timing Summary")
    header, rows = _timing_table(summary, "WNS(ns)")
    if not header:
        raise ValueError(f"{what}: missing the 'Design Timing Summary' table (WNS(ns) TNS(ns) ...)")
    if not rows or len(rows[0]) != len(header):
        raise ValueError(f"{what}: the Design Timing Summary has no row of {len(header)} values")
    keys = [_TIMING_COLUMNS.get(name, name) for name in header]
    figures = {
        key: _value(value, key, f"{what} {name}")
        for key, name, value in zip(keys, header, rows[0], strict=True)
    }
    if "wns_ns" not in figures:
        raise ValueError(f"{what}: the Design Timing Summary has no WNS(ns) column")
    verdict = next((_CONSTRAINTS[line.strip()] for line in summary if line.strip() in _CONSTRAINTS), None)

    clocks = []
    for line in _timing_section(lines, "Clock Summary"):
        m = re.match(r"^\s*(\S+)\s+\{[^}]*\}\s+(\S+)\s+(\S+)\s*$", line)
        if m:
            period = _value(m.group(2), "", f"{what} clock {m.group(1)} period")
            clocks.append(
                {"name": m.group(1), "period_ns": period, "frequency_mhz": _value(m.group(3), "", what)}
            )
    _, intra = _timing_table(_timing_section(lines, "Intra Clock Table"), "Clock")
    worst = [(_value(r[1], "", f"{what} {r[0]} WNS"), r[0]) for r in intra if len(r) > 1 and r[1] != "NA"]
    name = min(worst)[1] if worst else clocks[0]["name"] if len(clocks) == 1 else None
    period = next((c["period_ns"] for c in clocks if c["name"] == name), None)
    wns = figures["wns_ns"]
    achieved = None if period is None or wns is None else round(period - wns, 6)
    return {
        **_identity(text),
        **figures,
        "constraints_met": verdict,
        "clocks": clocks,
        "clock": name,
        "clock_period_ns": period,
        "achieved_clock_ns": achieved,
        "fmax_mhz": None if not achieved or achieved <= 0 else round(1000.0 / achieved, 3),
    }
