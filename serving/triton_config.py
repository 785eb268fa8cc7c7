"""The text of a Triton model repository export: ``config.pbtxt``, backend parameters, README.

Pure functions returning strings (written by :mod:`l1ad.serving.triton_export`). The config is
Triton's ``ModelConfig`` protobuf in text format: input ``INPUT__0`` TYPE_FP32 dims [57], output
``OUTPUT__0`` TYPE_FP64 dims [1]; with ``max_batch_size`` > 0 Triton's dims exclude the batch
dimension, so the tensors are (N, 57) and (N, 1). ``INPUT__<i>``/``OUTPUT__<i>`` is the PyTorch
backend's naming convention (argument/result position); the ONNX graphs use the same names.

Triton PyTorch backend parameters (names from triton-inference-server/pytorch_backend's README and
``src/pt/model_state.cc``; the backend ignores keys it does not know, so the ``l1ad_*`` tags ride along):

``DISABLE_OPTIMIZED_EXECUTION`` "true" (every TorchScript model)
    The backend then runs the scripted graph as written. With optimization on, TorchScript's
    profiling executor swaps autograd's backward for its own symbolic gradients from the second
    call on (measured: 1.5e-7 relative on ``ebm:score_norm``); off, every call is bitwise the
    registry's score. Off is not slower here: default-size ``ebm`` on 1 CPU thread, 1024 events,
    energy 6.0 ms (on: 5.5 ms), score_norm 18.7 ms (on: 36.7 ms).
``INFERENCE_MODE`` "false" (scores built on ``grad_x E`` only)
    The backend runs ``forward`` under ``torch::InferenceMode`` (on by default) inside a
    ``NoGradGuard`` that it always sets. The model switches grad mode back on itself, but
    InferenceMode cannot be overridden from inside, so autograd needs it off.
"""

from __future__ import annotations

from typing import Any

from l1ad.events import schema

VERSION = "1"  # the Triton version directory
TORCHSCRIPT_PLATFORM, ONNX_PLATFORM = "pytorch_libtorch", "onnxruntime_onnx"
INPUT_NAME, OUTPUT_NAME = "INPUT__0", "OUTPUT__0"
INPUT_ENCODING = (
    "FP32 (N, 57): [pT (GeV), eta, phi (rad)] of the 19 slots, slot-major (met, e1-e4, mu1-mu4, "
    "jet1-jet10); an absent object is all 0; an object is present iff its pT != 0 (MET always)"
)


def _q(text: str) -> str:
    """A protobuf text-format string literal."""
    if not text.isascii() or "\n" in text:
        raise ValueError(f"config string must be one line of ASCII: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def config_pbtxt(
    name: str,
    platform: str,
    max_batch_size: int,
    max_queue_delay_us: int,
    parameters: dict[str, str],
    comment: str = "",
) -> str:
    """The ``config.pbtxt`` of one exported score (``comment`` lines become ``#`` comments)."""
    lines = [f"# {c}" for c in comment.splitlines()]
    lines += [
        f"name: {_q(name)}",
        f"platform: {_q(platform)}",
        f"max_batch_size: {int(max_batch_size)}",
        f"input [\n  {{\n    name: {_q(INPUT_NAME)}\n    data_type: TYPE_FP32\n    dims: [ {schema.N_INPUTS} ]\n  }}\n]",
        f"output [\n  {{\n    name: {_q(OUTPUT_NAME)}\n    data_type: TYPE_FP64\n    dims: [ 1 ]\n  }}\n]",
        f"dynamic_batching {{\n  max_queue_delay_microseconds: {int(max_queue_delay_us)}\n}}",
        "instance_group [\n  {\n    count: 1\n    kind: KIND_CPU\n  }\n]",
    ]
    lines += [
        f"parameters {{\n  key: {_q(k)}\n  value {{ string_value: {_q(v)} }}\n}}"
        for k, v in parameters.items()
    ]
    return "\n".join(lines) + "\n"


def backend_parameters(platform: str, gradient: bool) -> dict[str, str]:
    """The Triton backend parameters an exported score needs (see the module docstring)."""
    if platform != TORCHSCRIPT_PLATFORM:
        return {}
    params = {"DISABLE_OPTIMIZED_EXECUTION": "true"}
    if gradient:
        params["INFERENCE_MODE"] = "false"
    return params


def triton_name(model_dir_name: str, score: str, primary: str) -> str:
    """``ebm-float`` for the primary score, ``ebm-float-score_norm`` for another one."""
    return model_dir_name if score == primary else f"{model_dir_name}-{score}"


def readme(summary: dict[str, Any]) -> str:
    """The repository's README: the input layout and one line per exported model."""
    lines = [
        "# l1ad Triton model repository",
        "",
        f"Exported by l1ad {summary['l1ad_version']} from `{summary['run_dir']}`.",
        "",
        f"Input `{INPUT_NAME}`: {INPUT_ENCODING}. Output `{OUTPUT_NAME}`: FP64 (N, 1), the anomaly",
        "score (higher = more anomalous), the same as `l1ad serve` returns for the same events.",
        "The model does not validate events: send events the l1ad service accepts.",
        "",
        "| Triton model | platform | score | needs grad_x E | ONNX variant |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['triton_model']} | {r['platform']} | {r['score_label']} | {r['needs_input_gradient']} | {r['onnx']} |"
        for r in summary["models"]
    ]
    lines += ["", *[f"Skipped {s['model']}: {s['reason']}." for s in summary["skipped"]]]
    lines += ["", "Serve with `tritonserver --model-repository <this directory>`; see each metadata.json."]
    return "\n".join(lines) + "\n"
