"""Latency/resource report of a firmware project against the target's budgets.

Sources, always labelled, first available is the primary one:

1. ``vendor``: Vivado/Vitis HLS C-synthesis (and Vivado utilization) reports in the project
   (:func:`l1ad.reports.vendor.find_vendor_reports`);
2. ``yosys``: open-source synthesis of the da4ml Verilog of distributed-arithmetic targets, latency
   from the da4ml pipeline stages at the clock (an estimate of a Vivado result), followed by
   ``da4ml estimate`` (da4ml's own LUT cost of the adder graph);
3. ``model estimate``: :mod:`l1ad.reports.estimate` for Latency-strategy projects (ESTIMATE).

Vendor reports are used only when they describe this project (:func:`vendor_refusal`): the top
function and the part of the C-synthesis report (and the Vivado utilization report's device) match
the project's, and every report file is newer than the project's ``metadata.json`` (written at the
build). Otherwise they are refused, with the reason in the report and the log.

Budgets (one pass/fail line each): II <= ``ii_budget_ns``, latency <= ``latency_budget_ns``,
LUT <= ``resource_budget_fraction`` of the part, and DSP = 0 when ``require_zero_dsp``.
All functions except :func:`make_report`/:func:`write_report` are pure.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from l1ad.core.files import atomic_write_text
from l1ad.hls.rtl import latency_cycles
from l1ad.reports import calibration, estimate
from l1ad.reports.parts import part_resources
from l1ad.reports.vendor import find_vendor_reports

logger = logging.getLogger(__name__)

RESOURCES = ("LUT", "FF", "DSP", "BRAM_18K")


def from_vendor(vendor: dict[str, Any], clock_period_ns: float) -> dict[str, Any]:
    """Normalize parsed vendor reports: csynth latency/II, Vivado utilization if present, else csynth."""
    cs = vendor.get("csynth") or {}
    clock = cs.get("target_clock_ns") or clock_period_ns
    lat = cs.get("latency_worst_cycles")
    ii = cs.get("interval_max")
    ratio = None
    if vendor.get("vivado_synth"):
        synth = {k: v["used"] for k, v in vendor["vivado_synth"]["resources"].items() if k in RESOURCES}
        ratio = synth_over_csynth(synth, cs.get("resources") or {})
    if vendor.get("vivado_route"):
        res = {k: v["used"] for k, v in vendor["vivado_route"]["resources"].items() if k in RESOURCES}
        res_from = "Vivado post-route (report_utilization, Routed)"
    elif vendor.get("vivado_synth"):
        res = synth
        res_from = "Vivado synthesis (report_utilization)"
    else:
        res = {k: cs.get("resources", {}).get(k) for k in RESOURCES}
        res_from = f"{vendor.get('tool') or 'HLS'} C-synthesis estimate"
    return {
        "source": "vendor",
        "label": f"vendor: {vendor.get('tool') or 'HLS'} {cs.get('tool_version') or ''}".strip(),
        "latency_cycles": lat,
        "latency_ns": None if lat is None else lat * clock,
        "ii_cycles": ii,
        "ii_ns": None if ii is None else ii * clock,
        "clock_ns": clock,
        "estimated_clock_ns": cs.get("estimated_clock_ns"),
        "resources": res,
        "resources_from": res_from,
        "synth_over_csynth": ratio,
        **vendor_timing(vendor),
        "files": vendor.get("files", []),
    }


_NO_TIMING = dict.fromkeys(
    ("timing_stage", "wns_ns", "whs_ns", "achieved_clock_ns", "fmax_mhz", "timing_met")
)


def vendor_timing(vendor: dict[str, Any]) -> dict[str, Any]:
    """WNS and the achieved clock of the latest Vivado stage whose timing summary has a constrained clock."""
    timing = vendor.get("timing") or {}
    stages = ("route", "place", "synth", "unknown")
    t = next((timing[s] for s in stages if (timing.get(s) or {}).get("wns_ns") is not None), None)
    if t is None:
        return dict(_NO_TIMING)
    return {"timing_stage": t["stage"], "wns_ns": t["wns_ns"], "whs_ns": t["whs_ns"],
            "achieved_clock_ns": t["achieved_clock_ns"], "fmax_mhz": t["fmax_mhz"],
            "timing_met": t["constraints_met"]}  # fmt: skip


def synth_over_csynth(synth: dict[str, Any], csynth: dict[str, Any]) -> dict[str, float] | None:
    """Vivado synthesis over the HLS C-synthesis estimate, per resource both report (nonzero): how far
    the C-synthesis numbers a firmware engineer sees first are from the synthesized design."""
    out = {
        k: synth[k] / csynth[k] for k in ("LUT", "FF", "DSP") if synth.get(k) is not None and csynth.get(k)
    }
    return out or None


def from_yosys(yosys: dict[str, Any], rtl: dict[str, Any]) -> dict[str, Any]:
    """Yosys cell counts + da4ml pipeline: latency = register levels (stages + 1) x clock, II = 1 cycle."""
    clock, cycles = rtl["clock_period_ns"], latency_cycles(rtl["stages"])
    return {
        "source": "yosys",
        "label": f"yosys synth_xilinx{' -nodsp' if yosys.get('nodsp') else ''} ({yosys.get('version', 'yosys')}), "
        f"da4ml pipeline{_stage_assumption(rtl)}: ESTIMATE of Vivado",
        "latency_cycles": cycles,
        "latency_ns": cycles * clock,
        "ii_cycles": 1,
        "ii_ns": clock,
        "clock_ns": clock,
        "resources": {k: yosys.get(k, 0) for k in RESOURCES},
        "carry": yosys.get("CARRY"),
        "da4ml_estimate_luts": rtl.get("cost_luts"),
        "da4ml_reg_bits": rtl.get("reg_bits"),
    }


def _stage_assumption(rtl: dict[str, Any]) -> str:
    """The timing assumption the pipeline's latency rests on (no timing analysis here)."""
    cutoff, clock = rtl.get("latency_cutoff"), rtl.get("clock_period_ns")
    if not cutoff or cutoff <= 0 or not clock:
        return ""
    return f" ({cutoff:g} adder levels per {clock:g} ns stage: assumes <= {clock / cutoff:.2f} ns per level, unmeasured)"


