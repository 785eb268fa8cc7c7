"""The FastAPI application and the ``l1ad serve`` runner (uvicorn for HTTP, grpcio for gRPC).

FastAPI + pydantic is the REST side (the use case's stack); the KServe v2 protocol is implemented
here on the same app (HTTP) and on grpcio with the stubs ``tritonclient[grpc]`` ships, rather than
through the ``kserve`` SDK's model server: that would bring its own server process model and pin
its own FastAPI/pydantic stack, and it has no place for the use case's ``/api/v1`` routes.
"""

from __future__ import annotations

import logging
import signal
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from l1ad.core.versions import l1ad_version
from l1ad.serving import batch_routes, oip_http, rest
from l1ad.serving.batch_runner import BatchConfig
from l1ad.serving.inputs import InputError
from l1ad.serving.service import Service

logger = logging.getLogger(__name__)


def create_app(
    service: Service, grpc_port: int | None = None, grpc_host: str = "127.0.0.1",
    batch: BatchConfig | None = None,
) -> FastAPI:  # fmt: skip
    # the default database beside the run is optional (batch jobs off, 503); an explicit one is required
    jobs = batch_routes.setup(service, batch or BatchConfig.beside(service.cfg.run_dir))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        import asyncio

        grpc_server = None
        if grpc_port is not None:
            from l1ad.serving.oip_grpc import start_grpc

            grpc_server = start_grpc(service, grpc_host, grpc_port)
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: loop.run_in_executor(None, _sighup, service))
        except (NotImplementedError, RuntimeError):  # not the main thread (tests) or no signals
            pass
        if jobs.runner is not None:
            jobs.runner.start()
        yield
        if jobs.runner is not None:  # a running job goes back to the queue
            await loop.run_in_executor(None, jobs.runner.stop)
        if grpc_server is not None:
            grpc_server.stop(grace=2.0).wait()
        service.close()

    app = FastAPI(title="l1ad HLT inference service", version=l1ad_version(), lifespan=lifespan)

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse({"error": "; ".join(parts) or "invalid request"}, status_code=422)

    @app.middleware("http")
    async def measure(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        endpoint = getattr(route, "path", "unmatched")
        if endpoint != "/metrics":
            service.metrics.requests.labels(endpoint, str(response.status_code)).inc()
            service.metrics.duration.labels(endpoint).observe(time.perf_counter() - t0)
        return response

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(rest.router(service))
    app.include_router(oip_http.router(service))
    app.include_router(jobs.router)
    app.state.batch = jobs  # store and runner (tests hold a job at a chunk with runner.on_chunk)
    return app


def _sighup(service: Service) -> None:
    try:
        service.reload(None)
    except Exception as exc:
        logger.error("SIGHUP reload refused, still serving %s: %s", service.model.name, exc)


def serve(
    service: Service, host: str, port: int, grpc_port: int | None = None, log_level: str = "warning",
    batch: BatchConfig | None = None,
) -> None:  # fmt: skip
    """Run until interrupted."""
    import uvicorn

    app = create_app(service, grpc_port, host, batch)
    logger.info("l1ad serve: http://%s:%d (OIP /v2, REST /api/v1)%s", host, port,
                f", gRPC {host}:{grpc_port}" if grpc_port is not None else "")  # fmt: skip
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


def service_from_args(run_dir: Path, **kwargs) -> Service:
    from l1ad.serving.state import ServeConfig

    shadow = kwargs.pop("shadow", None)
    limits = {k: kwargs.pop(k, None) for k in ("max_events", "max_body_bytes", "reload_root")}
    cfg = ServeConfig(run_dir=Path(run_dir), **kwargs)
    extra = {k: v for k, v in limits.items() if v is not None}
    return Service(cfg, Path(shadow) if shadow else None, **extra)
