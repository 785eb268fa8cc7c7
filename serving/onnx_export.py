"""ONNX export of a raw-event score module (:class:`~l1ad.serving.raw_scoring.RawEventScore`) and
its check with onnxruntime.

Exporter: ``torch.onnx.export(..., dynamo=True)`` (the default since torch 2.9; it goes through
``torch.export`` and onnxscript), opset :data:`OPSET`, the batch axis dynamic, weights inside the one
``model.onnx`` file (``external_data=False``: a Triton version directory holds a single file). The
legacy TorchScript-based exporter (``dynamo=False``) still exists in torch 2.13 but is deprecated.
A score built on ``grad_x E`` has no ONNX form (autograd is not an ONNX op) and is never exported.

Tolerance (:func:`compare`): the network runs in float32 on other kernels than torch's (MLAS GEMM,
another sigmoid), so the ONNX score agrees with the eager module only to float32 rounding. Per event::

    |onnx - eager| <= TOLERANCE[score] * (|eager| + IQR)

where IQR is the interquartile range of the eager scores on the check events (:func:`spread`: robust
to an outlying event, and unchanged by a constant offset; their std if the IQR is 0). The ``|eager|`` term is float32's relative
rounding (an energy around -195 +- 7 carries rounding of 195, not of 7); the IQR term covers scores
near 0 whose terms are of the spread's size (a GMM log-density). ``multiscale_gmm`` has its own,
larger constant: its GMM standardizes float32 per-level features by their (small) spread, which
magnifies their rounding. Each constant is about 10x the worst case of ``max |onnx - eager| / (|eager|
+ IQR)`` (:data:`MEASURED_WORST`) over 1024 + 20000 toy background and 5000 anomalous toy events, for
the default network (hidden 256, 3 blocks, 10 levels, 4 epochs on 60000 toy events) and the toy one
(hidden 16, 1 block, 4 levels: the tests' ``TINY``):

* ``energy``: 2.3e-6 (default ``score``), 1.2e-6 (default ``ebm``), 1.2e-6 (toy); tolerance 2e-5;
* ``score_norm`` (``score`` network): 5.3e-7 (default), 1.0e-7 (toy); tolerance 5e-6;
* ``multiscale_gmm``: 7.8e-5 (default ``ebm``), 7.6e-6 (default ``score``), 1.5e-5 (toy); tolerance 8e-4.

(Measured as max |onnx - eager| / max|eager|, the form of the earlier check: 7.7e-7, 1.6e-7 and
1.1e-5 on the default network.) What matters for a trigger is also checked: at every threshold of
the run's rate table (:func:`l1ad.serving.thresholds.from_evaluation`) the flags ``score >
threshold`` of ONNX and eager agree on every event whose eager score is farther from the threshold
than its tolerance; the events within it are counted and reported (``near_threshold``), and may
flip. (Within the value tolerance, agreement away from the threshold follows; the counts say how
many events a threshold's flag depends on the kernels for.)
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from l1ad.core.files import atomic_path
from l1ad.events import schema
from l1ad.serving.thresholds import ThresholdTable, flags
from l1ad.serving.triton_config import INPUT_NAME, OUTPUT_NAME

logger = logging.getLogger(__name__)

OPSET = 18
#: ``|onnx - eager| <= TOLERANCE[score] * (|eager| + IQR(eager))`` (see the module docstring).
TOLERANCE = {"energy": 2e-5, "score_norm": 5e-6, "multiscale_gmm": 8e-4}
TOLERANCE_FORMULA = "|onnx - eager| <= c * (|eager| + spread), spread = IQR of eager over the check events"
#: ``max |onnx - eager| / (|eager| + IQR)`` measured per score and network size (module docstring).
MEASURED_WORST = {
    "energy": {"default_network": 2.3e-6, "toy_network": 1.2e-6},
    "score_norm": {"default_network": 5.3e-7, "toy_network": 1.0e-7},
    "multiscale_gmm": {"default_network": 7.8e-5, "toy_network": 1.5e-5},
}
EXPORTER = f"torch.onnx.export(dynamo=True, opset_version={OPSET}, external_data=False)"


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's chatter while it runs: onnxscript's INFO notes on its rewrites, the
    warning that the optional torchvision ops are not installed, its FutureWarnings."""
    quiet = {"onnxscript": logging.WARNING, "onnx_ir": logging.WARNING,
             "torch.onnx._internal.exporter._registration": logging.ERROR}  # fmt: skip
    loggers = [logging.getLogger(n) for n in quiet]
    levels = [lg.level for lg in loggers]
    for lg, level in zip(loggers, quiet.values(), strict=True):
        lg.setLevel(max(lg.getEffectiveLevel(), level))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def export_onnx(module: nn.Module, path: str | Path, example: torch.Tensor) -> float:
    """Export ``module`` (``forward(events (N, 57) float32)``) to ``path``; return the seconds it took."""
    batch = torch.export.Dim("batch", min=1)
    t0 = time.perf_counter()
    with _quiet_exporter(), atomic_path(path) as tmp:
        torch.onnx.export(
            module.eval(),
            (example,),
            str(tmp),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=OPSET,
            dynamo=True,
            dynamic_shapes={"events": {0: batch}},
            external_data=False,
            verbose=False,
        )
    seconds = time.perf_counter() - t0
    logger.debug("wrote %s (%.1f s)", path, seconds)
    return seconds