def from_da4ml(rtl: dict[str, Any]) -> dict[str, Any]:
    """da4ml's own numbers: LUT cost of the adder graph, pipeline registers, stages at the clock."""
    clock, cycles = rtl["clock_period_ns"], latency_cycles(rtl["stages"])
    return {
        "source": "da4ml estimate",
        "label": f"da4ml adder-graph estimate{_stage_assumption(rtl)}: ESTIMATE",
        "latency_cycles": cycles,
        "latency_ns": cycles * clock,
        "ii_cycles": 1,
        "ii_ns": clock,
        "clock_ns": clock,
        "resources": {
            "LUT": int(round(rtl["cost_luts"])),
            "FF": rtl.get("reg_bits"),
            "DSP": 0,
            "BRAM_18K": 0,
        },
    }


def budget_checks(
    row: dict[str, Any], budgets: dict[str, Any], available: dict[str, int]
) -> list[dict[str, Any]]:
    """Pass/fail per budget for one source row (unknown values fail, with the reason)."""
    checks = []

    def check(name: str, value: float | None, limit: float, unit: str) -> None:
        ok = value is not None and value <= limit
        checks.append({"budget": name, "value": value, "limit": limit, "unit": unit, "pass": bool(ok)})

    check("II", row.get("ii_ns"), budgets["ii_ns"], "ns")
    check("latency", row.get("latency_ns"), budgets["latency_ns"], "ns")
    lut = row["resources"].get("LUT")
    frac = None if lut is None or not available.get("LUT") else lut / available["LUT"]
    check("LUT fraction", frac, budgets["resource_fraction"], "of part")
    if budgets.get("require_zero_dsp"):
        check("DSP", row["resources"].get("DSP"), 0, "DSP")
    if row.get("achieved_clock_ns") is not None:  # Vivado timing: the design must close at the target clock
        check("achieved clock", row["achieved_clock_ns"], row["clock_ns"], "ns")
    return checks


