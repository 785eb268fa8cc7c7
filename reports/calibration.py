"""How far the first-order ESTIMATE (:mod:`l1ad.reports.estimate`) is from vendor C-synthesis.

hls4ml keeps Vivado/Vitis HLS C-synthesis reports of the models of its own tests
(``tests/fixtures/hls4ml_baselines/``, source in its README). :func:`calibration_table` costs the
same architectures (rebuilt with seeded weights, their layer features in ``layer_features.json``)
and tabulates estimate against vendor per model and tool version, with each resource's error band;
``scripts/calibrate_estimate.py`` writes it to ``reports/estimate_calibration.json`` (never edit it
by hand). :func:`estimate_band` reads that file's band on the reference tool version,
:func:`format_band` prints an ESTIMATE figure with it.

Errors are ``estimate / vendor - 1`` (LUT, FF, BRAM_18K, DSP) and ``estimate - vendor`` in cycles.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from statistics import mean
from typing import Any

from l1ad.reports.estimate import estimate

logger = logging.getLogger(__name__)

CALIBRATION_FILE = Path(__file__).with_name("estimate_calibration.json")
#: the tool version the band is stated for: hls4ml's default Vitis version for its synthesis tests,
#: and l1ad's default backend
REFERENCE = "Vitis 2024.1"
METRICS = ("LUT", "FF", "DSP", "BRAM_18K", "cycles")
RELATIVE = ("LUT", "FF", "DSP", "BRAM_18K")
_NAME = re.compile(r"test_keras_api_test_(dense|activations)_io_parallel-(Vivado|Vitis)(?:-(\w+))?\.json$")


def baseline_model(file_name: str) -> str:
    """The architecture of an hls4ml baseline file: ``dense_elu`` (``test_dense``: Dense(2) on one
    input, kernel uniform in [1, 10], then ELU) or ``dense64_<activation>`` (``test_activations``:
    Dense(64) on one input, lecun_uniform kernel, then the activation)."""
    match = _NAME.search(file_name)
    if match is None:
        raise ValueError(f"not an hls4ml io_parallel dense/activations baseline: {file_name}")
    return "dense_elu" if match.group(1) == "dense" else f"dense64_{match.group(3)}"


def dense_part(model: str) -> str:
    """The Dense layer a baseline architecture starts with (``dense64_relu`` -> ``dense64``)."""
    return model.split("_")[0]


def parse_baseline(text: str) -> dict[str, float]:
    """The numbers of one hls4ml baseline JSON (``CSynthesisReport``)."""
    cs = json.loads(text)["CSynthesisReport"]
    out = {k: int(cs[k]) for k in RELATIVE}
    out["cycles"] = int(cs["WorstLatency"])
    out["clock_ns"] = float(cs["TargetClockPeriod"])
    return out


def load_baselines(folder: Path) -> dict[str, dict[str, Any]]:
    """``{"<Backend>_<version>/<file>": {"model", "tool", "vendor"}}`` of a fixture folder."""
    out = {}
    for path in sorted(Path(folder).glob("*_*/*.json")):
        tool = path.parent.name.replace("_", " ", 1)
        out[f"{path.parent.name}/{path.name}"] = {
            "model": baseline_model(path.name),
            "tool": tool,
            "vendor": parse_baseline(path.read_text()),
        }
    return out


def _estimate_mean(seeds: list[list[dict[str, Any]]], clock_ns: float) -> tuple[dict, dict]:
    runs = [estimate(rows, clock_ns) for rows in seeds]
    values = [{**r["resources"], "cycles": r["latency_cycles"]} for r in runs]
    avg = {k: round(mean(v[k] for v in values), 1) for k in METRICS}
    spread = {k: [min(v[k] for v in values), max(v[k] for v in values)] for k in METRICS}
    return avg, spread


def _error(metric: str, est: float, vendor: float) -> float | None:
    if metric not in RELATIVE:
        return round(est - vendor, 3)
    return None if vendor == 0 else round(est / vendor - 1, 4)


def band(rows: list[dict[str, Any]], excluded: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """Per metric: ``lo``/``hi`` error (relative, cycles absolute), ``abs_lo``/``abs_hi`` (estimate
    minus vendor), ``n`` rows and ``exact`` (every estimate equal to the vendor's), over the rows
    whose model is not ``excluded`` for that metric (``{model: {metric: reason}}``, listed in the
    band as ``excluded``)."""
    out: dict[str, Any] = {}
    excluded = excluded or {}
    all_rows = rows
    for m in METRICS:
        rows = [r for r in all_rows if m not in excluded.get(r["model"], {})]
        errs = [r["error"][m] for r in rows if r["error"][m] is not None]
        diffs = [r["estimate"][m] - r["vendor"][m] for r in rows]
        out[m] = {
            "lo": min(errs, default=None),
            "hi": max(errs, default=None),
            "abs_lo": round(min(diffs), 1),
            "abs_hi": round(max(diffs), 1),
            "n": len(rows),
            "exact": all(d == 0 for d in diffs),
            "excluded": sorted({r["model"] for r in all_rows} - {r["model"] for r in rows}),
        }
    return out


def calibration_table(
    features: dict[str, list[list[dict[str, Any]]]],
    baselines: dict[str, dict[str, Any]],
    excluded: dict[str, dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Estimate against vendor for every baseline (the estimate averaged over the seeds of its
    architecture's features), the error band per tool version (``bands``: without the ``excluded``
    models' metrics, each with its reason; ``bands_all``: every row) and, per architecture, the
    vendor's own DSP spread across tool versions and the architectures sharing its Dense layer (what
    unseeded random weights alone move)."""
    rows = []
    for key, base in sorted(baselines.items()):
        vendor = base["vendor"]
        est, spread = _estimate_mean(features[base["model"]], vendor["clock_ns"])
        rows.append(
            {
                "baseline": key,
                "model": base["model"],
                "tool": base["tool"],
                "vendor": {m: vendor[m] for m in METRICS},
                "estimate": est,
                "estimate_seed_range": spread,
                "error": {m: _error(m, est[m], vendor[m]) for m in METRICS},
            }
        )
    tools = sorted({r["tool"] for r in rows})
    dsp_spread = {}  # the DSPs are the Dense layer's: pooled over the models that share it
    for model in sorted({r["model"] for r in rows}):
        counts = [r["vendor"]["DSP"] for r in rows if dense_part(r["model"]) == dense_part(model)]
        dsp_spread[model] = [min(counts), max(counts)]
    return {
        "reference": REFERENCE,
        "n_seeds": {m: len(v) for m, v in sorted(features.items())},
        "rows": rows,
        "bands": {t: band([r for r in rows if r["tool"] == t], excluded) for t in tools},
        "bands_all": {t: band([r for r in rows if r["tool"] == t]) for t in tools},
        "excluded": excluded or {},
        "vendor_dsp_spread": dsp_spread,
    }


def load_calibration(path: Path = CALIBRATION_FILE) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def estimate_band(path: Path = CALIBRATION_FILE) -> dict[str, Any]:
    """The reference tool version's band: ``{"LUT": {"lo", "hi", "n"}, "DSP": "exact" or a band, ...}``."""
    cal = load_calibration(path)
    out: dict[str, Any] = {}
    for m, b in cal["bands"][cal["reference"]].items():
        out[m] = "exact" if b["exact"] else {k: b[k] for k in ("lo", "hi", "abs_lo", "abs_hi", "n")}
    out["reference"] = cal["reference"]
    out["exceptions"] = cal.get("exceptions", {})
    return out


def _pct(x: float) -> str:
    return f"{100 * x:+.0f}%"


def format_band(resource: str, value: float, band_: dict[str, Any] | None = None) -> str:
    """``"30,526 LUT (ESTIMATE, calibrated band -22%/+18% on 6 hls4ml baselines (Vitis 2024.1):
    23,800–36,000)"``: the value, the band and the vendor value it implies (value / (1 + error))."""
    band_ = estimate_band() if band_ is None else band_
    unit = "cycles" if resource == "cycles" else resource
    b = band_.get(resource)
    head = f"{value:,.0f} {unit} (ESTIMATE"
    on = f"on {{n}} hls4ml baselines ({band_.get('reference', REFERENCE)})"
    if b is None:
        return f"{head}, not calibrated)"
    if b == "exact":
        n = next((v["n"] for v in band_.values() if isinstance(v, dict) and "n" in v), "?")
        return f"{head}, exact {on.format(n=n)})"
    if resource in RELATIVE and b.get("lo") is not None:
        lo_v, hi_v = value / (1 + b["hi"]), value / (1 + b["lo"]) if b["lo"] > -1 else float("inf")
        return (
            f"{head}, calibrated band {_pct(b['lo'])}/{_pct(b['hi'])} {on.format(n=b['n'])}: "
            f"vendor {lo_v:,.0f}–{hi_v:,.0f})"
        )
    lo_v, hi_v = value - b["abs_hi"], value - b["abs_lo"]
    return (
        f"{head}, calibrated band {b['abs_lo']:+g}/{b['abs_hi']:+g} {unit} {on.format(n=b['n'])}: "
        f"vendor {max(0, lo_v):,.0f}–{max(0, hi_v):,.0f})"
    )


def attach_band(row: dict[str, Any], band_: dict[str, Any] | None = None) -> dict[str, Any]:
    """An estimate row (:func:`l1ad.reports.estimate.estimate`) with its calibrated band: ``band``
    (per figure, as :func:`estimate_band`), ``band_text`` (:func:`format_band` per figure) and
    ``band_note``: where the band was measured, and whether this estimate fell back to uncalibrated
    costs (metadata without the features the calibrated model reads)."""
    if band_ is None:
        try:
            band_ = estimate_band()
        except FileNotFoundError:  # an install without the package data: say so, never invent a band
            logger.warning("%s missing: ESTIMATE figures printed without a calibrated band", CALIBRATION_FILE)
            band_ = {}
    figures = {
        **{k: v for k, v in row["resources"].items() if k in RELATIVE},
        "cycles": row["latency_cycles"],
    }
    note = [
        f"Band scope: {band_.get('exceptions', {}).get('scope', 'see reports/estimate_calibration.json')}.",
        "The band is in-sample: the estimate's constants were set by hand on the same baselines "
        "(no held-out design), and the LUT band excludes the one stated exception.",
    ]
    if not row.get("calibrated", False):
        rows = row.get("uncalibrated_rows") or ["metadata without calibration features"]
        note.append(
            f"Band not applicable: uncalibrated fallback for {len(rows)} row(s) ({', '.join(rows)}); "
            "rebuild the project to record them."
        )
    row["band"] = {m: band_.get(m) for m in figures} | {"reference": band_.get("reference")}
    row["band_text"] = {m: format_band(m, v, band_) for m, v in figures.items()}
    row["band_note"] = " ".join(note)
    return row


def compact_band(metric: str, band_: Any) -> str:
    """``[-21%/+18%]``, ``[exact]``, ``[+0/+1]`` (cycles): the band as a table cell suffix."""
    if band_ == "exact":
        return "[exact]"
    if not isinstance(band_, dict) or band_.get("lo") is None:
        return "[uncalibrated]"
    if metric not in RELATIVE:
        return f"[{band_['abs_lo']:+g}/{band_['abs_hi']:+g}]"
    return f"[{_pct(band_['lo'])}/{_pct(band_['hi'])}]"
