"""ESTIMATE of latency and resources of a Latency-strategy hls4ml project, without vendor tools.

A first-order model of what HLS C-synthesis reports, always labelled ``model estimate`` (never a
synthesis result). Its constants are hand-tuned on hls4ml's own C-synthesis baselines (Vitis HLS
2024.1, single ``Dense`` + activation models at ``ap_fixed<16,6>``; ``scripts/calibrate_estimate.py``,
``reports/estimate_calibration.json``, :mod:`l1ad.reports.calibration`), and the band is measured on
those same baselines (in-sample, no held-out design); what they do not cover is marked *uncalibrated* below.

* **Constant multiplications** (Dense weights, io_parallel, reuse factor 1), per nonzero weight
  ``c`` times an input of ``a`` bits: a power of two is a shift (free); a constant of signed width
  ``wc = bit_length(|c|) + 1`` goes to a DSP when ``a > DSP_MIN_BITS`` and ``wc > CONST_DSP_MIN_BITS``
  (the baselines' ``16 x 16`` layers keep roughly the weights below ``2**7`` in LUTs), else it is an
  ``a x wc`` LUT multiplier of ``a * wc / 2`` LUTs (as C-synthesis costs it). These need the
  per-width counts ``weights["mult_widths"]``; rows recorded without them fall back to the older,
  *uncalibrated* canonical-signed-digit model (``d`` CSD digits: ``d - 1`` adders of ``a + 1`` LUTs,
  DSP when the weight *type* is wider than ``DSP_MIN_BITS``), and the result says ``calibrated: False``.
* **Accumulation**: per output, ``nonzero - 1`` additions of the accumulator width (hls4ml's
  ``accum_t``), a balanced tree of depth ``ceil(log2(nonzero))`` (*uncalibrated*: every baseline
  has one input). Biases are not costed.
* **Data x data products** (``Multiply``, ``Merge`` of op ``multiply``): an ``a x b`` array
  multiplier, ``a * b / 2`` LUTs, or a DSP when both widths exceed ``DSP_MIN_BITS`` (*uncalibrated*).
  Other ``Merge`` ops (add, subtract) are one adder per output.
* **Activations** (``row["activation"]``): ``relu``-like ones (relu, prelu, leaky relu) are a compare
  and a select, ``SELECT_LUT_PER_BIT`` LUTs per output bit; a leaky relu of slope 1 is the identity
  (HLS folds it: free); table-based ones (:data:`TABLE_ACTIVATIONS`) cost ``TABLE_LUT_PER_BIT`` LUTs
  per output bit, one BRAM_18K per two outputs (dual port) and table of up to 18 kib, and
  ``TABLE_CYCLES`` cycles. Other elementwise rows (quantizers, linear, rows recorded without their
  activation): half a LUT per output bit (*uncalibrated*).
* **Latency**: the combinational path is the sum over layers of adder levels at ``ADDER_NS`` each;
  HLS schedules it in stages of the clock less its uncertainty (``CLOCK_UNCERTAINTY``), with no
  register when it fits in one: ``max(0, ceil(path / (clock * (1 - u))) - 1)``, plus ``TABLE_CYCLES``
  per table lookup. II = reuse factor.
* **FF**: ``FF_BASE`` block-control registers, plus the output bits of each layer times the register
  boundaries it spans.
"""

from __future__ import annotations

import logging
import math
from typing import Any

logger = logging.getLogger(__name__)

ADDER_NS = 1.0
DSP_MIN_BITS = 10
#: a constant multiplier with an input wider than DSP_MIN_BITS goes to a DSP above this constant width
CONST_DSP_MIN_BITS = 8
SELECT_LUT_PER_BIT = 2.5
TABLE_LUT_PER_BIT = 8.75
TABLE_CYCLES = 3
BRAM_18K_BITS = 18 * 1024
CLOCK_UNCERTAINTY = 0.125  # Vivado/Vitis HLS default: 12.5 % of the clock period
FF_BASE = 18  # what every combinational (latency 0) baseline reports
LABEL = "model estimate"
TABLE_ACTIVATIONS = frozenset(
    {"sigmoid", "tanh", "elu", "selu", "softplus", "softsign", "softmax", "exp", "log", "gelu"}
)
SELECT_ACTIVATIONS = frozenset({"relu", "prelu", "leakyrelu", "leaky_relu", "thresholdedrelu"})


