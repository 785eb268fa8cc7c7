"""``l1ad data``: generate, inspect and validate L1-format event files."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def add_args(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="generate, inspect and validate L1-format event files")
    dsub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")

    g = dsub.add_parser("generate", help="generate the default background splits and the four signals")
    g.add_argument("--out", required=True, help="output directory")
    g.add_argument(
        "--n-background", type=int, default=2_200_000, help="background events, split 5:1:5 train:val:test"
    )
    g.add_argument("--n-signal", type=int, default=100_000, help="events per signal")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument(
        "--engine",
        choices=["fast", "pythia"],
        default="fast",
        help="event generator: 'fast' (numpy, default) or 'pythia' (Pythia 8 + L1 emulation; extra 'pythia')",
    )
    g.add_argument(
        "--mpi",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pythia: multi-parton interactions (on: ~5-7 ms/event, realistic underlying event; off: ~1 ms)",
    )
    g.add_argument("--workers", type=int, default=1, help="pythia: parallel worker processes")
    g.add_argument("--chunk-size", type=int, default=1000, help="pythia: accepted events per resumable chunk")

    c = dsub.add_parser("compare", help="compare two event files (occupancy, KS/Wasserstein, masses)")
    c.add_argument(
        "a", help="sample A: an HDF5 file, or a folder of per-process files (its ADC2021 background mix)"
    )
    c.add_argument("b", help="sample B, the reference (W1/std uses its spread): file or folder as A")
    c.add_argument("--plot", help="write overlay histograms to this PNG")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.add_argument("--max-events", type=int, default=200_000, help="events read per file")
    c.add_argument(
        "--classifier",
        action="store_true",
        help="also the fixed two-sample classifier test (AUC, 200-iteration boosted trees on the 57 inputs) "
        "and the multiplicity table with pulls; exit 1 when a multiplicity bin fails its tolerance",
    )
    c.add_argument("--seed", type=int, default=1, help="seed of the classifier test's split and trees")

    i = dsub.add_parser("inspect", help="counts, occupancy and feature ranges; exit 1 on an invalid file")
    i.add_argument("files", nargs="+")
    i.add_argument("--json", action="store_true", help="machine-readable output")

    v = dsub.add_parser("validate", help="check a file; optionally write a cleaned copy")
    v.add_argument("file")
    v.add_argument("--out", help="write the cleaned events here (required with --repair/--drop-invalid)")
    v.add_argument(
        "--repair", action="store_true", help="wrap phi, zero padded slots, then drop what is still invalid"
    )
    v.add_argument("--drop-invalid", action="store_true", help="drop invalid rows")


def _generate(args: argparse.Namespace) -> int:
    if args.engine == "pythia":
        from l1ad.events.pythia.dataset import generate_dataset as generate_pythia

        manifest = generate_pythia(
            args.out,
            args.n_background,
            args.n_signal,
            args.seed,
            mpi=args.mpi,
            workers=args.workers,
            chunk_size=args.chunk_size,
        )
    else:
        from l1ad.events.default_data import generate_dataset

        manifest = generate_dataset(args.out, args.n_background, args.n_signal, args.seed)
    total = sum(f["n_events"] for f in manifest["files"])
    log.info("wrote %d events in %d files to %s", total, len(manifest["files"]), args.out)
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from l1ad.events.summary import format_summary, summarize_file
    from l1ad.events.validate import EventFileError

    results, ok = [], True
    for path in args.files:
        try:
            s = summarize_file(path)
        except EventFileError as e:
            s = {"file": path, "valid": False, "error": str(e)}
        ok &= s["valid"]
        results.append(s)
        if not args.json:
            print(format_summary(s) if "error" not in s else f"{path}: INVALID: {s['error']}")
    if args.json:
        json.dump(results if len(results) > 1 else results[0], sys.stdout, indent=1)
        print()
    return 0 if ok else 1


def _validate(args: argparse.Namespace) -> int:
    from l1ad.events.io import clean_file, iter_chunks

    if (args.repair or args.drop_invalid) != bool(args.out):
        raise ValueError("--repair/--drop-invalid and --out FILE go together (the input is never modified)")
    if not args.out:
        n = 0
        for _, block in iter_chunks(args.file):  # raises EventFileError on the first bad row
            n += len(block)
        print(f"{args.file}: {n} events, valid")
        return 0
    kept, dropped = clean_file(args.file, args.out, repair=args.repair)
    print(f"{args.file}: kept {kept} events, dropped {dropped} invalid rows -> {args.out}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from l1ad.events.compare import compare, format_table, plot_comparison
    from l1ad.events.io import read_events
    from l1ad.events.twosample import (
        background_mixture,
        classifier_test,
        failing_bins,
        format_multiplicities,
        multiplicity_table,
    )

    def load(path: str):  # a folder of per-process files: its background mixture
        return (
            background_mixture(path)[: args.max_events]
            if Path(path).is_dir()
            else read_events(path, stop=args.max_events)
        )

    a, b = load(args.a), load(args.b)
    result = compare(a, b)
    rc = 0
    if args.classifier:
        result["multiplicities"] = multiplicity_table(a, b)
        result["failing_multiplicity_bins"] = failing_bins(result["multiplicities"])
        result["classifier"] = classifier_test(a, b, seed=args.seed)
        rc = 1 if result["failing_multiplicity_bins"] else 0
    if args.json:
        json.dump(result, sys.stdout, indent=1)
        print()
    else:
        print(format_table(result, args.a, args.b))
        if args.classifier:
            c = result["classifier"]
            print("\nmultiplicities (bins holding >= 1%: |rel| <= 10% and |pull| <= 3)")
            print(format_multiplicities(result["multiplicities"], args.a, args.b))
            print(
                f"\nclassifier two-sample test: AUC {c['auc']:.4f} +- {c['auc_error']:.4f} "
                f"({c['n_per_class']} events per class, {c['n_test']} held out, {c['iterations']} iterations, "
                f"{c['inputs']} inputs; 0.5 = indistinguishable)"
            )
    if args.plot:
        plot_comparison(a, b, args.plot, labels=(args.a, args.b))
        log.info("wrote %s", args.plot)
    return rc


def main(args: argparse.Namespace) -> int:
    actions = {"generate": _generate, "inspect": _inspect, "validate": _validate, "compare": _compare}
    return actions[args.data_command](args)
