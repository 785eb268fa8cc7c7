"""Trigger thresholds in firmware: rate table -> integers in the score's fixed-point type -> C++ header.

The trigger fires on ``score > threshold`` (strictly greater, as in :mod:`l1ad.evaluation.metrics`).
The firmware score is a fixed-point number with ``f`` fractional bits, i.e. an integer ``s`` with
value ``s * 2**-f``. For a float threshold ``T`` the firmware threshold is the integer
``t = floor(T * 2**f)``: for every representable score, ``s > t`` iff ``s * 2**-f > T``, and it is
the only integer with this property (ties included: a score equal to ``T`` does not fire).

``t`` is not a value of the score type: the header compares the score's raw integer, sign-extended
to ``long long``, with ``t``, so ``t`` may lie outside ``[int_min, int_max]``. It is clamped to
``[int_min - 1, int_max]`` only to keep it small (both ends decide like the unclamped value): below
the range every score fires (``T < min``, also for an unsigned score and ``T < 0``), above it none
does. Firmware and Python therefore agree for every threshold.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.core.fixed_point import FixedPoint

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Threshold:
    """One trigger working point: target rate, float threshold and its firmware integer."""

    rate_khz: float
    value: float  # threshold on the float (Keras) score
    raw: int  # firmware integer: fires iff score_int > raw (may be int_min - 1: everything fires)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def threshold_int(value: float, score_type: FixedPoint) -> int:
    """Firmware integer ``t`` with ``score_int > t`` iff ``score > value``, for every representable score.

    ``floor(value * 2**f)`` clamped to ``[int_min - 1, int_max]`` (see the module docstring).
    """
    if math.isnan(value):
        raise ValueError("threshold is NaN")
    if value == math.inf:
        return score_type.int_max
    if value == -math.inf:
        return score_type.int_min - 1
    t = math.floor(value * 2.0**score_type.f)
    if t < score_type.int_min:
        logger.info("threshold %s is below the score range of %s: every score fires", value, score_type.hls())
    return max(score_type.int_min - 1, min(t, score_type.int_max))


def fires(scores: np.ndarray, thresholds: np.ndarray | float) -> np.ndarray:
    """The trigger decision ``score > threshold``, shape ``scores.shape + (n_thresholds,)``.

    Works on float scores and float thresholds (the Python decision) and on the firmware's score
    integers and ``Threshold.raw`` (the header's decision); integers are compared as int64.
    """
    s, t = np.asarray(scores), np.asarray(thresholds)
    if s.dtype.kind in "iu" and t.dtype.kind in "iu":
        return s.astype(np.int64)[..., None] > t.astype(np.int64).reshape(-1)
    return s.astype(np.float64)[..., None] > t.astype(np.float64).reshape(-1)


def make_thresholds(rate_table: list[dict[str, Any]], score_type: FixedPoint) -> tuple[Threshold, ...]:
    """Thresholds from rate-table rows ``{target_rate_khz, threshold, ...}``; unresolved rows skipped."""
    out = []
    for row in rate_table:
        value = row.get("threshold")
        if value is None or row.get("resolved") is False:
            logger.info(
                "rate %s kHz is not resolved by the background sample: skipped", row.get("target_rate_khz")
            )
            continue
        out.append(
            Threshold(float(row["target_rate_khz"]), float(value), threshold_int(float(value), score_type))
        )
    return tuple(sorted(out, key=lambda t: -t.rate_khz))


def _is_rate_table(obj: Any) -> bool:
    return (
        isinstance(obj, list)
        and len(obj) > 0
        and all(isinstance(r, dict) and "target_rate_khz" in r and "threshold" in r for r in obj)
    )


def find_rate_tables(doc: Any, path: str = "") -> dict[str, list[dict[str, Any]]]:
    """All rate tables (lists of ``{target_rate_khz, threshold}`` rows) in a JSON document, by JSON path."""
    if _is_rate_table(doc):
        return {path or "/": doc}
    found: dict[str, list[dict[str, Any]]] = {}
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        found.update(find_rate_tables(value, f"{path}/{key}"))
    return found


def read_rate_table(path: str | Path, model_names: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The rate table of an evaluation JSON; with several, the one whose JSON path ends with a model name.

    ``model_names`` are tried in order (e.g. ``"ae_compact/hgq"``, ``"ae_compact-hgq"``): the first
    that ends exactly one table path wins (evaluation.json: ``{"rates": {"<model>/<quant>": rows}}``).
    """
    doc = json.loads(Path(path).read_text())
    tables = find_rate_tables(doc)
    if not tables:
        raise ValueError(f"{path}: no rate table (rows with target_rate_khz and threshold)")
    if len(tables) == 1:
        return next(iter(tables.values()))
    for name in (n for n in model_names if n):
        matching = [k for k in tables if k.endswith("/" + name) or f"/{name}/" in k + "/"]
        if len(matching) == 1:
            return tables[matching[0]]
    raise ValueError(
        f"{path}: {len(tables)} rate tables ({', '.join(tables)}); none uniquely names the model "
        f"({', '.join(n for n in model_names if n) or 'no name'})"
    )


def _rate_label(rate_khz: float) -> str:
    text = f"{rate_khz:g}".replace(".", "p").replace("-", "m")
    return f"RATE_{text}KHZ"


def thresholds_header(
    thresholds: tuple[Threshold, ...] | list[Threshold], score_type: FixedPoint, namespace: str
) -> str:
    """C++ header ``<ns>_thresholds.h``: threshold integers and a ``fires`` helper.

    ``THRESHOLD_RAW[i]`` is :func:`threshold_int` (``floor(value * 2**f)``, possibly outside the score
    type); ``fires`` compares the score's raw integer, sign-extended to ``long long``, with it:
    identical to the Python decision ``score > value`` for every score and every threshold.
    """
    guard = f"{namespace.upper()}_THRESHOLDS_H_"
    w, f = score_type.width, score_type.f
    raw_t = f"ap_{'' if score_type.k else 'u'}int<{w}>"
    rows = "\n".join(f"    {t.raw},  // {t.rate_khz:g} kHz: score > {t.value!r}" for t in thresholds)
    rates = ", ".join(f"{t.rate_khz!r}" for t in thresholds)
    enums = "\n".join(f"    {_rate_label(t.rate_khz)} = {i}," for i, t in enumerate(thresholds))
    n = len(thresholds)
    return f"""// Trigger thresholds of {namespace}, generated by l1ad (l1ad.hls.thresholds). Do not edit.
// The trigger fires iff score > threshold. Score type: {score_type.hls()} ({f} fractional bits);
// THRESHOLD_RAW holds floor(threshold * 2^{f}), compared with the raw integer of the score (value * 2^{f})
// in long long: it may lie outside the score type (below its range: every score fires).
#ifndef {guard}
#define {guard}

#include "ap_fixed.h"
#include "ap_int.h"

namespace {namespace} {{

typedef {score_type.hls()} trigger_score_t;

static const unsigned N_THRESHOLDS = {n};

enum threshold_index {{
{enums}
}};

static const double THRESHOLD_RATE_KHZ[{max(n, 1)}] = {{{rates or "0"}}};

static const long long THRESHOLD_RAW[{max(n, 1)}] = {{
{rows or "    0,  // no thresholds"}
}};

// The score as its integer (value * 2^{f}), sign-extended to long long.
inline long long score_raw(trigger_score_t score) {{
    {raw_t} bits;
    bits.range({w - 1}, 0) = score.range({w - 1}, 0);
    return bits.to_int64();
}}

// The L1 decision at working point i: score > threshold i.
inline bool fires(trigger_score_t score, unsigned i) {{ return score_raw(score) > THRESHOLD_RAW[i]; }}

}} // namespace {namespace}

#endif
"""
