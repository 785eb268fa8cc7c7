"""ONNX export of a raw-event score module (:class:`~l1ad.serving.raw_scoring.RawEventScore`) and
its check with onnxruntime.

Exporter: ``torch.onnx.export(..., dynamo=True)`` (the default since torch 2.9; it goes through
``torch.export`` and onnxscript), opset :data:`OPSET`, the batch axis dynamic, weights inside the one
``model.onnx`` file (``external_data=False``: a Triton version directory holds a single file). The
legacy TorchScript-based exporter (``dynamo=False``) still exists in torch 2.13 but is deprecated.
A score built on ``grad_x E`` has no ONNX form (autograd is not an ONNX op) and is never exported.

Tolerance (:func:`compare`): the network runs in float32 on other kernels than torch's (MLAS GEMM,
another sigmoid), so the ONNX score agrees with the eager module only to float32 rounding. The check
is ``|onnx - eager| <= RTOL * |eager| + ATOL_SCALE * max|eager|`` with RTOL 1e-5 and ATOL_SCALE 1e-4
(an absolute term scaled by the score's range over the check events: a score near 0, such as a GMM
log-density, carries the float32 rounding of terms of the range's size). Measured on toy events with
the default network size (hidden 256, 3 blocks): max |onnx - eager| / max|eager| = 2.6e-6
(``ebm`` multiscale_gmm), 5.5e-7 (``ebm`` energy), 1.2e-7 (``score`` energy and score_norm).
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
from l1ad.serving.triton_config import INPUT_NAME, OUTPUT_NAME

logger = logging.getLogger(__name__)

OPSET = 18
RTOL, ATOL_SCALE = 1e-5, 1e-4
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


def compare(got: np.ndarray, ref: np.ndarray) -> dict[str, Any]:
    """Max abs/rel difference of ``got`` against ``ref`` and whether it is within the tolerance."""
    got, ref = np.asarray(got, np.float64).ravel(), np.asarray(ref, np.float64).ravel()
    if got.shape != ref.shape:
        raise ValueError(f"ONNX output shape {got.shape} != eager {ref.shape}")
    diff = np.abs(got - ref)
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    atol = ATOL_SCALE * scale
    rel = diff / np.where(ref != 0, np.abs(ref), 1.0)
    return {
        "n_events": int(ref.size),
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "max_rel_diff": float(rel.max()) if rel.size else 0.0,
        "max_abs_diff_over_range": float(diff.max() / scale) if diff.size and scale > 0 else 0.0,
        "rtol": RTOL,
        "atol": atol,
        "within_tolerance": bool(np.all(np.isfinite(got)) and np.all(diff <= RTOL * np.abs(ref) + atol)),
    }
