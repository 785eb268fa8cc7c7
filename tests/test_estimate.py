"""The first-order ESTIMATE of a Latency-strategy project (reports/estimate.py) on hand-built layer rows:
the score's squarers cost as multipliers whatever class hls4ml gives them, the logic depth follows the
slowest constant multiplier, and the adder tree runs at the accumulator's width. Each expected value is
computed from the module's documented cost model, not copied from its output."""

from __future__ import annotations

import math

import pytest

from l1ad.reports.estimate import CLOCK_UNCERTAINTY, DSP_MIN_BITS, estimate, is_product


def _merge(op: str, n: int, width: int, name: str = "sq") -> dict:
    return {"name": name, "class": "Merge", "op": op, "in_widths": [width, width], "out_width": 2 * width,
            "n_out": n}  # fmt: skip


@pytest.mark.parametrize("width", [6, DSP_MIN_BITS + 2])
def test_a_merge_of_op_multiply_is_a_multiplier(width: int) -> None:
    """hls4ml 1.3 turns Keras Multiply / HGQ2 QMultiply into class Merge (op an attribute): the squarer
    must still cost an a x b multiplier per output (LUTs, or a DSP when both inputs are wide)."""
    n = 57
    sq = estimate([_merge("multiply", n, width)], 5.0)
    add = estimate([_merge("add", n, width, "sum")], 5.0)
    row = sq["layers"][0]
    assert row["multipliers"] == n
    if width > DSP_MIN_BITS:
        assert sq["resources"]["DSP"] == n and row["LUT"] == 0
    else:
        assert sq["resources"]["DSP"] == 0 and row["LUT"] == n * width * width / 2
        assert row["levels"] == math.ceil(math.log2(width)) > add["layers"][0]["levels"] == 1
    # the adder branch (what the estimate did before): one adder per output, no multiplier
    assert add["layers"][0]["multipliers"] == 0 and add["resources"]["LUT"] == n * 2 * width
    assert is_product({"class": "Multiply"}) and not is_product({"class": "Merge", "op": "subtract"})


def _dense(digits: list[int], nonzero_per_output: list[int], accum_width: int, out_width: int = 8) -> dict:
    return {
        "name": "dense", "class": "Dense", "in_widths": [8], "out_width": out_width,
        "n_out": len(nonzero_per_output),
        "weights": {"n_in": 4, "width": 8, "nonzero_per_output": nonzero_per_output,
                    "csd_digits": sum(digits), "max_csd_digits": max(digits), "n_nonzero": len(digits),
                    "accum_width": accum_width},
    }  # fmt: skip


def test_logic_depth_follows_the_slowest_multiplier_not_the_mean() -> None:
    # seven one-digit weights (plain shifts) and one of four digits: mean 11/8 digits -> 1 level,
    # but that weight is a 3-adder tree of depth 2 on the critical path
    row = _dense([1] * 7 + [4], [4, 4], accum_width=12)
    est = estimate([row], 1.0)
    mult_levels = math.ceil(math.log2(4))
    acc_depth = math.ceil(math.log2(4))
    assert est["adder_levels"] == mult_levels + acc_depth == 4
    # HLS stages the path at the clock less its uncertainty, no register when it fits in one stage
    # (calibrated on hls4ml's baselines: their one-level designs report latency 0)
    stage_ns = 1.0 * (1 - CLOCK_UNCERTAINTY)
    assert est["latency_cycles"] == math.ceil(4 * 1.0 / stage_ns) - 1 == 4


def test_accumulation_costs_the_accumulator_width() -> None:
    narrow = estimate([_dense([1] * 8, [4, 4], accum_width=8)], 5.0)
    wide = estimate([_dense([1] * 8, [4, 4], accum_width=20)], 5.0)
    # per output, nonzero - 1 additions at the accumulator's width; plain shifts cost nothing
    assert narrow["resources"]["LUT"] == 2 * 3 * 8
    assert wide["resources"]["LUT"] == 2 * 3 * 20
