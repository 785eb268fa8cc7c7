"""``l1ad evaluate``: all models of a run directory and the baselines on any ADC2021-layout files."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)


def signal_arg(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"--signal needs NAME=FILE, got {text!r}")
    return name, path


def add_args(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="compare every trained model of a run directory with the baselines")
    p.add_argument("run_dir")
    p.add_argument("--background", required=True, help="background test file")
    p.add_argument("--signal", type=signal_arg, action="append", required=True, metavar="NAME=FILE")
    p.add_argument("--max-background", type=int, help="use only the first N background events")


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from l1ad.evaluation.evaluate import evaluate_run

    signals = dict(args.signal)
    if len(signals) != len(args.signal):
        raise ValueError("--signal names must be unique")
    evaluate_run(args.run_dir, args.background, signals, args.max_background)
    print((Path(args.run_dir) / "evaluation.md").read_text())
    return 0