def percentages(resources: dict[str, Any], available: dict[str, int]) -> dict[str, float | None]:
    return {
        k: (None if resources.get(k) is None or not available.get(k) else 100.0 * resources[k] / available[k])
        for k in RESOURCES
    }


def render_markdown(report: dict[str, Any]) -> str:
    """The human report: one table row per source, one budget line per check of the primary source."""
    lines = [
        f"# Firmware report: {report['target']}",
        "",
        f"Part {report['part']}, clock {report['clock_period_ns']:g} ns, strategy {report['strategy']}, "
        f"model sha256 {report['model_sha256'][:12]}.",
        "",
        "| source | latency (cycles) | latency (ns) | II (cycles) | II (ns) | LUT | FF | DSP | BRAM_18K |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def fmt(v: Any, pct: float | None = None) -> str:
        if v is None:
            return "?"
        text = f"{v:g}" if isinstance(v, float) else str(v)
        return f"{text} ({pct:.3f}%)" if pct is not None else text

    for row in report["sources"]:
        pct = row.get("percent", {})
        res = row["resources"]
        bands = row.get("band") or {}

        def cell(key: str, text: str, bands: dict[str, Any] = bands) -> str:  # an ESTIMATE figure: + its band
            return f"{text} {calibration.compact_band(key, bands.get(key))}" if key in bands else text

        lines.append(
            f"| {row['label']} | {cell('cycles', fmt(row['latency_cycles']))} | {fmt(row['latency_ns'])} "
            f"| {fmt(row['ii_cycles'])} | {fmt(row['ii_ns'])} | "
            + " | ".join(cell(k, fmt(res.get(k), pct.get(k))) for k in RESOURCES)
            + " |"
        )
    for row in report["sources"]:
        if row.get("band_text"):
            lines += ["", f"{row['label']}, calibrated against hls4ml C-synthesis baselines:", ""]
            lines += [f"- {text}" for text in row["band_text"].values()] + ["", row.get("band_note", "")]
    lines += ["", f"Budgets (primary source: {report['primary']}):", ""]
    for c in report["budgets"]:
        value = "?" if c["value"] is None else f"{c['value']:.4g}"
        lines.append(
            f"- {'PASS' if c['pass'] else 'FAIL'}: {c['budget']} = {value} {c['unit']} (limit {c['limit']:g})"
        )
    if report.get("yosys_over_da4ml"):
        ratios = ", ".join(f"{k} {v:.2f}" for k, v in report["yosys_over_da4ml"].items())
        lines += ["", f"Yosys synthesis / da4ml estimate: {ratios}."]
    if report.get("rtl_measured"):
        m = report["rtl_measured"]
        lines += ["", f"Verilator (the da4ml Verilog, {m['n_events']} events streamed one per clock): latency "
                  f"{m['latency_cycles']} cycles = {m['latency_ns']:g} ns, II {m['ii_cycles']} cycle(s)."]  # fmt: skip
    lines += ["", f"Overall: {'PASS' if report['pass'] else 'FAIL'}", ""]
    for row in report["sources"]:
        if row.get("synth_over_csynth"):
            ratios = ", ".join(f"{k} {v:.2f}" for k, v in row["synth_over_csynth"].items())
            lines += [f"Vivado synthesis / HLS C-synthesis estimate ({row['label']}): {ratios}.", ""]
    for row in report["sources"]:
        if row.get("achieved_clock_ns") is not None:
            lines += [
                f"Vivado timing ({row['timing_stage']}): WNS {row['wns_ns']:g} ns, WHS {row['whs_ns']:g} ns at the "
                f"{row['clock_ns']:g} ns clock: achieved {row['achieved_clock_ns']:g} ns ({row['fmax_mhz']:g} MHz), "
                f"constraints {'met' if row['timing_met'] else 'NOT met'}.",
                "",
            ]
    if report.get("vendor_refused"):
        lines += [f"Vendor reports found but not used: {report['vendor_refused']}.", ""]
    return "\n".join(lines)


def _device(part: str) -> str:
    """A part name compared across report styles: ``xcvu13p-flga2577-2-e`` and Vivado's device field
    ``vu13pflga2577-2`` (no ``xc``, no dashes, temperature grade optional) name the same device."""
    return part.lower().removeprefix("xc").replace("-", "")


def vendor_refusal(vendor: dict[str, Any], meta: dict[str, Any], built_at: float | None) -> str | None:
    """Why parsed vendor reports do not describe the project of ``meta`` (None: they do).

    ``built_at``: the project's build time (``metadata.json``'s mtime); a report file older than it
    was made for an earlier build (stale)."""
    import os

    reasons = []
    top = meta.get("project_name")
    cs = vendor.get("csynth") or {}
    app = vendor.get("app") or {}
    for where, value in (("C-synthesis report", cs.get("top")), ("HLS project file", app.get("top"))):
        if value is not None and top is not None and value != top:
            reasons.append(f"the {where} is of top function {value!r}, the project's is {top!r}")
    part = str(meta.get("part", ""))
    if cs.get("part") and _device(cs["part"]) != _device(part):
        reasons.append(f"the C-synthesis report is for part {cs['part']}, the project's is {part}")
    vivado = [
        ("utilization", vendor.get("vivado_synth")),
        ("post-route utilization", vendor.get("vivado_route")),
    ]
    vivado += [(f"{stage} timing", t) for stage, t in (vendor.get("timing") or {}).items()]
    for where, report in vivado:
        device = (report or {}).get("device")
        if device and not _device(part).startswith(_device(device)):
            reasons.append(f"the Vivado {where} report is for device {device}, the project's part is {part}")
        design = (report or {}).get("design")
        if design and top is not None and design != top:
            reasons.append(f"the Vivado {where} report is of design {design!r}, the project's top is {top!r}")
    if built_at is not None:
        stale = [f for f in vendor.get("files", []) if os.stat(f).st_mtime < built_at]
        if stale:
            reasons.append(f"{', '.join(stale)} older than the project's build (rebuild the reports)")
    return "; ".join(reasons) or None


def assemble(meta: dict[str, Any], rows: list[dict[str, Any]], available: dict[str, int]) -> dict[str, Any]:
    """The report dict from project metadata and source rows (primary = first row)."""
    if not rows:
        raise ValueError("no report source available")
    for row in rows:
        row["percent"] = percentages(row["resources"], available)
    checks = budget_checks(rows[0], meta["budgets"], available)
    return {
        "target": meta["target"],
        "part": meta["part"],
        "clock_period_ns": meta["clock_period_ns"],
        "strategy": meta["strategy"],
        "model_sha256": meta["model_sha256"],
        "available": available,
        "primary": rows[0]["source"],
        "sources": rows,
        "budgets": checks,
        "pass": all(c["pass"] for c in checks),
    }


def yosys_over_da4ml(rows: list[dict[str, Any]]) -> dict[str, float] | None:
    """Yosys synthesis over da4ml's own estimate per resource (LUT, FF): how far the adder-graph cost
    model is from a synthesized netlist of the same Verilog."""
    by = {r["source"]: r["resources"] for r in rows}
    ys, da = by.get("yosys"), by.get("da4ml estimate")
    if not ys or not da:
        return None
    return {k: ys[k] / da[k] for k in ("LUT", "FF") if ys.get(k) is not None and da.get(k)} or None


def add_measured_latency(report: dict[str, Any], measured: dict[str, Any]) -> dict[str, Any]:
    """Add the Verilator measurement (:func:`l1ad.emulation.rtl_latency.measure_latency`) to a report of
    a DA project: a budget line each for the measured latency and II, and one that every da4ml-based row
    states the measured cycle count (a report that ignores the pipeline or miscounts its registers fails)."""
    report["rtl_measured"] = measured
    stated = {
        r["source"]: r["latency_cycles"]
        for r in report["sources"]
        if r["source"] in ("yosys", "da4ml estimate")
    }
    budgets = report.setdefault("budgets", [])
    clock = report["clock_period_ns"]
    limit_lat = next((c["limit"] for c in budgets if c["budget"] == "latency"), None)
    limit_ii = next((c["limit"] for c in budgets if c["budget"] == "II"), None)
    cycles, ii = measured["latency_cycles"], measured.get("ii_cycles")
    if limit_lat is not None:
        ok = cycles * clock <= limit_lat
        budgets.append(
            {
                "budget": "latency (Verilator)",
                "value": cycles * clock,
                "limit": limit_lat,
                "unit": "ns",
                "pass": ok,
            }
        )
    if limit_ii is not None:
        value = None if ii is None else ii * clock
        ok = value is not None and value <= limit_ii
        budgets.append(
            {"budget": "II (Verilator)", "value": value, "limit": limit_ii, "unit": "ns", "pass": ok}
        )
    agrees = all(v == cycles for v in stated.values())
    budgets.append({"budget": "stated latency = measured", "value": float(agrees), "limit": 1.0, "unit": "(1: agree)",
                    "pass": agrees})  # fmt: skip
    if not agrees:
        logger.error(
            "%s: Verilator measures %d cycles, the report states %s", report["target"], cycles, stated
        )
    report["pass"] = all(c["pass"] for c in budgets)
    return report


def make_report(project_dir: Path, run_yosys: bool = True) -> dict[str, Any]:
    """Collect every available source for a project and check the budgets."""
    from l1ad.hls.metadata import read_metadata
    from l1ad.hls.rtl import read_rtl_summary

    meta = read_metadata(project_dir)
    try:
        available = part_resources(meta["part"]).as_dict()
    except KeyError:
        logger.warning("part %s not in l1ad.reports.parts: percentages unknown", meta["part"])
        available = {}
    rows = []
    vendor = find_vendor_reports(project_dir)
    refused = None
    if vendor is not None:
        refused = vendor_refusal(vendor, meta, (Path(project_dir) / "metadata.json").stat().st_mtime)
        if refused:
            logger.warning("%s: vendor reports not used: %s", project_dir, refused)
        else:
            rows.append(from_vendor(vendor, meta["clock_period_ns"]))
            if not available and vendor.get("csynth"):
                available = dict(vendor["csynth"]["available"])
    rtl_summary = read_rtl_summary(project_dir)
    if rtl_summary is not None and run_yosys:
        if shutil.which("yosys") is None:
            logger.warning("yosys not found: no open-source synthesis estimate for %s", meta["target"])
        else:
            from l1ad.reports.yosys import run_yosys as _run

            nodsp = bool(meta["budgets"].get("require_zero_dsp"))  # the design must map multipliers to LUTs
            rows.append(from_yosys(_run(project_dir, meta["part"], nodsp=nodsp), rtl_summary))
    if rtl_summary is not None:
        rows.append(from_da4ml(rtl_summary))
    if meta["strategy"] == "Latency" or not rows:
        est = estimate.estimate(meta["estimate_layers"], meta["clock_period_ns"], meta["reuse_factor"])
        rows.append(calibration.attach_band(est))  # every ESTIMATE figure with its calibrated band
    report = assemble(meta, rows, available)
    report["vendor_refused"] = refused
    report["yosys_over_da4ml"] = yosys_over_da4ml(rows)
    return report


def write_report(project_dir: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    """Save ``report.json`` and ``report.md`` in the project directory."""
    js, md = Path(project_dir) / "report.json", Path(project_dir) / "report.md"
    atomic_write_text(js, json.dumps(report, indent=1, sort_keys=True, default=str) + "\n")
    atomic_write_text(md, render_markdown(report))
    return js, md
