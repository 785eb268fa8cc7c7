"""``l1ad serve``: the full-precision models of a run directory as an HLT inference service."""

from __future__ import annotations

import argparse


def add_args(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve", help="serve a trained model: REST /api/v1, Open Inference Protocol (HTTP, gRPC)"
    )
    p.add_argument("--run", required=True, type=str, help="run directory (e.g. runs/default)")
    p.add_argument("--model", help="model label or directory name (default: the energy model)")
    p.add_argument("--score", help="score label to serve (default: the model's primary score)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--grpc-port", type=int, default=None, help="also serve the OIP over gRPC on this port")
    p.add_argument(
        "--shadow", help="a second run directory scored beside every request (agreement in /metrics)"
    )
    p.add_argument(
        "--max-batch-events", type=int, default=4096, help="dynamic batching: events per model call"
    )
    p.add_argument(
        "--max-batch-delay-us", type=float, default=500.0, help="dynamic batching: longest wait (us)"
    )
    p.add_argument("--max-events", type=int, default=None, help="largest number of events per request")
    p.add_argument("--max-body-bytes", type=int, default=None, help="largest request body (default 64 MiB)")
    p.add_argument("--reload-root", default=None,
                   help="/admin/reload accepts run directories under this folder only (default: the --run's parent)")  # fmt: skip
    p.add_argument("--input-rate-khz", type=float, default=None,
                   help="with --calibration: the rate the calibration events arrive at (HLT: the L1 accept rate)")  # fmt: skip
    p.add_argument("--calibration", help="background events to recalibrate the thresholds on")
    p.add_argument("--log-level", default="warning")


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from l1ad.serving.app import serve, service_from_args

    service = service_from_args(
        Path(args.run), model=args.model, score=args.score, max_batch_events=args.max_batch_events,
        max_delay_us=args.max_batch_delay_us, input_rate_khz=args.input_rate_khz,
        calibration=Path(args.calibration) if args.calibration else None, shadow=args.shadow,
        max_events=args.max_events, max_body_bytes=args.max_body_bytes,
        reload_root=args.reload_root,
    )  # fmt: skip
    print(f"l1ad serve: {service.model.name} v{service.model.version} ({service.model.hash[:12]}) on "
          f"http://{args.host}:{args.port}" + (f", gRPC {args.host}:{args.grpc_port}" if args.grpc_port else ""),
          flush=True)  # fmt: skip
    serve(service, args.host, args.port, args.grpc_port, args.log_level)
    return 0