def run_onnx(path: str | Path, events: np.ndarray) -> np.ndarray:
    """Scores (N, 1) of ``events`` (N, 57) float32 with onnxruntime on the CPU."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.ascontiguousarray(np.asarray(events, dtype=np.float32).reshape(-1, schema.N_INPUTS))
    return session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]


def spread(ref: np.ndarray) -> float:
    """The spread of the eager scores: their interquartile range (the std if that is 0; 0 for < 2)."""
    ref = np.asarray(ref, np.float64).ravel()
    if ref.size < 2:
        return 0.0
    q1, q3 = np.percentile(ref, [25, 75])
    return float(q3 - q1) if q3 > q1 else float(ref.std())


def flag_agreement(got: np.ndarray, ref: np.ndarray, tol: np.ndarray, table: ThresholdTable) -> list[dict]:
    """Per threshold of ``table``: the flags of ``got`` and ``ref``, and where they differ.

    ``differ`` counts the events whose flags differ although their eager score is farther than its
    tolerance ``tol`` from the threshold (the check requires 0); ``near_threshold`` counts the
    events within it, ``differ_near_threshold`` those of them whose flag flipped.
    """
    rows = []
    for t in table.thresholds:
        want, have = flags(ref, t), flags(got, t)
        near = np.abs(ref - t.value) <= tol
        flipped = want != have
        rows.append({"rate_khz": t.rate_khz, "threshold": t.value, "flagged_eager": int(want.sum()),
                     "flagged_onnx": int(have.sum()), "near_threshold": int(near.sum()),
                     "differ_near_threshold": int((flipped & near).sum()),
                     "differ": int((flipped & ~near).sum())})  # fmt: skip
    return rows


def compare(
    got: np.ndarray, ref: np.ndarray, score: str, table: ThresholdTable | None = None
) -> dict[str, Any]:
    """ONNX scores ``got`` against the eager ``ref`` of ``score`` (both over the check events): the
    differences, the tolerance, the flags at ``table``'s thresholds, and whether all pass the check
    (``within_tolerance``: every value within its tolerance and no flag differing away from a threshold)."""
    got, ref = np.asarray(got, np.float64).ravel(), np.asarray(ref, np.float64).ravel()
    if got.shape != ref.shape:
        raise ValueError(f"ONNX output shape {got.shape} != eager {ref.shape}")
    if score not in TOLERANCE:
        raise ValueError(f"no ONNX tolerance for score {score!r}; known: {sorted(TOLERANCE)}")
    c = TOLERANCE[score]
    width = spread(ref)
    tol = c * (np.abs(ref) + width)
    diff = np.abs(got - ref)
    finite = bool(np.all(np.isfinite(got)))
    with np.errstate(divide="ignore", invalid="ignore"):  # tol 0 (eager 0, no spread): any diff is inf
        usage = np.where(diff > 0, diff / tol, 0.0)
    flag_rows = flag_agreement(got, ref, tol, table) if table is not None else []
    values_ok = finite and bool(np.all(diff <= tol))
    return {
        "n_events": int(ref.size),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "max_rel_diff": float((diff / np.where(ref != 0, np.abs(ref), 1.0)).max()) if diff.size else 0.0,
        "max_diff_over_tolerance": float(usage.max()) if usage.size else 0.0,
        "tolerance": {
            "formula": TOLERANCE_FORMULA,
            "c": c,
            "spread": width,
            "measured_worst": MEASURED_WORST[score],
        },
        "flags": flag_rows,
        "flags_agree": all(r["differ"] == 0 for r in flag_rows),
        "within_tolerance": values_ok and all(r["differ"] == 0 for r in flag_rows),
    }
