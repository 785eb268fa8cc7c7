"""Firmware emulation vs the QAT Keras model on every event: exact equality, trigger decisions, and
on a mismatch the first layer whose outputs differ.

The scores come from the fast emulator (:class:`l1ad.emulation.fast.FastEmulator`) when one is
given, and hls4ml's C-simulation then cross-checks it on the first ``csim_sample`` events (any
difference is a mismatch); without one the C-simulation scores every event.

Bit-exact means equal: the firmware score and the Keras score are compared with ``==`` (float64
holds every fixed-point value exactly); any difference counts as a mismatch. Trigger decisions
are computed twice with :func:`l1ad.hls.thresholds.fires`, independently: in Python on the Keras
score (``score > threshold``) and on the firmware score as an integer of its fixed-point type
against the header integers (``score_int > THRESHOLD_RAW``). A run over zero events is not OK.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.core.files import atomic_path
from l1ad.core.fixed_point import FixedPoint
from l1ad.hls.convert import keras_predict
from l1ad.hls.thresholds import fires

logger = logging.getLogger(__name__)


@dataclass
class LayerDiff:
    """Per-layer comparison of firmware and Keras intermediate outputs."""

    keras_layer: str
    hls_layer: str
    n_values: int
    n_mismatch: int


@dataclass
class EmulationResult:
    """Outcome of :func:`emulate`: counts of events, score and decision mismatches, first bad layer."""

    target: str
    n_events: int
    n_mismatch: int
    decision_mismatch: dict[str, int] = field(default_factory=dict)
    fire_counts: dict[str, int] = field(default_factory=dict)
    first_bad_layer: str | None = None
    layers: list[LayerDiff] = field(default_factory=list)
    events_per_second: float = 0.0
    mismatch_examples: list[dict[str, Any]] = field(default_factory=list)
    emulator: str = "hls4ml C-sim"
    csim_check: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """Every event bit-exact and every decision equal, over at least one event; the C-sim agrees."""
        csim_ok = self.csim_check is None or self.csim_check["n_mismatch"] == 0
        return (
            self.n_events > 0
            and self.n_mismatch == 0
            and not any(self.decision_mismatch.values())
            and csim_ok
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d

    def summary(self) -> str:
        lines = [
            f"{self.target}: {self.n_events} events, {self.n_mismatch} score mismatches "
            f"({self.events_per_second:,.0f} events/s {self.emulator})"
        ]
        if self.csim_check is not None:
            c = self.csim_check
            lines.append(f"  hls4ml C-sim cross-check: {c['n_events']} events, {c['n_mismatch']} mismatches vs "
                         f"{self.emulator} ({c['events_per_second']:,.0f} events/s)")  # fmt: skip
        for key, n in self.decision_mismatch.items():
            lines.append(f"  trigger {key}: {self.fire_counts.get(key, 0)} fire, {n} decision mismatches")
        if self.first_bad_layer:
            lines.append(f"  first layer that differs: {self.first_bad_layer}")
        if self.n_events == 0:
            lines.append("NO EVENTS: nothing was compared (empty events file or --limit 0)")
        else:
            lines.append("BIT-EXACT" if self.ok else "MISMATCH")
        return "\n".join(lines)


# --------------------------------------------------------------------------- pure helpers
def mismatching_events(y_fw: np.ndarray, y_ref: np.ndarray) -> np.ndarray:
    """Boolean mask (N,): events whose outputs are not all exactly equal."""
    a = np.asarray(y_fw, dtype=np.float64).reshape(len(y_fw), -1)
    b = np.asarray(y_ref, dtype=np.float64).reshape(len(y_ref), -1)
    if a.shape != b.shape:
        raise ValueError(f"output shapes differ: firmware {a.shape}, Keras {b.shape}")
    return np.any(a != b, axis=1)


def count_mismatches(y_fw: np.ndarray, y_ref: np.ndarray) -> int:
    """Events whose outputs are not all exactly equal."""
    return int(np.sum(mismatching_events(y_fw, y_ref)))


def score_ints(scores: np.ndarray, score_type: FixedPoint) -> np.ndarray:
    """Firmware scores as integers of their fixed-point type (exact: scores lie on the grid)."""
    s = np.asarray(scores, dtype=np.float64) * 2.0**score_type.f
    if not np.all(s == np.round(s)):
        raise ValueError(f"scores are not on the grid of {score_type.hls()}")
    return s.astype(np.int64)


def threshold_arrays(thresholds: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """``(values, raws)`` of metadata.json thresholds: float thresholds and the header integers."""
    values = np.array([t["value"] for t in thresholds], dtype=np.float64)
    return values, np.array([t["raw"] for t in thresholds], dtype=np.int64)


def match_layers(keras_names: list[str], hls_names: list[str]) -> list[tuple[str, str]]:
    """Pair each Keras layer with the last hls4ml layer named ``L`` or ``L_<suffix>`` (graph order).

    hls4ml splits a Keras layer into parts (``enc1_iq`` input quantizer, ``enc1`` dense,
    ``enc1_relu`` activation): the last part is the Keras layer's output.
    """
    own = set(keras_names)
    pairs = []
    for name in keras_names:
        parts = [h for h in hls_names if h == name or (h.startswith(name + "_") and h not in own)]
        if parts:
            pairs.append((name, parts[-1]))
    return pairs


def compare_layers(
    keras_outputs: dict[str, np.ndarray],
    hls_outputs: dict[str, np.ndarray],
    keras_order: list[str],
    hls_types: dict[str, str] | None = None,
) -> list[LayerDiff]:
    """Per-layer mismatch counts for the matched layers, in Keras order (sizes must agree).

    hls4ml fuses the next layer's input quantizer into a layer's output type (``enc1_relu`` is
    written in the quantized type that ``latent`` reads): a firmware value agrees when it equals the
    Keras value or the Keras value converted to the firmware layer's type (``hls_types``).
    """
    out = []
    for k_name, h_name in match_layers(keras_order, list(hls_outputs)):
        k = np.asarray(keras_outputs[k_name], dtype=np.float64).reshape(len(keras_outputs[k_name]), -1)
        h = np.asarray(hls_outputs[h_name], dtype=np.float64)
        if k.shape != h.shape:
            logger.debug(
                "layer %s/%s: shapes %s and %s differ, not compared", k_name, h_name, k.shape, h.shape
            )
            continue
        agree = k == h
        if hls_types and h_name in hls_types:
            agree |= FixedPoint.parse(hls_types[h_name]).quantize(k) == h
        out.append(LayerDiff(k_name, h_name, int(k.size), int(np.sum(~agree))))
    return out


def first_bad(layers: list[LayerDiff]) -> str | None:
    for d in layers:
        if d.n_mismatch:
            return f"{d.keras_layer} (hls4ml {d.hls_layer}: {d.n_mismatch}/{d.n_values} values differ)"
    return None


# --------------------------------------------------------------------------- Keras side
def keras_layer_outputs(model: Any, x: np.ndarray) -> tuple[dict[str, np.ndarray], list[str]]:
    """Outputs of every non-input layer of a functional Keras model, and the layer order."""
    import keras

    layers = [lay for lay in model.layers if not isinstance(lay, keras.layers.InputLayer)]
    probe = keras.Model(model.inputs, [lay.output for lay in layers])
    ys = probe.predict(np.asarray(x, dtype=np.float32), verbose=0, batch_size=8192)
    ys = ys if isinstance(ys, list | tuple) else [ys]
    return {lay.name: np.asarray(y) for lay, y in zip(layers, ys, strict=True)}, [lay.name for lay in layers]


def trace_first_difference(model: Any, csim: Any, x: np.ndarray, project: int | str = 0) -> list[LayerDiff]:
    """Per-layer comparison of Keras and the C-sim trace hooks on the inputs ``x``."""
    _, hls_outputs = csim.trace(x, project)
    keras_outputs, order = keras_layer_outputs(model, x)
    types = {lay["name"]: lay["cpp"] for lay in csim._meta(project)["trace_layers"]}
    return compare_layers(keras_outputs, hls_outputs, order, types)


# --------------------------------------------------------------------------- the run
def emulate(
    csim: Any,
    model: Any,
    inputs: Any,
    project: int | str = 0,
    chunk: int = 65536,
    progress: bool = True,
    scores_out: str | Path | None = None,
    n_total: int | None = None,
    max_trace_events: int = 256,
    n_threads: int | None = None,
    fast: Any | None = None,
    csim_sample: int = 100_000,
    menu: Any | None = None,
) -> EmulationResult:
    """Score every event (``inputs``: an array or an iterator of (n, 57) chunks) with ``fast``, else the C-sim.

    Compares each chunk with Keras, counts mismatching events and trigger decisions, and traces
    the mismatching events layer by layer (C-sim trace hooks). With ``fast``, the C-sim also
    scores the first ``csim_sample`` events and must agree exactly (``csim_check``). Scores are
    saved to exactly ``scores_out`` (in .npy format, atomically) if given. With ``menu``
    (:class:`l1ad.emulation.trigger.CompiledMenu`) the firmware decisions are the generated header's
    own ``fires()``; they must equal both the Python decision on the Keras score and the integer
    compare of :func:`l1ad.hls.thresholds.fires`.
    """
    meta = csim._meta(project)
    score_type = FixedPoint.from_dict(meta["output"]["fixed_point"])
    thresholds = meta.get("thresholds") or []
    keys = [f"{t['rate_khz']:g}kHz" for t in thresholds]
    values, raws = threshold_arrays(thresholds)
    chunks = _chunks(inputs, chunk)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_total, unit="ev", desc=f"emulate {meta['target']}", file=sys.stderr)
    result = EmulationResult(meta["target"], 0, 0, dict.fromkeys(keys, 0), dict.fromkeys(keys, 0))
    if fast is not None:
        result.emulator = fast.name
        result.csim_check = {"n_events": 0, "n_mismatch": 0, "events_per_second": 0.0, "examples": []}
    all_scores, bad_x, t_sim, t_csim = [], [], 0.0, 0.0
    for x in chunks:
        t0 = time.perf_counter()
        y_fw = (fast.predict(x, n_threads=n_threads) if fast is not None else
                csim.predict(x, project, n_threads=n_threads))  # fmt: skip
        t_sim += time.perf_counter() - t0
        if fast is not None:
            seconds, csim_bad = _cross_check(csim, project, x, y_fw, result, csim_sample, n_threads)
            t_csim += seconds
            if len(csim_bad) and sum(len(b) for b in bad_x) < max_trace_events:
                bad_x.append(csim_bad[:max_trace_events])  # traced below: where the C-sim leaves Keras
        y_k = keras_predict(model, x)
        bad = mismatching_events(y_fw, y_k)
        result.n_events += len(x)
        result.n_mismatch += int(bad.sum())
        if bad.any() and sum(len(b) for b in bad_x) < max_trace_events:
            bad_x.append(x[bad][:max_trace_events])
            for idx in np.flatnonzero(bad)[: max(0, 5 - len(result.mismatch_examples))]:
                result.mismatch_examples.append(
                    {
                        "event": result.n_events - len(x) + int(idx),
                        "firmware": y_fw[idx].tolist(),
                        "keras": y_k[idx].tolist(),
                    }
                )
        if thresholds:
            d_py = fires(y_k[:, 0], values)
            d_int = fires(score_ints(y_fw[:, 0], score_type), raws)
            d_fw = menu.fires(y_fw[:, 0]) if menu is not None else d_int
            for j, key in enumerate(keys):
                differ = (d_py[:, j] != d_fw[:, j]) | (d_int[:, j] != d_fw[:, j])
                result.decision_mismatch[key] += int(np.sum(differ))
                result.fire_counts[key] += int(np.sum(d_fw[:, j]))
        if scores_out is not None:
            all_scores.append(y_fw)
        if bar is not None:
            bar.update(len(x))
    if bar is not None:
        bar.close()
    result.events_per_second = result.n_events / t_sim if t_sim > 0 else 0.0
    if result.csim_check is not None:
        c = result.csim_check
        c["events_per_second"] = c["n_events"] / t_csim if t_csim > 0 else 0.0
        if c["n_mismatch"]:
            logger.error("%s: %s differs from the hls4ml C-sim on %d/%d events", meta["target"],
                         result.emulator, c["n_mismatch"], c["n_events"])  # fmt: skip
    if scores_out is not None:
        scores = np.concatenate(all_scores) if all_scores else np.zeros((0, meta["output"]["size"]))
        with atomic_path(scores_out, suffix=".npy") as tmp:
            np.save(tmp, scores.astype(np.float64))
    if bad_x:
        xb = np.concatenate(bad_x)[:max_trace_events]
        result.layers = trace_first_difference(model, csim, xb, project)
        result.first_bad_layer = first_bad(result.layers) or "none of the traced layers (the output stage)"
        logger.error(
            "%s: %d/%d events differ; first layer: %s",
            meta["target"],
            result.n_mismatch,
            result.n_events,
            result.first_bad_layer,
        )
    return result


def _cross_check(
    csim: Any,
    project: int | str,
    x: np.ndarray,
    y_fw: np.ndarray,
    result: EmulationResult,
    sample: int,
    n_threads: int | None,
) -> tuple[float, np.ndarray]:
    """C-sim on this chunk's share of the first ``sample`` events vs the fast scores: seconds, bad inputs."""
    c = result.csim_check
    k = max(0, min(len(x), sample - c["n_events"]))
    if k == 0:
        return 0.0, x[:0]
    t0 = time.perf_counter()
    y_cs = csim.predict(x[:k], project, n_threads=n_threads)
    seconds = time.perf_counter() - t0
    bad = mismatching_events(y_fw[:k], y_cs)
    for idx in np.flatnonzero(bad)[: max(0, 5 - len(c["examples"]))]:
        c["examples"].append({"event": c["n_events"] + int(idx), "fast": y_fw[idx].tolist(),
                              "csim": y_cs[idx].tolist()})  # fmt: skip
    c["n_events"] += k
    c["n_mismatch"] += int(bad.sum())
    return seconds, x[:k][bad]


def _chunks(inputs: Any, chunk: int):
    if isinstance(inputs, np.ndarray):
        for start in range(0, len(inputs), chunk):
            yield inputs[start : start + chunk]
    else:
        yield from inputs
