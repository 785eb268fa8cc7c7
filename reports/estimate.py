"""ESTIMATE of latency and resources of a Latency-strategy hls4ml project, without vendor tools.

A first-order model, always labelled ``model estimate`` in reports (never a synthesis result):

* **Constant multiplications** (Dense weights, io_parallel, reuse factor 1): a zero weight costs
  nothing; a weight whose canonical-signed-digit (CSD) form has ``d`` nonzero digits is ``d - 1``
  shifted additions of the input (``d = 1``: a plain shift, free), a tree of depth ``ceil(log2 d)``;
  the layer's depth is that of its weight with the most digits (the critical path), never the
  mean. Each adder of ``a`` bits costs ``a`` LUTs (one LUT + carry per bit on UltraScale+). Inputs
  wider than ``DSP_MIN_BITS`` times weights wider than ``DSP_MIN_BITS`` go to a DSP instead
  (Vivado's default mapping of wide products).
* **Accumulation**: per output, ``nonzero - 1`` additions of the accumulator width (hls4ml's
  ``accum_t``), as a balanced tree of depth ``ceil(log2(nonzero))``.
* **Data x data products**: ``Multiply`` layers, and ``Merge`` layers whose ``op`` is ``multiply``
  (hls4ml 1.3 converts Keras ``Multiply`` and HGQ2 ``QMultiply``, the score's squarers, into class
  ``Merge``): an ``a x b`` array multiplier, ``a * b / 2`` LUTs, or a DSP when both widths exceed
  ``DSP_MIN_BITS``. Other ``Merge`` ops (add, subtract) are one adder per output.
* **Latency**: the critical path is the sum over layers of (multiplier adder levels + accumulation
  depth) at ``ADDER_NS`` per level (a ~16-bit carry chain plus routing on UltraScale+), divided into
  clock cycles, plus one cycle for the output register (an hls4ml io_parallel Latency design
  registers its output): ``latency_cycles = ceil(path / clock) + 1``. II = reuse factor.
* **FF**: one register per output bit of every pipeline stage boundary, approximated as the
  output bits of each layer times the cycles it spans (at least one).
"""

from __future__ import annotations

import logging
import math
from typing import Any

logger = logging.getLogger(__name__)

ADDER_NS = 1.0
DSP_MIN_BITS = 10
LABEL = "model estimate"


def _dense(row: dict[str, Any]) -> dict[str, float]:
    w = row["weights"]
    a = max(row["in_widths"] or [w["width"]])
    if a > DSP_MIN_BITS and w["width"] > DSP_MIN_BITS:
        dsp, mult_luts, mult_levels = w["n_nonzero"], 0.0, 1
    else:
        dsp = 0
        adders = max(0, w["csd_digits"] - w["n_nonzero"])
        mult_luts = adders * (a + 1)
        # the critical path: the weight with the most CSD digits (older metadata: the mean, rounded up)
        d_max = w.get("max_csd_digits") or math.ceil(w["csd_digits"] / max(1, w["n_nonzero"]))
        mult_levels = math.ceil(math.log2(d_max)) if adders and d_max > 1 else 0
    nz = w["nonzero_per_output"]
    acc_luts = sum(max(0, k - 1) for k in nz) * w["accum_width"]
    depth = math.ceil(math.log2(max(nz))) if nz and max(nz) > 1 else 0
    return {
        "LUT": mult_luts + acc_luts,
        "DSP": dsp,
        "levels": mult_levels + depth,
        "multipliers": w["n_nonzero"],
    }


def is_product(row: dict[str, Any]) -> bool:
    """A data x data product: a ``Multiply`` layer or a ``Merge`` of op ``multiply``."""
    return row["class"] == "Multiply" or (row["class"] == "Merge" and row.get("op") == "multiply")


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
    """Add/subtract: one adder per output; activations, quantizers: about one LUT per output bit."""
    n, width = row["n_out"], row["out_width"]
    if row["class"] in ("Add", "Subtract", "Merge"):
        return {"LUT": n * width, "DSP": 0, "levels": 1, "multipliers": 0}
    return {"LUT": n * width * 0.5, "DSP": 0, "levels": 0, "multipliers": 0}


def estimate(layers: list[dict[str, Any]], clock_period_ns: float, reuse_factor: int = 1) -> dict[str, Any]:
    """Latency (cycles, ns), II and LUT/FF/DSP/BRAM of the layers (see the module docstring)."""
    total = {"LUT": 0.0, "FF": 0.0, "DSP": 0, "BRAM_18K": 0}
    levels, n_mult, per_layer = 0, 0, []
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
        total["LUT"] += cost["LUT"]
        total["DSP"] += cost["DSP"]
        cycles_here = max(1, math.ceil(cost["levels"] * ADDER_NS / clock_period_ns))
        total["FF"] += row["n_out"] * row["out_width"] * (cycles_here if cost["levels"] else 0)
        per_layer.append(
            {"name": row["name"], "class": row["class"], **{k: round(v, 1) for k, v in cost.items()}}
        )
    path_ns = levels * ADDER_NS
    cycles = math.ceil(path_ns / clock_period_ns) + 1  # + the output register stage
    return {
        "source": LABEL,
        "label": "ESTIMATE (first-order model, no vendor tools)",
        "latency_cycles": cycles,
        "latency_ns": cycles * clock_period_ns,
        "ii_cycles": reuse_factor,
        "ii_ns": reuse_factor * clock_period_ns,
        "critical_path_ns": path_ns,
        "adder_levels": levels,
        "multipliers": n_mult,
        "resources": {
            "LUT": int(round(total["LUT"])),
            "FF": int(round(total["FF"])),
            "DSP": int(total["DSP"]),
            "BRAM_18K": 0,
        },
        "layers": per_layer,
        "assumptions": {"adder_ns": ADDER_NS, "dsp_min_bits": DSP_MIN_BITS},
    }
