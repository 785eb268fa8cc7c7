"""hls4ml precisions in the project's fixed-point vocabulary: C++ spellings, :class:`FixedPoint`,
the model's input/output types and the layers with a C-simulation trace hook."""

from __future__ import annotations

import copy
from typing import Any

from l1ad.core.fixed_point import FixedPoint


def precision_cpp(precision: Any) -> str:
    """The C++ spelling hls4ml writes for a precision (``ap_fixed<13,6,AP_TRN,AP_SAT,0>``, ``ap_uint<4>``).

    Precisions not yet converted by the Vivado/Vitis backend are spelled by a converted copy.
    """
    if not hasattr(precision, "definition_cpp"):
        from hls4ml.backends.fpga.fpga_types import APTypeConverter

        precision = APTypeConverter().convert(copy.copy(precision))
    return precision.definition_cpp()


def precision_fixed_point(precision: Any) -> FixedPoint:
    """hls4ml precision -> :class:`FixedPoint`, exactly (all modes), by parsing its C++ spelling."""
    return FixedPoint.parse(precision_cpp(precision))


def io_precisions(hls_model: Any) -> dict[str, Any]:
    """Input/output C++ types, sizes and ``(k, i, f)`` of a single-input, single-output hls4ml model."""
    ins, outs = hls_model.get_input_variables(), hls_model.get_output_variables()
    if len(ins) != 1 or len(outs) != 1:
        raise ValueError(f"firmware models have one input and one output, got {len(ins)} and {len(outs)}")
    out = {}
    for key, var in (("input", ins[0]), ("output", outs[0])):
        fp = precision_fixed_point(var.type.precision)
        out[key] = {
            "name": var.name,
            "type_name": var.type.name,
            "cpp": precision_cpp(var.type.precision),
            "size": int(var.size()),
            "fixed_point": fp.to_dict(),
        }
    return out


def trace_layers(hls_model: Any) -> list[dict[str, Any]]:
    """Layers with a C-simulation trace hook, in graph order: ``[{name, size, cpp}]``."""
    out = []
    for layer in hls_model.get_layers():
        if not (layer.get_attr("function_cpp", None) and layer.get_attr("trace", False)):
            continue
        for var in layer.get_variables():
            out.append(
                {"name": layer.name, "size": int(var.size()), "cpp": precision_cpp(var.type.precision)}
            )
    return out
