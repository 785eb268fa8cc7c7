"""The Open Inference Protocol (KServe v2) over gRPC, as Triton clients (CMS SONIC) speak it.

The protobuf messages and service stubs are the ones ``tritonclient[grpc]`` ships
(``tritonclient.grpc.service_pb2``/``service_pb2_grpc``); this module implements the server side of
``inference.GRPCInferenceService`` for the health, metadata and ``ModelInfer`` calls with the same
tensors as :mod:`l1ad.serving.oip_http` (raw little-endian contents, as ``tritonclient.grpc`` sends
them, or typed ``contents``). Bad input is ``INVALID_ARGUMENT`` (``NOT_FOUND`` for an unknown
model) with the same messages as over HTTP.
"""

from __future__ import annotations

import logging
import time
from concurrent import futures

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc

from l1ad.core.versions import l1ad_version
from l1ad.serving.inputs import InputError, events_from_tensor
from l1ad.serving.oip_http import INPUT_NAME, OUTPUTS, model_metadata
from l1ad.serving.service import Service

logger = logging.getLogger(__name__)

_CODES = {404: grpc.StatusCode.NOT_FOUND, 413: grpc.StatusCode.RESOURCE_EXHAUSTED}


def _param(p) -> object:
    kind = p.WhichOneof("parameter_choice")
    return None if kind is None else getattr(p, kind)


class InferenceServicer(service_pb2_grpc.GRPCInferenceServiceServicer):
    def __init__(self, service: Service) -> None:
        self.service = service

    def _abort(self, context, exc: InputError):
        context.abort(_CODES.get(exc.status, grpc.StatusCode.INVALID_ARGUMENT), str(exc))

    def _timed(self, endpoint: str, code: str, t0: float) -> None:
        self.service.metrics.requests.labels(endpoint, code).inc()
        self.service.metrics.duration.labels(endpoint).observe(time.perf_counter() - t0)

    def ServerLive(self, request, context):  # noqa: N802 (the protocol's names)
        return service_pb2.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):  # noqa: N802
        return service_pb2.ServerReadyResponse(ready=True)

    def ModelReady(self, request, context):  # noqa: N802
        try:
            self.service.model_named(request.name)
        except InputError:
            return service_pb2.ModelReadyResponse(ready=False)
        return service_pb2.ModelReadyResponse(ready=True)

    def ServerMetadata(self, request, context):  # noqa: N802
        return service_pb2.ServerMetadataResponse(name="l1ad", version=l1ad_version(), extensions=[])

    def ModelMetadata(self, request, context):  # noqa: N802
        try:
            md = model_metadata(self.service, request.name)
        except InputError as exc:
            self._abort(context, exc)
        tensor = service_pb2.ModelMetadataResponse.TensorMetadata
        return service_pb2.ModelMetadataResponse(
            name=md["name"], versions=md["versions"], platform=md["platform"],
            inputs=[tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in md["inputs"]],
            outputs=[tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in md["outputs"]],
        )  # fmt: skip

    def ModelInfer(self, request, context):  # noqa: N802
        t0 = time.perf_counter()
        try:
            response = self._infer(request)
        except InputError as exc:
            self._timed("grpc:ModelInfer", str(exc.status), t0)
            self._abort(context, exc)
        self._timed("grpc:ModelInfer", "200", t0)
        return response

    def _infer(self, request):
        m = self.service.model_named(request.model_name)
        if request.model_version and request.model_version != str(m.version):
            raise InputError(f"model {m.name!r} has version {m.version}, not {request.model_version!r}", 404)
        if len(request.inputs) != 1 or request.inputs[0].name != INPUT_NAME:
            raise InputError(f"the request needs exactly one input tensor {INPUT_NAME!r}", 400)
        t = request.inputs[0]
        if request.raw_input_contents:
            data: object = request.raw_input_contents[0]
        else:
            data = list(t.contents.fp32_contents) if t.datatype == "FP32" else list(t.contents.fp64_contents)
        particles = events_from_tensor(list(t.shape), t.datatype, data, self.service.max_events)
        rate = _param(request.parameters["rate_khz"]) if "rate_khz" in request.parameters else None
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float)):
            raise InputError(f"parameter rate_khz must be a number, got {rate!r}", 400)
        names = [o.name for o in request.outputs] or list(OUTPUTS)
        unknown = set(names) - set(OUTPUTS)
        if unknown:
            raise InputError(f"unknown outputs {sorted(unknown)}; the model has {sorted(OUTPUTS)}", 400)
        res = self.service.score_sync(particles, rate, request.model_name)
        arrays = {"scores": np.asarray(res.scores, "<f8"), "flags": np.asarray(res.flags, dtype=bool)}
        out = service_pb2.ModelInferResponse(model_name=m.name, model_version=str(m.version), id=request.id)
        for n in names:
            out.outputs.add(name=n, datatype=OUTPUTS[n], shape=[len(arrays[n])])
            out.raw_output_contents.append(arrays[n].tobytes())
        return out


def start_grpc(service: Service, host: str, port: int, workers: int = 16) -> grpc.Server:
    """Start the gRPC server (its own thread pool) on ``host:port``; returns it (``stop()`` to end)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         options=[("grpc.max_receive_message_length", service.max_body_bytes)])  # fmt: skip
    service_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(InferenceServicer(service), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"gRPC: cannot bind {host}:{port}")
    server.start()
    logger.info("OIP gRPC on %s:%d", host, bound)
    return server
