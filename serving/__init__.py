"""serving: the full-precision models as an HLT/offline inference service (``l1ad serve``).

The use case's REST API (``/api/v1``), the Open Inference Protocol (KServe v2) over HTTP (``/v2``) and
gRPC, dynamic batching, hot reload, shadow scoring and Prometheus metrics. Models are found, loaded
and scored only through :mod:`l1ad.models.registry`, thresholds come from the evaluation's rate table.
"""
