"""``l1ad export triton``: a run's full-precision energy models as a Triton model repository."""

from __future__ import annotations

import argparse


def add_args(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export trained models for production inference servers")
    targets = p.add_subparsers(dest="target", required=True, metavar="TARGET")
    t = targets.add_parser(
        "triton",
        help="Triton model repository: TorchScript (and ONNX) of every score of the run's torch models",
    )
    t.add_argument("run_dir", help="run directory (e.g. runs/default)")
    t.add_argument("--out", required=True, help="model repository folder (other models in it are kept)")
    t.add_argument("--model", action="extend", nargs="+", default=None, metavar="NAME",
                   help="label, directory name or one score (ebm/float:score_norm); repeatable (default: all)")  # fmt: skip
    t.add_argument("--max-batch-size", type=int, default=4096, help="Triton max_batch_size (events)")
    t.add_argument("--max-queue-delay-us", type=int, default=500,
                   help="dynamic_batching max_queue_delay_microseconds")  # fmt: skip
    t.add_argument("--no-onnx", action="store_true", help="TorchScript only (no <model>-onnx variants)")
    t.add_argument("--events", default=None,
                   help="event file whose first 1024 events check the exports (default: seeded toy events)")  # fmt: skip
    t.set_defaults(func=triton)


def triton(args: argparse.Namespace) -> int:
    from l1ad.serving.triton_export import export_repository

    summary = export_repository(
        args.run_dir,
        args.out,
        models=args.model,
        max_batch_size=args.max_batch_size,
        max_queue_delay_us=args.max_queue_delay_us,
        onnx=not args.no_onnx,
        events=args.events,
    )
    print(f"Triton repository {summary['repository']} ({summary['seconds']:.1f} s, checked on "
          f"{summary['check_events']}):")  # fmt: skip
    for row in summary["models"]:
        check = row["check"]
        if row["platform"] == "onnxruntime_onnx":
            near = sum(r["near_threshold"] for r in check["flags"])
            got = (
                f"vs eager max abs diff {check['max_abs_diff']:.2g} ({check['max_diff_over_tolerance']:.2g} "
                f"of tolerance), flags agree at {len(check['flags'])} thresholds ({near} near)"
            )
        else:
            got = (
                "== registry bitwise"
                if check["bitwise_equal"]
                else f"vs registry {check['max_abs_diff']:.2g}"
            )
        grad = "  [grad_x E: INFERENCE_MODE false, no ONNX]" if row["needs_input_gradient"] else ""
        print(f"  {row['triton_model']:36s} {row['platform']:17s} {row['score_label']:28s} {got}{grad}")
    for s in summary["skipped"]:
        print(f"  skipped {s['model']}: {s['reason']}")
    print(f"summary (JSON): {summary['repository']}/export.json")
    return 0


def main(args: argparse.Namespace) -> int:
    return triton(args)
