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
    p.add_argument("--jobs-db", default=None,
                   help="SQLite file of the batch jobs, on a local disk of this host (default: jobs.sqlite in the "
                        "folder holding --run; if that cannot be created batch jobs are off, their routes 503)")  # fmt: skip
    p.add_argument("--results-dir", default=None,
                   help="batch job results (default: batch-results/ beside the jobs database)")  # fmt: skip
    p.add_argument("--batch-chunk-size", type=int, default=None,
                   help="batch jobs: events per chunk, the resumable unit (default 65536), unless the job asks")  # fmt: skip
    p.add_argument("--batch-root", default=None,
                   help="batch jobs read local event files under this folder only (default: the reload root)")  # fmt: skip
    p.add_argument("--batch-url-schemes", default="",
                   help="batch jobs may read fsspec URLs of these schemes, e.g. s3,gs,file (default: none)")  # fmt: skip
    p.add_argument("--batch-max-queued", type=int, default=1000,
                   help="batch jobs: submissions beyond this many queued jobs are refused (HTTP 429)")  # fmt: skip
    p.add_argument("--drift-window", type=int, default=10_000,
                   help="drift monitor: events per input-drift window (0: no drift monitoring)")  # fmt: skip
    p.add_argument("--drift-alpha", type=float, default=0.01,
                   help="drift monitor: false-alarm rate per evaluation of each alert (input: Holm; output: flag rate)")  # fmt: skip
    p.add_argument("--flag-rate-factor", type=float, default=3.0,
                   help="drift monitor: alert when the flag rate leaves [calibrated/F, F*calibrated] significantly")  # fmt: skip
    p.add_argument("--drift-reference", default=None,
                   help="drift monitor: reference events (default: a 100k sample of the model's training rows)")  # fmt: skip
    p.add_argument("--log-level", default="warning")


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from l1ad.serving.app import serve, service_from_args
    from l1ad.serving.batch_runner import BatchConfig
    from l1ad.serving.jobs import JobStoreError

    chunk = {} if args.batch_chunk_size is None else {"chunk_size": args.batch_chunk_size}
    batch = BatchConfig.beside(args.run, args.jobs_db, args.results_dir, **chunk, max_queued=args.batch_max_queued,
                               root=args.batch_root, url_schemes=tuple(args.batch_url_schemes.split(",")))  # fmt: skip
    service = service_from_args(
        Path(args.run), model=args.model, score=args.score, max_batch_events=args.max_batch_events,
        max_delay_us=args.max_batch_delay_us, input_rate_khz=args.input_rate_khz,
        calibration=Path(args.calibration) if args.calibration else None, shadow=args.shadow,
        max_events=args.max_events, max_body_bytes=args.max_body_bytes,
        reload_root=args.reload_root,
    )  # fmt: skip
    if args.drift_window > 0:
        _enable_drift(service, args)
    print(f"l1ad serve: {service.model.name} v{service.model.version} ({service.model.hash[:12]}) on "
          f"http://{args.host}:{args.port}" + (f", gRPC {args.host}:{args.grpc_port}" if args.grpc_port else ""),
          flush=True)  # fmt: skip
    try:
        serve(service, args.host, args.port, args.grpc_port, args.log_level, batch)
    except JobStoreError:  # an explicit --jobs-db that cannot be opened: l1ad prints it, exit 2
        service.close()
        raise
    return 0


def _enable_drift(service, args: argparse.Namespace) -> None:
    """Drift monitoring; without an explicit reference, a missing or changed training file turns it off."""
    import logging
    from pathlib import Path

    from l1ad.serving.drift_monitor import DriftConfig

    cfg = DriftConfig(window=args.drift_window, alpha=args.drift_alpha, flag_rate_factor=args.flag_rate_factor,
                      reference=Path(args.drift_reference) if args.drift_reference else None)  # fmt: skip
    try:
        service.enable_drift(cfg)
    except (FileNotFoundError, ValueError) as e:
        if args.drift_reference:
            raise
        logging.getLogger("l1ad.serve").warning("drift monitoring off: %s", e)
