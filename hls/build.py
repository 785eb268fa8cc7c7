"""Write the complete, reproducible HLS project of one firmware target, swapped in atomically.

:func:`build_project` converts the model (:mod:`l1ad.hls.convert`), writes a complete Vitis/Vivado
HLS project, fills ``tb_data/`` with input and output vectors from real events, adds the trigger
thresholds header ``firmware/<ns>_thresholds.h``, the ``metadata.json`` (:mod:`l1ad.hls.metadata`)
and, for ``distributed_arithmetic`` targets, the da4ml Verilog (:mod:`l1ad.hls.rtl`). The project is
built in a staging directory beside the destination and swapped in at the end
(:func:`l1ad.core.files.replace_dir`): never a half-written project, never a moment without one.
The build never calls the report stage; ``l1ad firmware report`` reads what was built.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.core.files import atomic_write_text, replace_dir, staging_dir
from l1ad.core.fixed_point import FixedPoint
from l1ad.events.inputs import load_inputs
from l1ad.hls import postprocess, thresholds
from l1ad.hls.convert import convert, keras_predict
from l1ad.hls.layer_features import layer_features
from l1ad.hls.metadata import METADATA_FILE, make_metadata
from l1ad.hls.precision import io_precisions, trace_layers
from l1ad.hls.target import FirmwareTarget
from l1ad.hls.trigger_menu import header_path
from l1ad.models import registry

logger = logging.getLogger(__name__)


def check_output_type(model_meta: dict[str, Any], io: dict[str, Any]) -> None:
    """The converted model's output type must hold every value of the type its training declared
    (``meta.json["output_type"]``: the exact score type of the compact autoencoder, the reconstruction
    grid of ``ae_ref``); a narrower one would wrap or saturate scores the QAT model computes exactly."""
    declared = model_meta.get("output_type")
    if not declared:
        return
    want, got = FixedPoint.parse(declared), FixedPoint.from_dict(io["output"]["fixed_point"])
    if got.k < want.k or got.i < want.i or got.f < want.f:
        raise ValueError(
            f"{model_meta.get('model')}/{model_meta.get('quantization')}: hls4ml output type {io['output']['cpp']} "
            f"cannot hold the declared output type {declared}"
        )


@dataclass(frozen=True)
class BuildResult:
    project_dir: Path
    metadata: dict[str, Any]
    seconds: float


def build_project(
    target: FirmwareTarget,
    project_dir: str | Path,
    model: Any | None = None,
    tb_inputs: np.ndarray | None = None,
    run_dir: Path | None = None,
) -> BuildResult:
    """Convert the target's model and write the complete, reproducible HLS project.

    ``model`` defaults to :func:`l1ad.models.registry.firmware_model` of the target's model dir; ``tb_inputs``
    (network inputs on the input grid) default to the first ``tb_events`` events of the
    target's ``events`` file, if any. ``run_dir``: see :meth:`FirmwareTarget.resolve`.
    """
    t0 = time.perf_counter()
    model_dir = target.resolve(target.model, run_dir)
    postprocessing = None
    if model is None:
        model, postprocessing = registry.firmware_model(model_dir)
    model_file = registry.firmware_model_file(model_dir)
    model_meta = registry.firmware_model_meta(model_dir)
    if tb_inputs is None and target.events is not None:
        tb_inputs = load_inputs(target.resolve(target.events, run_dir), limit=target.tb_events)
    final = Path(project_dir)
    # build beside the destination and swap it in at the end: never a half-written project
    out = staging_dir(final)

    with tempfile.TemporaryDirectory(prefix="l1ad_tb_") as tmp:
        tb_in = tb_out = None
        n_tb = 0
        if tb_inputs is not None:
            x_tb = np.asarray(tb_inputs, dtype=np.float32)[: target.tb_events]
            n_tb = len(x_tb)
            tb_in, tb_out = os.path.join(tmp, "tb_input.npy"), os.path.join(tmp, "tb_output.npy")
            np.save(tb_in, x_tb)
            np.save(tb_out, keras_predict(model, x_tb).astype(np.float32))
        hls_model = convert(model, target, out, tb_in, tb_out)
        hls_model.write()

    io = io_precisions(hls_model)
    check_output_type(model_meta, io)
    score_type = FixedPoint.from_dict(io["output"]["fixed_point"])
    trigger: tuple[thresholds.Threshold, ...] = ()
    if target.thresholds_from is not None and io["output"]["size"] != 1:
        logger.warning(
            "%s: the firmware output has %d values, not a score: no thresholds header",
            target.name,
            io["output"]["size"],
        )
    elif target.thresholds_from is not None:
        name, quant = str(model_meta.get("model") or ""), str(model_meta.get("quantization") or "")
        names = (f"{name}/{quant}" if name and quant else "", Path(model_dir).name, name)
        table = thresholds.read_rate_table(target.resolve(target.thresholds_from, run_dir), names)
        trigger = thresholds.make_thresholds(table, score_type)
        header = thresholds.thresholds_header(trigger, score_type, target.namespace)
        atomic_write_text(header_path(out, target.namespace), header)

    stamp = postprocess.postprocess_project(out, target.namespace)
    layers = trace_layers(hls_model)
    meta = make_metadata(target, model_file, model, model_meta, io, layers, trigger, n_tb, stamp)
    meta["postprocessing"] = postprocessing
    if trigger:
        meta["thresholds_source"] = {"kind": "rate table", "file": str(target.thresholds_from)}
    meta["estimate_layers"] = layer_features(hls_model)
    atomic_write_text(out / METADATA_FILE, json.dumps(meta, indent=1, sort_keys=True) + "\n")
    if target.strategy == "distributed_arithmetic":
        from l1ad.hls.rtl import write_rtl

        write_rtl(model, out)
    replace_dir(out, final)
    seconds = time.perf_counter() - t0
    logger.info("wrote %s (%s, %s) in %.1f s", final, target.strategy, target.part, seconds)
    return BuildResult(final, meta, seconds)
