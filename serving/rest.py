"""The use case's REST API: ``/api/v1/score``, ``/api/v1/explain``, ``/api/v1/models``, ``/healthz``,
``/admin/reload`` (see the README for the payloads)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
from fastapi import APIRouter, Request

from l1ad.serving.inputs import InputError, events_from_json
from l1ad.serving.service import Service


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, read up to ``limit`` bytes (413 beyond, Content-Length or not)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise InputError(f"request body of {declared} bytes exceeds the limit of {limit}", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise InputError(f"request body exceeds the limit of {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, service: Service) -> tuple[Any, bytes]:
    """``(JSON document, raw body)`` after the size limit; 413/400 with a message otherwise."""
    body = await read_body(request, service.max_body_bytes)
    if not body:
        raise InputError("empty request body: send a JSON object", 400)
    try:
        return json.loads(body), body
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InputError(f"request body is not valid JSON: {exc}", 400) from None


def _events(doc: Any, service: Service, body: bytes) -> np.ndarray:
    if not isinstance(doc, dict) or "events" not in doc:
        raise InputError("the request must be a JSON object with an 'events' list")
    extra = set(doc) - {"events"}
    if extra:
        raise InputError(f"unknown request fields {sorted(extra)}; only 'events' is accepted")
    strict = b"true" in body or b"false" in body
    return events_from_json(doc["events"], service.max_events, strict=strict)


def router(service: Service) -> APIRouter:
    r = APIRouter()

    @r.get("/healthz")
    def healthz() -> dict[str, Any]:
        m = service.model
        return {"status": "ok", "model": m.info()}

    @r.get("/api/v1/models")
    def models() -> dict[str, Any]:
        return service.models_info()

    @r.post("/api/v1/score")
    async def score(request: Request, rate_khz: float | None = None) -> dict[str, Any]:
        doc, body = await read_json(request, service)
        particles = _events(doc, service, body)
        model = service.model
        service.threshold(model, rate_khz)
        out = await asyncio.wrap_future(model.submit(particles))
        res = service.finish(model, particles, out[model.score_label], rate_khz)
        return {
            "scores": res.scores.tolist(),
            "flags": res.flags.tolist(),
            "model": model.info(),
            "score": model.score_label,
            "threshold": None
            if res.threshold is None
            else {
                **res.threshold.to_dict(),
                "input_rate_khz": model.table.input_rate_khz,
                "calibration": model.table.calibration,
            },  # fmt: skip
        }

    @r.post("/api/v1/explain")
    async def explain(request: Request, rate_khz: float | None = None, top: int = 10) -> dict[str, Any]:
        doc, body = await read_json(request, service)
        particles = _events(doc, service, body)
        if len(particles) != 1:
            raise InputError(f"explain takes exactly one event, got {len(particles)}")
        model = service.model
        if model.loaded.trained.framework != "torch":
            raise InputError(
                f"{model.name}: explanations need an energy/score model (got {model.loaded.label})", 400
            )
        from l1ad.models.ebm.explain import attributions, input_names

        values = await asyncio.to_thread(attributions, model.loaded._ebm, particles)
        out = await asyncio.wrap_future(model.submit(particles))
        res = service.finish(model, particles, out[model.score_label], rate_khz)
        names = input_names(model.loaded._ebm)
        order = np.argsort(-np.abs(values[0]), kind="stable")[: max(1, min(int(top), len(names)))]
        return {
            "score": float(res.scores[0]),
            "flag": bool(res.flags[0]),
            "model": model.info(),
            "attribution": "score vector s(x, sigma_min) = -dE/dx per input (standardized units)",
            "features": [{"name": names[i], "value": float(values[0, i])} for i in order],
        }

    @r.post("/admin/reload")
    async def reload(request: Request) -> dict[str, Any]:
        body = await read_body(request, 65536)
        run_dir = None
        if body:
            try:
                doc = json.loads(body)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise InputError(f"request body is not valid JSON: {exc}", 400) from None
            if (
                not isinstance(doc, dict)
                or set(doc) - {"run_dir"}
                or not isinstance(doc.get("run_dir"), str | None)
            ):
                raise InputError('reload takes {} or {"run_dir": "PATH"}', 400)
            run_dir = service.check_reload_dir(doc["run_dir"]) if doc.get("run_dir") else None
        try:
            m = await asyncio.to_thread(service.reload, run_dir)
        except Exception as exc:  # any failure to load leaves the old model serving
            raise InputError(
                f"reload refused, still serving {service.model.name} v{service.model.version}: {exc}", 409
            ) from None
        return {"status": "reloaded", "model": m.info()}

    return r
