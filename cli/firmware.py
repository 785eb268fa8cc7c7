"""``l1ad firmware build|calibrate|emulate|report|export-emulator TARGET``: HLS projects, trigger
thresholds, bit-exact emulation, budget reports, the CMSSW emulator library.

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
    """Register ``firmware`` and its sub-subcommands build/calibrate/emulate/report/export-emulator."""
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
    b.add_argument(
        "--synth", action="store_true",
        help="then run Vitis/Vivado HLS C-synthesis and Vivado synthesis, place and route (tools on PATH)",
    )  # fmt: skip
    b.add_argument("--export-ip", action="store_true", help="with --synth: also export the HLS IP")
    e = sub.add_parser("emulate", help="C-simulate every event and compare with the Keras model")
    common(e)
    e.add_argument(
        "--events", type=Path, default=None, help="events file (.h5 Particles or .npy); default: target's"
    )
    e.add_argument(
        "--out", type=Path, default=None, help="write the firmware scores to exactly this path (.npy format)"
    )
    e.add_argument("--chunk", type=int, default=65536, help="events per emulator call")
    e.add_argument("--csim-sample", type=int, default=100_000,
                   help="events on which hls4ml's C-sim cross-checks the fast emulator (default 100k)")  # fmt: skip
    e.add_argument("--csim-all", action="store_true", help="score every event with the hls4ml C-sim (slow)")
    e.add_argument("--limit", type=int, default=None, help="only the first N events")
    e.add_argument("--threads", type=int, default=None, help="C-sim threads (default: all cores)")
    e.add_argument(
        "--rtl", action="store_true", help="DA targets: also simulate the da4ml Verilog with Verilator"
    )
    e.add_argument("--no-progress", action="store_true")
    c = sub.add_parser(
        "calibrate", help="trigger thresholds from the firmware's scores on fresh validation background"
    )
    common(c)
    c.add_argument(
        "--n-events", type=int, default=10_000_000, help="calibration background events (default 10M: "
        "the 1 kHz threshold rests on 250 events)",
    )  # fmt: skip
    c.add_argument("--seed", type=int, default=1, help="seed of the calibration background stream")
    c.add_argument("--no-progress", action="store_true")
    x = sub.add_parser(
        "export-emulator", help="CMSSW emulator library (hls4mlEmulator::Model, <Name>_v<N>.so)"
    )
    common(x)
    x.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output directory (replaced; must be empty or an earlier export)",
    )
    x.add_argument("--version", type=int, default=1, help="library version N: namespace and file <Name>_v<N>")
    x.add_argument("--name", default=None, help="library name (a C++ identifier; default L1AD_<target>)")
    x.add_argument("--no-build", action="store_true", help="write the sources and Makefile only")
    r = sub.add_parser("report", help="latency/resources vs budgets (report.json, report.md)")
    common(r)
    r.add_argument("--no-yosys", action="store_true", help="skip the Yosys synthesis of DA targets")
    r.add_argument("--json", action="store_true", help="print report.json instead of the markdown table")
    r.add_argument(
        "--rtl-latency", action="store_true",
        help="DA targets: measure latency and II of the da4ml Verilog in Verilator (1000 events) and check them",
    )  # fmt: skip
    p.set_defaults(func=main)
    return p


def main(args: argparse.Namespace) -> int:
    from l1ad.hls.target import load_target, project_dir

    target, path = load_target(args.target)
    project = args.project or project_dir(target, path)
    commands = {"build": _build, "calibrate": _calibrate, "emulate": _emulate, "report": _report}
    commands["export-emulator"] = _export_emulator
    command = commands[args.firmware_command]
    return command(args, target, project, args.run_dir)  # None: relative paths from the repository root


def _build(args, target, project: Path, run_dir) -> int:
    from l1ad.hls.build import build_project

    if args.export_ip and not args.synth:
        print("--export-ip needs --synth", file=sys.stderr)
        return 2
    result = build_project(target, project, run_dir=run_dir)
    meta = result.metadata
    print(f"{target.name}: wrote {project} in {result.seconds:.1f} s")
    print(
        f"  input {meta['input']['cpp']} x{meta['input']['size']} -> output {meta['output']['cpp']} x{meta['output']['size']}"
    )
    print(f"  {target.strategy}, {target.part} @ {target.clock_period_ns:g} ns, namespace {target.namespace}")
    for t in meta["thresholds"]:
        print(f"  threshold {t['rate_khz']:g} kHz: score > {t['value']:g} (raw {t['raw']})")
    return _synth(args, target, project) if args.synth else 0


def _synth(args, target, project: Path) -> int:
    """``build --synth``: the vendor flow on the project just written (exit 2 without the tools)."""
    from l1ad.hls.vendor_flow import VendorFlowError, VendorToolMissing, run_vendor_flow

    try:
        flow = run_vendor_flow(project, target, export_ip=args.export_ip)
    except VendorToolMissing as exc:
        print(f"{target.name}: project written, vendor flow not run: {exc}", file=sys.stderr)
        return 2
    except VendorFlowError as exc:
        print(f"{target.name}: vendor flow failed: {exc}", file=sys.stderr)
        return 1
    steps = ", ".join(f"{step} {s:.0f} s" for step, s in flow["seconds"].items())
    print(f"  vendor flow ({steps}), log {flow['log']}")
    for path in flow["reports"] + flow["ip"]:
        print(f"  wrote {path}")
    print(f"  `l1ad firmware report {args.target}` now reads these reports")
    return 0


def _calibrate(args, target, project: Path, run_dir) -> int:
    from l1ad.emulation.calibrate import calibrate_project, summary
    from l1ad.emulation.run import StaleProjectError, check_fresh

    if args.n_events < 1:
        print(f"--n-events must be positive, got {args.n_events}", file=sys.stderr)
        return 2
    try:
        check_fresh(project, target.resolve(target.model, run_dir), args.target)
    except (StaleProjectError, FileNotFoundError) as exc:
        print(exc, file=sys.stderr)
        return 2
    record = calibrate_project(project, args.n_events, args.seed, progress=not args.no_progress)
    print(summary(record))
    return 0


def _export_emulator(args, target, project: Path, run_dir) -> int:
    from l1ad.emulation.cmssw_library import export_emulator
    from l1ad.emulation.run import StaleProjectError, check_fresh

    try:
        check_fresh(project, target.resolve(target.model, run_dir), args.target)
        lib = export_emulator(
            project, args.out, name=args.name, version=args.version, build_library=not args.no_build
        )
    except (StaleProjectError, FileExistsError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{target.name}: {'built' if lib.is_file() else 'wrote sources for'} {lib}")
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
            progress=not args.no_progress, csim_sample=args.csim_sample, fast=not args.csim_all,
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
    if args.rtl_latency:
        if target.strategy != "distributed_arithmetic":
            print("--rtl-latency needs a distributed_arithmetic target", file=sys.stderr)
            return 2
        from l1ad.emulation.rtl_latency import measure_latency
        from l1ad.events.inputs import load_inputs
        from l1ad.reports.budget import add_measured_latency

        events = target.resolve(target.events, run_dir)
        if events is None:
            print("--rtl-latency needs the target's 'events'", file=sys.stderr)
            return 2
        add_measured_latency(report, measure_latency(project, load_inputs(events, limit=1000)))
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
