"""The Open Inference Protocol (KServe v2) over HTTP, with Triton's binary tensor extension.

Model ``<name>`` (the model directory name, e.g. ``ebm-float``) takes one input tensor ``events``
(FP32 or FP64, shape ``[N, 57]`` or ``[N, 19, 3]``) and returns ``scores`` (FP64, ``[N]``) and
``flags`` (BOOL, ``[N]``; request parameter ``rate_khz`` picks the threshold). Binary data: a request
whose ``Inference-Header-Content-Length`` header says how long its JSON part is carries each input
with ``parameters.binary_data_size`` bytes after it; outputs requested with
``parameters.binary_data: true`` come back the same way. Errors are ``{"error": "..."}`` with 4xx.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response

from l1ad.core.versions import l1ad_version
from l1ad.events import schema
from l1ad.serving.inputs import InputError, events_from_tensor
from l1ad.serving.rest import read_body
from l1ad.serving.service import Service

HEADER = "Inference-Header-Content-Length"
INPUT_NAME = "events"
OUTPUTS = {"scores": "FP64", "flags": "BOOL"}


def model_metadata(service: Service, name: str) -> dict[str, Any]:
    m = service.model_named(name)
    return {
        "name": m.name,
        "versions": [str(m.version)],
        "platform": f"l1ad_{m.loaded.trained.framework}",
        "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, schema.N_INPUTS]}],
        "outputs": [{"name": n, "datatype": d, "shape": [-1]} for n, d in OUTPUTS.items()],
        "parameters": {
            "hash": m.hash,
            "score": m.score_label,
            "rates_khz": [t.rate_khz for t in m.table.thresholds],
            "input_rate_khz": m.table.input_rate_khz,
        },  # fmt: skip
    }


def _split_body(body: bytes, header_len: str | None) -> tuple[dict[str, Any], bytes]:
    if header_len is None:
        json_part, binary = body, b""
    else:
        if not header_len.isdigit() or int(header_len) > len(body):
            raise InputError(f"{HEADER} {header_len!r} does not fit a body of {len(body)} bytes", 400)
        json_part, binary = body[: int(header_len)], body[int(header_len) :]
    try:
        doc = json.loads(json_part)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"inference request is not valid JSON: {exc}", 400) from None
    if not isinstance(doc, dict):
        raise InputError("inference request must be a JSON object", 400)
    return doc, binary


def parse_request(doc: dict[str, Any], binary: bytes, max_events: int) -> tuple[np.ndarray, dict[str, Any]]:
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise InputError(f"the request needs exactly one input tensor {INPUT_NAME!r}", 400)
    t = inputs[0]
    for where, value in (("request", doc.get("parameters")), ("input", t.get("parameters"))):
        if value is not None and not isinstance(value, dict):
            raise InputError(f"{where} 'parameters' must be an object, got {type(value).__name__}", 400)
    if t.get("name") != INPUT_NAME:
        raise InputError(f"unknown input {t.get('name')!r}; the model's input is {INPUT_NAME!r}", 400)
    size = (t.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size != len(binary):
            raise InputError(
                f"binary_data_size {size!r} but {len(binary)} binary bytes follow the header", 400
            )
        data: Any = binary
    else:
        if "data" not in t:
            raise InputError(f"input {INPUT_NAME!r} has no 'data'", 400)
        data = t["data"]
    particles = events_from_tensor(t.get("shape"), t.get("datatype"), data, max_events)
    return particles, doc.get("parameters") or {}


def requested_outputs(doc: dict[str, Any]) -> dict[str, bool]:
    """``{output name: binary?}`` of the request (all outputs when none is named), validated."""
    outputs = doc.get("outputs")
    default_binary = bool((doc.get("parameters") or {}).get("binary_data_output", False))
    if outputs is None:
        return dict.fromkeys(OUTPUTS, default_binary)
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise InputError("'outputs' must be a list of objects with a 'name'", 400)
    out = {}
    for o in outputs:
        if o["name"] not in OUTPUTS:
            raise InputError(f"unknown output {o['name']!r}; the model has {sorted(OUTPUTS)}", 400)
        params = o.get("parameters") or {}
        if not isinstance(params, dict):
            raise InputError(f"output {o['name']!r}: 'parameters' must be an object", 400)
        out[o["name"]] = bool(params.get("binary_data", default_binary))
    return out


def encode_response(
    doc: dict[str, Any], m, wanted: dict[str, bool], scores: np.ndarray, flags: np.ndarray
) -> Response:
    arrays = {"scores": np.asarray(scores, "<f8"), "flags": np.asarray(flags, dtype=bool)}
    outputs, blobs = [], []
    for n, binary in wanted.items():
        a = arrays[n]
        out: dict[str, Any] = {"name": n, "datatype": OUTPUTS[n], "shape": [len(a)]}
        if binary:
            raw = a.tobytes()
            out["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            out["data"] = a.tolist()
        outputs.append(out)
    head = {"model_name": m.name, "model_version": str(m.version), "outputs": outputs}
    if "id" in doc:
        head["id"] = doc["id"]
    text = json.dumps(head).encode()
    if not blobs:
        return Response(text, media_type="application/json")
    return Response(
        text + b"".join(blobs), media_type="application/octet-stream", headers={HEADER: str(len(text))}
    )


def router(service: Service) -> APIRouter:
    r = APIRouter(prefix="/v2")

    @r.get("")
    def server_metadata() -> dict[str, Any]:
        return {"name": "l1ad", "version": l1ad_version(), "extensions": ["binary_tensor_data"]}

    @r.get("/health/live")
    def live() -> dict[str, Any]:
        return {"live": True}

    @r.get("/health/ready")
    def ready() -> dict[str, Any]:
        return {"ready": True}

    @r.get("/models/{name}")
    def metadata(name: str) -> dict[str, Any]:
        return model_metadata(service, name)

    @r.get("/models/{name}/versions/{version}")
    def metadata_version(name: str, version: str) -> dict[str, Any]:
        _check_version(service, name, version)
        return model_metadata(service, name)

    @r.get("/models/{name}/ready")
    def model_ready(name: str) -> dict[str, Any]:
        m = service.model_named(name)
        return {"name": m.name, "ready": True}

    @r.get("/models/{name}/versions/{version}/ready")
    def model_version_ready(name: str, version: str) -> dict[str, Any]:
        _check_version(service, name, version)
        return {"name": name, "ready": True}

    async def infer_impl(name: str, request: Request) -> Response:
        m = service.model_named(name)
        body = await read_body(request, service.max_body_bytes)
        doc, binary = _split_body(body, request.headers.get(HEADER))
        particles, params = parse_request(doc, binary, service.max_events)
        wanted = requested_outputs(doc)
        rate = params.get("rate_khz")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)):
            raise InputError(f"parameter rate_khz must be a number, got {rate!r}", 400)
        service.threshold(m, rate)
        out = await asyncio.wrap_future(m.submit(particles))
        res = service.finish(m, particles, out[m.score_label], rate)
        return encode_response(doc, m, wanted, res.scores, res.flags)

    @r.post("/models/{name}/infer")
    async def infer(name: str, request: Request) -> Response:
        return await infer_impl(name, request)

    @r.post("/models/{name}/versions/{version}/infer")
    async def infer_version(name: str, version: str, request: Request) -> Response:
        _check_version(service, name, version)
        return await infer_impl(name, request)

    return r


def _check_version(service: Service, name: str, version: str) -> None:
    m = service.model_named(name)
    if version != str(m.version):
        raise InputError(f"model {name!r} has version {m.version}, not {version!r}", 404)
