"""Keras QAT model -> hls4ml 1.3 HLS project for one firmware target.

:func:`build_project` converts the model (``hls4ml.converters.convert_from_keras_model``, io_parallel,
the target's strategy, a per-layer ``config_from_keras_model(granularity='name')`` config), writes a
complete Vitis/Vivado HLS project into the project directory, fills ``tb_data/`` with input and
output vectors from real events, adds the trigger thresholds header ``firmware/<ns>_thresholds.h``
and a ``metadata.json`` (no timestamps: the same model and target give byte-identical projects).

Every layer is written with its C-simulation trace hook (``nnet::save_layer_output`` inside
``#ifndef __SYNTHESIS__``, inert in synthesis and unless enabled), so the emulator can name the
first layer that differs from Keras without regenerating the project.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.events.io import atomic_write_text
from l1ad.hls import estimate, postprocess, thresholds
from l1ad.hls.target import FirmwareTarget
from l1ad.quantization.fixed_point import FixedPoint

logger = logging.getLogger(__name__)

METADATA_FILE = "metadata.json"
MODEL_SUFFIXES = (".keras", ".h5")


# --------------------------------------------------------------------------- model access
def find_model_file(model_dir: str | Path) -> Path:
    """The Keras model file of a model directory (``model.keras`` first), or the path itself if a file."""
    p = Path(model_dir)
    if p.is_file():
        return p
    if not p.is_dir():
        raise FileNotFoundError(f"model directory {p} does not exist")
    preferred = [p / f"model{s}" for s in MODEL_SUFFIXES]
    candidates = [q for q in preferred if q.is_file()] or sorted(
        q for s in MODEL_SUFFIXES for q in p.glob(f"*{s}")
    )
    if not candidates:
        raise FileNotFoundError(f"{p}: no Keras model file (*.keras, *.h5)")
    return candidates[0]


def read_model_meta(model_dir: str | Path) -> dict[str, Any]:
    """``meta.json`` of a model directory, {} if there is none."""
    p = Path(model_dir)
    meta = (p if p.is_dir() else p.parent) / "meta.json"
    return json.loads(meta.read_text()) if meta.is_file() else {}


def load_firmware_model(model_dir: str | Path) -> tuple[Any, str | None]:
    """``(keras model, post-processing note)``: the model whose output the firmware computes.

    Chosen by ``meta.json["framework"]``, explicitly:

    * ``"keras"`` (an l1ad-trained model directory): ``l1ad.models.keras_score.keras_model_for_firmware``,
      which knows each architecture's deployed model and what numpy does with its output (an
      unknown architecture is an error there, not a silent fallback);
    * no ``meta.json``, a model file, or ``"hgq2"`` (a plain HGQ2 Keras model file): the model file,
      loaded with the HGQ2 layers registered (``import hgq``);
    * anything else (``torch``, ``sklearn``): ValueError, there is no hls4ml firmware for it.
    """
    p = Path(model_dir)
    framework = read_model_meta(p).get("framework") if p.is_dir() else None
    if framework == "keras":
        from l1ad.models.keras_score import keras_model_for_firmware

        fm = keras_model_for_firmware(p)
        return fm.model, fm.postprocessing
    if framework not in (None, "hgq2"):
        raise ValueError(f"{p}/meta.json: framework {framework!r} has no hls4ml firmware (keras or hgq2)")
    import hgq  # noqa: F401  (registers the HGQ2 layers for deserialization)
    import keras

    return keras.models.load_model(find_model_file(p), compile=False), None


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- precision helpers
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


# --------------------------------------------------------------------------- conversion
def make_hls_config(model: Any, target: FirmwareTarget) -> dict[str, Any]:
    """Per-layer hls4ml config: the target's strategy and reuse factor, every layer traceable."""
    import hls4ml

    config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend=target.backend)
    config["Model"]["Strategy"] = target.strategy
    config["Model"]["ReuseFactor"] = target.reuse_factor
    for layer in config.get("LayerName", {}).values():
        layer["Trace"] = True
        if "ReuseFactor" in layer:
            layer["ReuseFactor"] = target.reuse_factor
    return config


def convert(
    model: Any,
    target: FirmwareTarget,
    output_dir: str | Path,
    input_data_tb: str | None = None,
    output_data_tb: str | None = None,
) -> Any:
    """hls4ml ``ModelGraph`` of ``model`` for ``target`` (not yet written)."""
    import hls4ml

    hls_model = hls4ml.converters.convert_from_keras_model(
        model,
        output_dir=str(output_dir),
        project_name=target.project_name,
        input_data_tb=input_data_tb,
        output_data_tb=output_data_tb,
        backend=target.backend,
        hls_config=make_hls_config(model, target),
        io_type=target.io_type,
        part=target.part,
        clock_period=target.clock_period_ns,
        namespace=target.namespace,
        write_weights_txt=False,
        write_tar=False,
    )
    hls_model.config.trace_output = True
    return hls_model


