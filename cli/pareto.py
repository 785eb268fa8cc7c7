"""``l1ad pareto``: the L1 Pareto front (trigger sensitivity against firmware cost) over declared candidates.

Every candidate is an L1 model that differs from the default in one declared way (HGQ2 ``beta_final``,
QKeras-style bit width, architecture); each is trained like ``make run`` trains it (same events, epochs
and seed, its own process), built as a distributed-arithmetic firmware project from the default target
(``firmware_projects/student_vu13p_da.yaml`` with the model swapped), costed by ``l1ad firmware
report`` (Yosys LUTs, da4ml latency), and scored on the run's validation background (tail overlap with
its float reference, :mod:`l1ad.reports.pareto`) and on its test background and signals. Candidates equal
to a model of the run reuse it. Firmware builds run in a second thread while the next candidate trains.

Writes ``pareto.json``, ``pareto.md`` and ``pareto.png`` into ``--out``; each candidate's row is kept in
``<out>/<candidate>/row.json``, so an interrupted scan resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_TARGET = "student_vu13p_da"
#: QKeras-style quantizers round half to even (RND_CONV), which da4ml 0.6.0 cannot trace (TRN and RND
#: only), so QKeras-style candidates are built with hls4ml's Latency strategy and costed by its ESTIMATE.
QKERAS_TARGET = "ae_compact_vu13p"
#: The cuts and float models every L1 candidate is held against (labels of the run's evaluation.json).
REFERENCES = ("ae_ref/float", "ae_ref_log/float", "iforest", "ht", "met", "lead_lepton_pt")


@dataclass(frozen=True)
class Candidate:
    label: str
    model: str
    quant: str
    config: tuple[tuple[str, Any], ...] = ()  # overrides of the model's defaults; () = the run's own model

    @property
    def reference(self) -> tuple[str, str] | None:
        """The float model whose tail the candidate should keep (None: the student's teacher)."""
        return (
            None
            if self.model == "student"
            else ("ae_compact" if self.quant == "qkeras" else self.model, "float")
        )


def _e(x: float) -> str:
    return f"{x:.0e}".replace("e-0", "e-")  # 3e-05 -> 3e-5


def _qkeras(bits: int) -> tuple[tuple[str, Any], ...]:
    from l1ad.evaluation.bit_scan import scan_config

    return tuple(scan_config(bits).items())


#: Declared before the scan. beta_final spans the HGQ2 EBOPs weight around the default (1e-5); the
#: QKeras-style widths are the bit scan's; the architectures are the four L1 model families.
CANDIDATES = (
    Candidate("ae_compact/hgq", "ae_compact", "hgq"),
    *(Candidate(f"ae_compact/hgq b={_e(b)}", "ae_compact", "hgq", (("beta_final", b),))
      for b in (1e-6, 3e-6, 3e-5, 1e-4, 3e-4)),
    Candidate("ae_compact/hgq 32-4 b=1e-4", "ae_compact", "hgq", (("hidden", [32]), ("beta_final", 1e-4))),
    Candidate("ae_compact/hgq 16-2 b=1e-4", "ae_compact", "hgq", (("latent", 2), ("beta_final", 1e-4))),
    Candidate("ae_ref/hgq", "ae_ref", "hgq"),
    Candidate("ae_ref/hgq b=1e-4", "ae_ref", "hgq", (("beta_final", 1e-4),)),
    Candidate("vae/hgq", "vae", "hgq"),
    Candidate("student/hgq", "student", "hgq"),
    Candidate("student/hgq b=1e-5", "student", "hgq", (("beta_final", 1e-5),)),
    Candidate("ae_compact/qkeras 8b", "ae_compact", "qkeras"),
    Candidate("ae_compact/qkeras 6b", "ae_compact", "qkeras", _qkeras(6)),
    Candidate("ae_compact/qkeras 4b", "ae_compact", "qkeras", _qkeras(4)),
)  # fmt: skip


@dataclass(frozen=True)
class ScanProfile:
    pipeline_profile: str  # training events/epochs as this profile of `l1ad pipeline` trains
    candidates: tuple[str, ...] | None  # labels; None = all
    n_validation: int | None  # validation background events for the tail (None: the whole file)
    yosys: bool


PROFILES = {
    "full": ScanProfile("default", None, None, True),
    # a smoke run of every step on a quick pipeline's run directory (the end-to-end test)
    "quick": ScanProfile("quick", ("ae_compact/hgq", "ae_compact/hgq b=1e-4", "student/hgq", "ae_compact/qkeras 4b"),
                         None, False),
}  # fmt: skip


def add_args(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pareto", help="L1 Pareto front: TPR at FPR 1e-4 vs LUTs and latency over candidates")
    p.add_argument("--run", default="runs/default", help="a run directory of `l1ad pipeline` (data, models)")
    p.add_argument("--out", help="output directory (default: RUN/pareto)")
    p.add_argument("--profile", choices=sorted(PROFILES), default="full")
    p.add_argument("--seed", type=int, default=1, help="training seed (make run's is 1)")
    p.add_argument("--target", default=DEFAULT_TARGET, help="firmware target whose settings every build uses")


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label).strip("_")


def _train(c: Candidate, run: Path, where: Path, prof, seed: int) -> Path:
    """The candidate's model directory: the run's own model, or one trained into ``where``."""
    import yaml

    from l1ad.cli.pipeline import run_step, train_argv
    from l1ad.core.files import atomic_write_text
    from l1ad.models import registry

    if not c.config:
        own = registry.model_dir(run, c.model, c.quant)
        if not (own / registry.META_FILE).is_file():
            raise FileNotFoundError(
                f"{own}: the run has no {c.model}/{c.quant} model (run `l1ad pipeline` first)"
            )
        return own
    model_dir = registry.model_dir(where, c.model, c.quant)
    if (model_dir / registry.META_FILE).is_file():
        return model_dir
    cfg = atomic_write_text(where / "config.yaml", yaml.safe_dump(dict(c.config), sort_keys=True))
    argv = train_argv(c.model, c.quant, run / "data" / "background_train.h5", where, seed, prof)
    argv += ["--config", str(cfg)]
    if c.model == "student":
        from l1ad.models.distill import find_teacher

        argv += ["--teacher", str(find_teacher(run))]
    if model_dir.exists():
        argv.append("--resume")
    run_step(argv, f"train {c.label}")
    return model_dir


def _firmware(
    c: Candidate, model_dir: Path, where: Path, target: str, run: Path, yosys: bool
) -> dict[str, Any]:
    """Build the candidate's DA project and cost it; ``{"cost": ...}`` or ``{"build_error": ...}``."""
    import yaml

    from l1ad.cli.pipeline import run_step
    from l1ad.core.files import atomic_write_text
    from l1ad.hls.target import load_target
    from l1ad.reports.pareto import cost_from_report

    spec, _ = load_target(target)
    settings = spec.to_dict()
    events = spec.resolve(spec.events, run)
    # no trigger-menu header: the run's rate table holds the run's models, not this candidate (and a
    # relative thresholds_from would be read from the current directory, not from the run)
    settings.update(
        model=str(model_dir.resolve()),
        events=None if events is None else str(events.resolve()),
        thresholds_from=None,
    )
    target_file = atomic_write_text(where / "l1ad_candidate.yaml", yaml.safe_dump(settings, sort_keys=False))
    project = where / "firmware"
    report_file = project / "report.json"
    try:
        if not (project / "metadata.json").is_file():
            run_step(
                ["firmware", "build", str(target_file), "--project", str(project)],
                f"firmware build {c.label}",
            )
        if not report_file.is_file():
            report = ["firmware", "report", str(target_file), "--project", str(project)]
            run_step(report + ([] if yosys else ["--no-yosys"]), f"firmware report {c.label}", accept=(0, 1))
        return {"cost": cost_from_report(json.loads(report_file.read_text())), "target": target}
    except (RuntimeError, OSError, KeyError, ValueError) as exc:
        log.error("%s: no firmware cost (%s)", c.label, exc)
        return {"build_error": f"{type(exc).__name__}: {exc}", "target": target}


def _events(run: Path, n_validation: int | None):
    import numpy as np

    from l1ad.events.io import read_events

    data = run / "data"
    val = read_events(data / "background_val.h5", stop=n_validation)
    test = read_events(data / "background_test.h5")
    signals = {p.stem.removeprefix("signal_"): read_events(p) for p in sorted(data.glob("signal_*.h5"))}
    events = np.concatenate([val, test, *signals.values()])
    edges = np.cumsum([0, len(val), len(test), *(len(s) for s in signals.values())])
    return events, edges, list(signals)


def _score_row(c: Candidate, model_dir: Path, reference_val, events, edges, names) -> dict[str, Any]:
    from l1ad.evaluation import metrics
    from l1ad.models import registry
    from l1ad.reports.pareto import tail_overlap

    t0 = time.perf_counter()
    s = registry.primary_score(model_dir, events)
    val, test = s[edges[0] : edges[1]], s[edges[1] : edges[2]]
    row = {
        "label": c.label,
        "model": c.model,
        "quantization": c.quant,
        "config": dict(c.config),
        "model_dir": str(model_dir),
        "signals": {
            n: metrics.signal_metrics(test, s[edges[i + 2] : edges[i + 3]]) for i, n in enumerate(names)
        },
        "tail": tail_overlap(reference_val, val),
        "spearman_val": metrics.score_correlation(reference_val, val).get("spearman"),
        "tail_health": metrics.tail_health(test),
        "train_seconds": json.loads((model_dir / registry.META_FILE).read_text())["metrics"].get(
            "train_seconds"
        ),
    }
    log.info(
        "%s scored in %.0f s: tail overlap %.3f", c.label, time.perf_counter() - t0, row["tail"]["overlap"]
    )
    return row


def _default_model(rows: list[dict[str, Any]], run: Path) -> dict[str, Any]:
    """The default L1 target of ``make run`` and the candidate that is its model (label None: none is)."""
    from l1ad.cli.pipeline import FIRMWARE_TARGETS, default_l1_model

    model = default_l1_model(run).resolve()
    label = next((r["label"] for r in rows if Path(r["model_dir"]).resolve() == model), None)
    return {"target": FIRMWARE_TARGETS[0], "model": str(model), "label": label}


def main(args: argparse.Namespace) -> int:
    from l1ad.cli.pipeline import PROFILES as PIPELINE
    from l1ad.core.files import atomic_write_text
    from l1ad.hls.target import load_target
    from l1ad.models import registry
    from l1ad.models.distill import find_teacher
    from l1ad.reports import pareto
    from l1ad.reports.parts import part_resources

    prof = PROFILES[args.profile]
    train_prof = PIPELINE[prof.pipeline_profile]
    run = Path(args.run)
    out = Path(args.out) if args.out else run / "pareto"
    evaluation = run / "evaluation.json"
    if not evaluation.is_file():
        raise FileNotFoundError(f"{evaluation}: run `l1ad pipeline --out {run}` first (references, data)")
    chosen = [c for c in CANDIDATES if prof.candidates is None or c.label in prof.candidates]
    t_start = time.perf_counter()

    # 1. train (main thread) while the previous candidate's firmware is built and costed (second thread)
    model_dirs: dict[str, Path] = {}
    costs: dict[str, Future] = {}
    with ThreadPoolExecutor(1) as firmware:
        for i, c in enumerate(chosen):
            where = out / _slug(c.label)
            where.mkdir(parents=True, exist_ok=True)
            log.info("candidate %d/%d: %s", i + 1, len(chosen), c.label)
            model_dirs[c.label] = _train(c, run, where, train_prof, args.seed)
            target = QKERAS_TARGET if c.quant == "qkeras" else args.target
            costs[c.label] = firmware.submit(
                _firmware, c, model_dirs[c.label], where, target, run, prof.yosys
            )
        cost = {label: f.result() for label, f in costs.items()}

    # 2. score: validation background (tail overlap with the float reference), test background, signals
    events, edges, names = _events(run, prof.n_validation)
    ref_val: dict[str, Any] = {}
    rows = []
    for c in chosen:
        row_file = out / _slug(c.label) / "row.json"
        if row_file.is_file():
            rows.append(json.loads(row_file.read_text()) | cost[c.label])
            continue
        ref_dir = find_teacher(run) if c.reference is None else registry.model_dir(run, *c.reference)
        if str(ref_dir) not in ref_val:
            ref_val[str(ref_dir)] = registry.primary_score(ref_dir, events[edges[0] : edges[1]])
        row = _score_row(c, model_dirs[c.label], ref_val[str(ref_dir)], events, edges, names)
        row["reference"] = str(ref_dir)
        atomic_write_text(row_file, json.dumps(row, indent=1, sort_keys=True))
        rows.append(row | cost[c.label])

    ev = json.loads(evaluation.read_text())
    spec, _ = load_target(args.target)
    default = _default_model(rows, run)
    references = {lab: ev["models"][lab] for lab in REFERENCES if lab in ev["models"]}
    result = {
        "candidates": rows,
        "signals": names,
        "front": pareto.pareto_front(rows),
        "references": references,
        "choice": pareto.choose(rows),
        "cheapest_winner": pareto.cheapest_winner(rows, references),
        "default": default,
        "n_background": int(edges[2] - edges[1]),
        "n_validation": int(edges[1] - edges[0]),
        "target": args.target,
        "profile": args.profile,
        "seed": args.seed,
        "training": {"events": train_prof.train_events, "epochs": train_prof.keras_epochs},
        "lut_budget": spec.resource_budget_fraction * part_resources(spec.part).lut,
        "latency_budget_ns": spec.latency_budget_ns,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    # the cost of the whole scan: this call plus earlier calls whose trained models and reports it reused
    before = json.loads((out / "pareto.json").read_text()) if (out / "pareto.json").is_file() else {}
    result["seconds_all_calls"] = round(
        result["seconds"] + before.get("seconds_all_calls", before.get("seconds", 0)), 1
    )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "pareto.json", json.dumps(result, indent=1, sort_keys=True))
    md = atomic_write_text(out / "pareto.md", pareto.format_markdown(result))
    pareto.plot_front(result, out / "pareto.png")
    print(md.read_text())
    if result["choice"]["label"] != default["label"]:
        log.warning(
            "the rule chooses %s but the default L1 target %s holds %s: change the default (README rule)",
            result["choice"]["label"],
            default["target"],
            default["label"],
        )
    log.info(
        "Pareto scan of %d candidates in %.1f min; results in %s", len(rows), result["seconds"] / 60, out
    )
    return 0
