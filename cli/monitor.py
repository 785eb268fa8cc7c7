"""``l1ad monitor``: input and flag-rate drift of an event file against the model's training data.

Exit status 1 when drift is found, 0 when not, 2 on bad input (the command line's usual error exit).
Drift is "any Holm-corrected input test below alpha/2, or a flag-rate alert at alpha/2": Bonferroni
across the two families, so the exit status is a false alarm with probability at most ``--alpha``.
The first ``--max-events`` events are read (default one million; memory stays bounded).
"""

from __future__ import annotations

import argparse


def add_args(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "monitor", help="drift of an event file against the training reference (exit 1 on drift)"
    )
    p.add_argument("file", help="events to monitor: HDF5 or Parquet, a path or an fsspec URL")
    p.add_argument("--run", required=True, help="run directory whose model scores the file")
    p.add_argument("--model", help="model label or directory name (default: the service's choice)")
    p.add_argument(
        "--reference", help="reference events (default: a seeded sample of the model's training rows)"
    )
    p.add_argument("--reference-events", type=int, default=100_000, help="reference sample size")
    p.add_argument("--alpha", type=float, default=0.01,
                   help="false-alarm rate of the exit status: alpha/2 for the Holm-corrected input tests, "
                        "alpha/2 for the flag rate (Bonferroni)")  # fmt: skip
    p.add_argument("--max-events", type=int, default=1_000_000,
                   help="monitor the first N events of the file (default 1000000; 0: all, memory grows with N)")  # fmt: skip
    p.add_argument("--rate-khz", type=float, default=None,
                   help="flag threshold of the rate table (default: the lowest calibrated rate)")  # fmt: skip
    p.add_argument("--flag-rate-factor", type=float, default=3.0,
                   help="alert when the flag rate leaves [calibrated/F, F*calibrated] significantly")  # fmt: skip
    p.add_argument("--plot", help="write the drifted features' histograms to this PNG")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")


def main(args: argparse.Namespace) -> int:
    import json

    from l1ad.serving.drift_files import format_report, monitor_file

    res = monitor_file(args.file, args.run, reference=args.reference, model=args.model, rate_khz=args.rate_khz,
                       max_events=args.max_events or None, alpha=args.alpha, factor=args.flag_rate_factor,
                       reference_events=args.reference_events)  # fmt: skip
    if args.plot:
        from l1ad.serving.drift_plot import plot_drift

        plot_drift(res.inputs, res.window, res.reference, args.plot)
    print(json.dumps(res.to_dict(), indent=1) if args.json else format_report(res))
    return 1 if res.drift else 0
