"""``l1ad scan``: sensitivity versus bit width of a QKeras-style model (ADC2021's precision study)."""

from __future__ import annotations

import argparse
from pathlib import Path

from l1ad.cli.evaluate import signal_arg


def add_args(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scan", help="bit-width scan: train a QKeras-style model at several widths and compare"
    )
    p.add_argument("--model", default="ae_compact", choices=("ae_ref", "ae_compact", "vae"))
    p.add_argument("--bits", type=int, nargs="+", default=[2, 4, 6, 8, 10, 12, 16])
    p.add_argument("--background", required=True, help="training background file")
    p.add_argument("--test", required=True, help="test background file")
    p.add_argument("--signal", type=signal_arg, action="append", required=True, metavar="NAME=FILE")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-events", type=int)


def main(args: argparse.Namespace) -> int:
    from l1ad.evaluation.bit_scan import run_scan

    if any(not 2 <= b <= 16 for b in args.bits):
        raise ValueError(f"--bits must lie in [2, 16], got {args.bits}")
    run_scan(
        args.model,
        args.bits,
        args.background,
        args.test,
        dict(args.signal),
        args.out,
        args.seed,
        args.epochs,
        args.max_events,
    )
    print(Path(args.out, "scan.md").read_text())
    return 0