def keras_predict(model: Any, x: np.ndarray, batch_size: int = 8192) -> np.ndarray:
    """Keras scores as float64, shape (N, n_out)."""
    y = model.predict(np.asarray(x, dtype=np.float32), batch_size=batch_size, verbose=0)
    return np.asarray(y, dtype=np.float64).reshape(len(x), -1)


# --------------------------------------------------------------------------- metadata
def weights_sha256(model: Any) -> str:
    """sha256 of a Keras model's content: ``get_weights()`` arrays (dtype, shape, bytes, in order)
    and the model's config JSON (``sort_keys``).

    Unlike ``model_sha256`` (the model file, a zip with timestamps: saving the same model twice
    changes it), this identifies the model for reproducibility: same weights and architecture, same hash.
    """
    h = hashlib.sha256()
    for w in model.get_weights():
        a = np.ascontiguousarray(w)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    h.update(json.dumps(model.get_config(), sort_keys=True).encode())
    return h.hexdigest()


def tool_versions() -> dict[str, str]:
    """Versions of the tools that shape a firmware project (recorded in ``metadata.json``)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("hls4ml", "hgq2", "da4ml", "keras"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "absent"
    return out


def make_metadata(
    target: FirmwareTarget,
    model_file: Path,
    model: Any,
    model_meta: dict[str, Any],
    io: dict[str, Any],
    layers: list[dict[str, Any]],
    trigger: tuple[thresholds.Threshold, ...],
    tb_events: int,
    stamp: str,
) -> dict[str, Any]:
    """The project's ``metadata.json`` content: hashes, precisions, part, clock, budgets, versions.

    ``weights_sha256`` (:func:`weights_sha256`) identifies the model for reproducibility;
    ``model_sha256`` identifies the exact model file the project was built from (the staleness check
    of ``l1ad firmware emulate``): re-saving an unchanged model changes it, not ``weights_sha256``.
    """
    return {
        "target": target.name,
        "target_config": target.to_dict(),
        "project_name": target.project_name,
        "namespace": target.namespace,
        "model_file": model_file.name,
        "model_sha256": sha256_file(model_file),
        "weights_sha256": weights_sha256(model),
        "model": model_meta.get("model"),
        "quantization": model_meta.get("quantization"),
        "data_sha256": model_meta.get("data_sha256"),
        "input": io["input"],
        "output": io["output"],
        "part": target.part,
        "backend": target.backend,
        "clock_period_ns": target.clock_period_ns,
        "strategy": target.strategy,
        "reuse_factor": target.reuse_factor,
        "io_type": target.io_type,
        "budgets": {
            "ii_ns": target.ii_budget_ns,
            "latency_ns": target.latency_budget_ns,
            "resource_fraction": target.resource_budget_fraction,
            "require_zero_dsp": target.require_zero_dsp,
        },
        "thresholds": [t.to_dict() for t in trigger],
        "thresholds_header": f"firmware/{target.namespace}_thresholds.h" if trigger else None,
        "trace_layers": layers,
        "tb_events": tb_events,
        "lib_stamp": stamp,
        "versions": tool_versions(),
    }


def read_metadata(project_dir: str | Path) -> dict[str, Any]:
    path = Path(project_dir) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run `l1ad firmware build` first")
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- the build
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

    ``model`` defaults to :func:`load_firmware_model` of the target's model dir; ``tb_inputs``
    (network inputs on the input grid) default to the first ``tb_events`` events of the
    target's ``events`` file, if any. ``run_dir``: see :meth:`FirmwareTarget.resolve`.
    """
    import time

    t0 = time.perf_counter()
    model_dir = target.resolve(target.model, run_dir)
    postprocessing = None
    if model is None:
        model, postprocessing = load_firmware_model(model_dir)
    model_file = find_model_file(model_dir)
    model_meta = read_model_meta(model_dir)
    if tb_inputs is None and target.events is not None:
        from l1ad.emulation.events_file import load_inputs

        tb_inputs = load_inputs(target.resolve(target.events, run_dir), limit=target.tb_events)
    final = Path(project_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    # build beside the destination and swap it in at the end: never a half-written project
    out = final.parent / f".{final.name}.partial"
    if out.exists():
        shutil.rmtree(out)

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
        (out / "firmware" / f"{target.namespace}_thresholds.h").write_text(header)

    stamp = postprocess.postprocess_project(out, target.namespace)
    layers = trace_layers(hls_model)
    meta = make_metadata(target, model_file, model, model_meta, io, layers, trigger, n_tb, stamp)
    meta["postprocessing"] = postprocessing
    meta["estimate_layers"] = estimate.layer_features(hls_model)
    atomic_write_text(out / METADATA_FILE, json.dumps(meta, indent=1, sort_keys=True) + "\n")
    if target.strategy == "distributed_arithmetic":
        from l1ad.emulation.rtl import write_rtl

        write_rtl(model, out)
    if final.exists():
        shutil.rmtree(final)
    os.replace(out, final)
    seconds = time.perf_counter() - t0
    logger.info("wrote %s (%s, %s) in %.1f s", final, target.strategy, target.part, seconds)
    return BuildResult(final, meta, seconds)
