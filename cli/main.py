"""The ``l1ad`` command line: one small module per subcommand, heavy imports inside each ``main``.

Each subcommand module provides ``add_args(subparsers)``, registering its parser(s), and
``main(args) -> int``. Exit status 0 means success; any other value is a failure.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from l1ad.core.versions import l1ad_version

# TensorFlow's C++ start-up chatter (CPU features, dataset attribute notices) drowns the progress
# lines; real failures still raise in Python. Set TF_CPP_MIN_LOG_LEVEL yourself to see it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: Subcommand modules under ``l1ad.cli``, in the order they appear in ``--help``.
MODULES = ("data", "train", "evaluate", "scan", "pareto", "firmware", "ebm", "serve", "score", "monitor", "export",
           "pipeline")  # fmt: skip


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="l1ad",
        description="L1-trigger anomaly detection: events -> QAT models -> hls4ml firmware -> emulation -> reports",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {l1ad_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    owners: dict[str, object] = {}
    for name in MODULES:
        module = importlib.import_module(f"l1ad.cli.{name}")
        before = set(sub.choices)
        module.add_args(sub)
        for command in set(sub.choices) - before:
            owners[command] = module
    return parser, owners


def configure_logging(verbose: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    for noisy in ("tensorflow", "absl", "h5py", "matplotlib", "PIL", "numba"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: list[str] | None = None) -> int:
    parser, owners = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose, args.quiet)
    func = getattr(args, "func", None) or owners[args.command].main
    try:
        return int(func(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        if args.verbose:
            raise
        logging.getLogger("l1ad").error("%s", e)
        return 2


if __name__ == "__main__":
    sys.exit(main())
