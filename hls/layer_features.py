"""What a cost estimate needs from each hls4ml layer, recorded at build time in ``metadata.json``
(``estimate_layers``): class, input/output widths, and for weight layers the nonzero weights per
output and their canonical-signed-digit (CSD) digit counts. The estimate itself is the report
stage's (:mod:`l1ad.reports.estimate`); it reads these rows, never the hls4ml model."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from l1ad.hls.precision import precision_fixed_point


def csd_digits(n: int) -> int:
    """Nonzero digits of the canonical signed-digit form of an integer (``7 = 8 - 1``: 2)."""
    n = abs(int(n))
    count = 0
    while n:
        if n & 1:
            count += 1
            n = n + 1 if (n & 3) == 3 else n - 1
        n >>= 1
    return count


def layer_features(hls_model: Any) -> list[dict[str, Any]]:
    """What the estimate needs from each hls4ml layer (JSON-serializable, stored in metadata.json)."""
    out = []
    for layer in hls_model.get_layers():
        kind = layer.class_name
        # an Input layer's input is the model's port, not another layer's output variable
        inputs = [] if kind == "Input" else [layer.model.get_layer_output_variable(n) for n in layer.inputs]
        widths = [precision_fixed_point(v.type.precision).width for v in inputs]
        out_var = layer.get_output_variable()
        out_fp = precision_fixed_point(out_var.type.precision)
        row: dict[str, Any] = {
            "name": layer.name,
            "class": kind,
            "in_widths": widths,
            "out_width": out_fp.width,
        }
        row["n_out"] = int(out_var.size())
        if layer.get_attr("op") is not None:  # Merge: hls4ml 1.3 turns Multiply/Add/Subtract into one class
            row["op"] = str(layer.get_attr("op")).lower()
        weight = layer.weights.get("weight") if hasattr(layer, "weights") else None
        if weight is not None and weight.data is not None and np.asarray(weight.data).ndim == 2:
            w = np.asarray(weight.data, dtype=np.float64)
            wf = precision_fixed_point(weight.type.precision)
            ints = np.round(w * 2.0**wf.f).astype(np.int64)
            digits = [csd_digits(v) for v in ints.ravel()]
            accum = layer.get_attr("accum_t")
            row["weights"] = {
                "n_in": int(w.shape[0]),
                "width": wf.width,
                "nonzero_per_output": [int(v) for v in np.count_nonzero(ints, axis=0)],
                "csd_digits": int(sum(digits)),
                "max_csd_digits": int(max(digits, default=0)),  # the slowest constant multiplier
                "n_nonzero": int(np.count_nonzero(ints)),
                # the adder tree runs at the accumulator's width (hls4ml's accum_t), not the output's
                "accum_width": precision_fixed_point(accum.precision).width
                if accum is not None
                else out_fp.width,
            }
            # signed widths of the non-power-of-two constants: which multipliers HLS puts in DSPs
            nz = np.abs(ints[ints != 0])
            mult = Counter(int(v).bit_length() + 1 for v in nz.ravel() if int(v) & (int(v) - 1))
            row["weights"]["mult_widths"] = {str(k): v for k, v in sorted(mult.items())}
        else:
            act = layer.get_attr("activation")
            if act is not None:
                row["activation"] = str(act).lower()
            if layer.get_attr("activ_param") is not None:
                row["activ_param"] = float(layer.get_attr("activ_param"))
            table = layer.get_attr("table_t")
            if act is not None and table is not None:
                row["table_size"] = int(layer.get_attr("table_size"))
                row["table_width"] = precision_fixed_point(table.precision).width
        out.append(row)
    return out