def _dense_csd(row: dict[str, Any], a: int) -> dict[str, float]:
    """The older model, for rows recorded without ``mult_widths`` (uncalibrated)."""
    w = row["weights"]
    if a > DSP_MIN_BITS and w["width"] > DSP_MIN_BITS:
        return {"DSP": w["n_nonzero"], "LUT": 0.0, "levels": 1}
    adders = max(0, w["csd_digits"] - w["n_nonzero"])
    d_max = w.get("max_csd_digits") or math.ceil(w["csd_digits"] / max(1, w["n_nonzero"]))
    return {
        "DSP": 0,
        "LUT": adders * (a + 1),
        "levels": math.ceil(math.log2(d_max)) if adders and d_max > 1 else 0,
    }


def _dense_widths(widths: dict[str, int], a: int) -> dict[str, float]:
    dsp, luts, levels = 0, 0.0, 0
    for wc, count in ((int(k), v) for k, v in widths.items()):
        if a > DSP_MIN_BITS and wc > CONST_DSP_MIN_BITS:
            dsp += count
            levels = max(levels, 1)
        else:
            luts += count * a * wc / 2
            levels = max(levels, math.ceil(math.log2(max(2, wc))))
    return {"DSP": dsp, "LUT": luts, "levels": levels}


def _dense(row: dict[str, Any]) -> dict[str, float]:
    w = row["weights"]
    a = max(row["in_widths"] or [w["width"]])
    widths = w.get("mult_widths")
    mult = _dense_widths(widths, a) if widths is not None else _dense_csd(row, a)
    nz = w["nonzero_per_output"]
    acc_luts = sum(max(0, k - 1) for k in nz) * w["accum_width"]
    depth = math.ceil(math.log2(max(nz))) if nz and max(nz) > 1 else 0
    return {
        "LUT": mult["LUT"] + acc_luts,
        "DSP": mult["DSP"],
        "levels": mult["levels"] + depth,
        "multipliers": w["n_nonzero"],
    }


def is_product(row: dict[str, Any]) -> bool:
    """A data x data product: a ``Multiply`` layer or a ``Merge`` of op ``multiply``."""
    return row["class"] == "Multiply" or (row["class"] == "Merge" and row.get("op") == "multiply")


def is_table(row: dict[str, Any]) -> bool:
    """An activation hls4ml computes by table lookup (a ROM per pair of outputs)."""
    return str(row.get("activation", "")).lower() in TABLE_ACTIVATIONS and "weights" not in row


def _product(row: dict[str, Any]) -> dict[str, float]:
    a, b = (row["in_widths"] + row["in_widths"])[:2]
    n = row["n_out"]
    if a > DSP_MIN_BITS and b > DSP_MIN_BITS:
        return {"LUT": 0.0, "DSP": n, "levels": 1, "multipliers": n}
    return {
        "LUT": n * a * b / 2,
        "DSP": 0,
        "levels": math.ceil(math.log2(max(2, min(a, b)))),
        "multipliers": n,
    }


