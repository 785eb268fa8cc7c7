"""The use case's REST API: ``/api/v1/score``, ``/api/v1/explain``, ``/api/v1/models``, ``/healthz``,
``/admin/reload`` (see the README for the payloads)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Request

from l1ad.events import schema
from l1ad.serving.inputs import InputError, events_from_json
from l1ad.serving.service import Service


async def read_json(request: Request, service: Service) -> Any:
    """The request body as JSON, after the size limit; 413/400 with a message otherwise."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > service.max_body_bytes:
        raise InputError(
            f"request body of {declared} bytes exceeds the limit of {service.max_body_bytes}", 413
        )
    body = await request.body()
    if len(body) > service.max_body_bytes:
        raise InputError(
            f"request body of {len(body)} bytes exceeds the limit of {service.max_body_bytes}", 413
        )
    if not body:
        raise InputError("empty request body: send a JSON object", 400)
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"request body is not valid JSON: {exc}", 400) from None


def _events(doc: Any, service: Service) -> np.ndarray:
    if not isinstance(doc, dict) or "events" not in doc:
        raise InputError("the request must be a JSON object with an 'events' list")
    extra = set(doc) - {"events"}
    if extra:
        raise InputError(f"unknown request fields {sorted(extra)}; only 'events' is accepted")
    return events_from_json(doc["events"], service.max_events)


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
        particles = _events(await read_json(request, service), service)
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
        particles = _events(await read_json(request, service), service)
        if len(particles) != 1:
            raise InputError(f"explain takes exactly one event, got {len(particles)}")
        model = service.model
        if model.loaded.trained.framework != "torch":
            raise InputError(
                f"{model.name}: explanations need an energy/score model (got {model.loaded.label})", 400
            )
        from l1ad.models.ebm.explain import attributions

        values = await asyncio.to_thread(attributions, model.loaded._ebm, particles)
        out = await asyncio.wrap_future(model.submit(particles))
        res = service.finish(model, particles, out[model.score_label], rate_khz)
        names = schema.flat_feature_names()
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
        body = await request.body()
        run_dir = None
        if body:
            try:
                doc = json.loads(body)
            except json.JSONDecodeError as exc:
                raise InputError(f"request body is not valid JSON: {exc}", 400) from None
            if not isinstance(doc, dict) or set(doc) - {"run_dir"}:
                raise InputError('reload takes {} or {"run_dir": PATH}', 400)
            run_dir = Path(doc["run_dir"]) if doc.get("run_dir") else None
        try:
            m = await asyncio.to_thread(service.reload, run_dir)
        except (FileNotFoundError, ValueError, KeyError, OSError, RuntimeError) as exc:
            raise InputError(
                f"reload refused, still serving {service.model.name} v{service.model.version}: {exc}", 409
            ) from None
        return {"status": "reloaded", "model": m.info()}

    return r
