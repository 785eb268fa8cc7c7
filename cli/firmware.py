"""``l1ad firmware build|emulate|report TARGET``: HLS projects, bit-exact emulation, budget reports.

TARGET is a target name (``firmware_projects/<name>.yaml``) or a path to a target YAML file; the
project is generated next to it in ``<name>/`` unless ``--project`` says otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)


def add_args(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``firmware`` and its sub-subcommands build/emulate/report."""
    p = subparsers.add_parser("firmware", help="hls4ml firmware: build, emulate (bit-exact), report")
    sub = p.add_subparsers(dest="firmware_command", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("target", help="target name (firmware_projects/<name>.yaml) or path to a target YAML")
        q.add_argument(
            "--project", type=Path, default=None, help="project directory (default: next to the YAML)"
        )
        q.add_argument(
            "--run-dir", type=Path, default=None, help="resolve the target's relative paths in this run dir"
        )

    b = sub.add_parser("build", help="convert the model and write the HLS project")
    common(b)
    e = sub.add_parser("emulate", help="C-simulate every event and compare with the Keras model")
    common(e)
    e.add_argument(
        "--events", type=Path, default=None, help="events file (.h5 Particles or .npy); default: target's"
    )
    e.add_argument(
        "--out", type=Path, default=None, help="write the firmware scores to exactly this path (.npy format)"
    )
    e.add_argument("--chunk", type=int, default=65536, help="events per C-sim call")
    e.add_argument("--limit", type=int, default=None, help="only the first N events")
    e.add_argument("--threads", type=int, default=None, help="C-sim threads (default: all cores)")
    e.add_argument(
        "--rtl", action="store_true", help="DA targets: also simulate the da4ml Verilog with Verilator"
    )
    e.add_argument("--no-progress", action="store_true")
    r = sub.add_parser("report", help="latency/resources vs budgets (report.json, report.md)")
    common(r)
    r.add_argument("--no-yosys", action="store_true", help="skip the Yosys synthesis of DA targets")
    r.add_argument("--json", action="store_true", help="print report.json instead of the markdown table")
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    from l1ad.hls.target import load_target, project_dir

    target, path = load_target(args.target)
    project = args.project or project_dir(target, path)
    command = {"build": _build, "emulate": _emulate, "report": _report}[args.firmware_command]
    return command(args, target, project, args.run_dir)  # None: relative paths from the repository root


def _build(args, target, project: Path, run_dir) -> int:
    from l1ad.hls.build import build_project

    result = build_project(target, project, run_dir=run_dir)
    meta = result.metadata
    print(f"{target.name}: wrote {project} in {result.seconds:.1f} s")
    print(
        f"  input {meta['input']['cpp']} x{meta['input']['size']} -> output {meta['output']['cpp']} x{meta['output']['size']}"
    )
    print(f"  {target.strategy}, {target.part} @ {target.clock_period_ns:g} ns, namespace {target.namespace}")
    for t in meta["thresholds"]:
        print(f"  threshold {t['rate_khz']:g} kHz: score > {t['value']:g} (raw {t['raw']})")
    return 0


def _emulate(args, target, project: Path, run_dir) -> int:
    from l1ad.emulation.run import StaleProjectError, emulate_project

    events = args.events or target.resolve(target.events, run_dir)
    if events is None:
        print("no events: pass --events or set 'events' in the target", file=sys.stderr)
        return 2
    try:
        run = emulate_project(
            project, target.resolve(target.model, run_dir), Path(events), args.target, chunk=args.chunk,
            limit=args.limit, threads=args.threads, scores_out=args.out, rtl=args.rtl,
            progress=not args.no_progress,
        )  # fmt: skip
    except StaleProjectError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(run.summary)
    return 0 if run.ok else 1


def _report(args, target, project: Path, run_dir) -> int:
    import json
    import logging

    from l1ad.reports.budget import make_report, render_markdown, write_report

    report = make_report(project, run_yosys=not args.no_yosys)
    js, md = write_report(project, report)
    if args.json:
        print(json.dumps(report, indent=1, sort_keys=True, default=str))
    else:
        print(render_markdown(report))
        print(f"wrote {js} and {md}")
    failed = [c for c in report["budgets"] if not c["pass"]]
    for c in failed:
        logging.getLogger("l1ad.firmware").error(
            "%s: budget %s FAILS (%s %s, limit %s %s; source: %s)", report["target"], c["budget"], c["value"], c["unit"], c["limit"], c["unit"], report["primary"])  # fmt: skip
    return 1 if failed else 0