def _elementwise(row: dict[str, Any]) -> dict[str, float]:
    """Add/subtract: one adder per output; activations by kind (module docstring); others: half a LUT/bit."""
    n, width = row["n_out"], row["out_width"]
    none = {"DSP": 0, "levels": 0, "multipliers": 0, "BRAM_18K": 0}
    if row["class"] in ("Add", "Subtract", "Merge"):
        return {**none, "LUT": n * width, "levels": 1}
    act = str(row.get("activation", "")).lower().replace("_", "")
    if is_table(row):
        size, twidth = row.get("table_size", 1024), row.get("table_width", 18)
        per_rom = math.ceil(size * twidth / BRAM_18K_BITS)
        return {**none, "LUT": n * width * TABLE_LUT_PER_BIT, "BRAM_18K": math.ceil(n / 2) * per_rom}
    if act in ("leakyrelu",) and row.get("activ_param") == 1.0:
        return {**none, "LUT": 0.0}  # x > 0 ? x : 1.0 * x is x
    if act in SELECT_ACTIVATIONS:
        return {**none, "LUT": n * width * SELECT_LUT_PER_BIT}
    return {**none, "LUT": n * width * 0.5}


def missing_features(layers: list[dict[str, Any]]) -> list[str]:
    """Rows lacking what the calibrated model reads (``mult_widths``, ``activation``): their cost is
    the uncalibrated fallback."""
    out = []
    for row in layers:
        if "weights" in row and "mult_widths" not in row["weights"]:
            out.append(f"{row['name']}: weights.mult_widths")
        elif "Activation" in row["class"] or row["class"] in ("PReLU", "LeakyReLU", "ELU", "Softmax"):
            if "activation" not in row:
                out.append(f"{row['name']}: activation")
    return out


def estimate(layers: list[dict[str, Any]], clock_period_ns: float, reuse_factor: int = 1) -> dict[str, Any]:
    """Latency (cycles, ns), II and LUT/FF/DSP/BRAM of the layers (see the module docstring)."""
    total = {"LUT": 0.0, "FF": 0.0, "DSP": 0, "BRAM_18K": 0}
    stage_ns = clock_period_ns * (1 - CLOCK_UNCERTAINTY)
    levels, n_mult, tables, per_layer = 0, 0, 0, []
    for row in layers:
        if row["class"] in ("Input", "InputLayer"):
            continue
        if "weights" in row:
            cost = _dense(row)
        elif is_product(row):
            cost = _product(row)
        else:
            cost = _elementwise(row)
        levels += cost["levels"]
        n_mult += cost["multipliers"]
        for key in ("LUT", "DSP", "BRAM_18K"):
            total[key] += cost.get(key, 0)
        spans = math.ceil(cost["levels"] * ADDER_NS / stage_ns) - 1 if cost["levels"] else 0
        if is_table(row):
            tables += 1
            spans += TABLE_CYCLES
        total["FF"] += row["n_out"] * row["out_width"] * max(0, spans)
        per_layer.append(
            {"name": row["name"], "class": row["class"], **{k: round(v, 1) for k, v in cost.items()}}
        )
    path_ns = levels * ADDER_NS
    cycles = max(0, math.ceil(path_ns / stage_ns) - 1) + TABLE_CYCLES * tables
    missing = missing_features(layers)
    if missing:
        logger.info("estimate: uncalibrated fallback for %s", ", ".join(missing))
    return {
        "source": LABEL,
        "label": "ESTIMATE (first-order model, no vendor tools)",
        "latency_cycles": cycles,
        "latency_ns": cycles * clock_period_ns,
        "ii_cycles": reuse_factor,
        "ii_ns": reuse_factor * clock_period_ns,
        "critical_path_ns": path_ns,
        "adder_levels": levels,
        "table_lookups": tables,
        "multipliers": n_mult,
        "resources": {
            "LUT": int(round(total["LUT"])),
            "FF": int(round(total["FF"])) + FF_BASE,
            "DSP": int(total["DSP"]),
            "BRAM_18K": int(total["BRAM_18K"]),
        },
        "calibrated": not missing,
        "uncalibrated_rows": missing,
        "layers": per_layer,
        "assumptions": {
            "adder_ns": ADDER_NS,
            "dsp_min_bits": DSP_MIN_BITS,
            "const_dsp_min_bits": CONST_DSP_MIN_BITS,
            "clock_uncertainty": CLOCK_UNCERTAINTY,
            "table_cycles": TABLE_CYCLES,
        },
    }
