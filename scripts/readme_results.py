"""Regenerate README's results block from a run's own outputs (never typed by hand).

Reads ``<run>/evaluation.json``, the firmware projects' ``metadata.json``/``emulation.json``/
``calibration.json``/``report.json`` and ``<run>/data/dataset.json``, and rewrites the text between the markers
``<!-- results:begin -->`` and ``<!-- results:end -->`` in README.md; with ``<run>/pareto/pareto.md`` (``make
pareto``) also the block between ``<!-- pareto:begin -->`` and ``<!-- pareto:end -->``.

    .venv/bin/python scripts/readme_results.py --run runs/default [--projects firmware_projects/student_vu13p_da ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
PARETO_BEGIN, PARETO_END = "<!-- pareto:begin -->", "<!-- pareto:end -->"
ROWS = (
    ("ae_ref/float", "ae_ref/float (ADC2021 reference)"),
    ("ae_ref/hgq", "ae_ref/hgq"),
    ("ae_ref_log/float", "ae_ref_log/float (the ADC2021 AE on log(1 + pT), float reference)"),
    ("ae_ref_hlt/float", "ae_ref_hlt/float (the ADC2021 AE on the HLT vector, float reference)"),
    ("ae_compact/float", "ae_compact/float"),
    ("ae_compact/qkeras", "ae_compact/qkeras (8 bit)"),
    ("ae_compact/hgq", "ae_compact/hgq"),
    ("vae/hgq", "vae/hgq (encoder, Σμ²)"),
    ("student/hgq", "student/hgq (distilled from the energy model)"),
    ("ebm/float", "ebm/float (energy at lowest σ)"),
    ("ebm/float:score_norm", "ebm/float: score norm at lowest σ"),
    ("ebm/float:multiscale_gmm", "ebm/float: multi-scale GMM"),
    ("ebm/float:pattern_density", "ebm/float: pattern density"),
    ("ebm/float:pattern_tail", "ebm/float: pattern tail"),
    ("iforest", "IsolationForest"),
    ("ht", "HT cut"),
    ("met", "MET cut"),
)
#: further energy models, shown with their chosen score only (inserted before the baselines)
CHOSEN_ONLY = {"ebm_hlt/float": "ebm_hlt/float (energy model on the 64-feature HLT vector)"}


def _rows(choices: dict) -> list[tuple[str, str]]:
    """:data:`ROWS` with the chosen score of every :data:`CHOSEN_ONLY` model the run has."""
    what = {"energy": "energy at lowest σ"} | {
        label.split(":", 1)[1]: name.split(": ", 1)[1]
        for label, name in ROWS
        if label.startswith("ebm/float:")
    }  # the ebm rows' names of each score
    extra = [
        (c["label"], f"{CHOSEN_ONLY[m]}: {what[c['chosen']]}") for m, c in choices.items() if m in CHOSEN_ONLY
    ]
    at = [label for label, _ in ROWS].index("iforest")
    return [*ROWS[:at], *extra, *ROWS[at:]]


def _v(m: dict, key: str) -> str:
    v, e = m.get(key), m.get(f"{key}_err")
    if v is None:
        return "n/a"
    return f"{v:.4f} ± {e:.4f}" if e is not None else f"{v:.4f}"


def _firmware(project: Path, title: str) -> list[str]:
    """The emulation and report lines of one firmware project."""
    meta = json.loads((project / "metadata.json").read_text())
    lines = [
        f"{title} `{meta['target']}` ({meta['strategy']}, {meta['part']} at {meta['clock_period_ns']:g} ns):"
    ]
    emu = project / "emulation.json"
    if emu.is_file():
        e = json.loads(emu.read_text())
        dec = sum(e.get("decision_mismatch", {}).values())
        who = e.get("emulator") or "hls4ml C-sim"
        lines.append(f"{who} against the QAT model on {e['n_events']:,} test events: {e['n_mismatch']} score and "
                     f"{dec} trigger-decision mismatches ({e['events_per_second']:,.0f} events/s).")  # fmt: skip
        if e.get("csim_check"):
            c = e["csim_check"]
            lines.append(f"hls4ml C-simulation cross-check on the first {c['n_events']:,} events: {c['n_mismatch']} "
                         f"mismatches ({c['events_per_second']:,.0f} events/s).")  # fmt: skip
        if e.get("rtl"):
            r = e["rtl"]
            lines.append(f"The da4ml Verilog under Verilator against {r.get('reference', 'the C-simulation')} on {r['n_events']:,} events: "
                         f"{r['n_mismatch']} mismatches ({r['events_per_second']:,.0f} events/s).")  # fmt: skip
    cal = project / "calibration.json"
    if cal.is_file():
        c = json.loads(cal.read_text())
        resolved = [r for r in c["rates"] if r["resolved"]] or [{"target_rate_khz": 0, "n_events_above": 0}]
        low = min(resolved, key=lambda r: r["target_rate_khz"])
        lines.append(f"Thresholds calibrated on {c['n_events']:,} validation background events (fresh generator stream, "
                     f"seed {c['seed']}; the {low['target_rate_khz']:g} kHz threshold rests on {low['n_events_above']} "
                     f"events; {c['distinct_scores_above_lowest_threshold']} distinct scores above it; "
                     f"{c['n_at_score_max']} event(s) at the largest score).")  # fmt: skip
    if emu.is_file() and e.get("rate_check"):
        lines.append("Fire rate of the header's `fires()` on the independent test background: " + "; ".join(
            f"{r['rate_khz']:g} kHz: {r['test_rate_khz']:.2f} ± {r['test_err_khz']:.2f} kHz (pull {r['pull']:+.2f})"
            for r in e["rate_check"]) + ".")  # fmt: skip
    rep = project / "report.json"
    if rep.is_file():
        r = json.loads(rep.read_text())
        for src in r.get("sources", []):
            res = src.get("resources", {})
            band = f" ({'; '.join(src['band_text'].values())})" if src.get("band_text") else ""
            lines.append(f"- {src.get('label', src.get('source'))}: {res.get('LUT')} LUT, {res.get('FF')} FF, "
                         f"{res.get('DSP')} DSP, latency {src.get('latency_cycles')} cycles = "
                         f"{src.get('latency_ns')} ns, II {src.get('ii_cycles')}{band}")  # fmt: skip
        if r.get("yosys_over_da4ml"):
            lines.append(
                "- Yosys / da4ml estimate: "
                + ", ".join(f"{k} {v:.2f}" for k, v in r["yosys_over_da4ml"].items())
            )
        if r.get("rtl_measured"):
            m = r["rtl_measured"]
            lines.append(f"- Verilator, measured on the da4ml Verilog ({m['n_events']} events one per clock): latency "
                         f"{m['latency_cycles']} cycles = {m['latency_ns']:g} ns, II {m['ii_cycles']}")  # fmt: skip
        checks = r.get("budgets") or []
        lines.append("- budgets (primary source: " + str(r.get("primary")) + "): " + "; ".join(
            f"{c['budget']} {c['value']:.4g} {c['unit']} (limit {c['limit']:g}) {'PASS' if c['pass'] else 'FAIL'}"
            for c in checks) + f"; overall {'PASS' if r.get('pass') else 'FAIL'}")  # fmt: skip
    lines.append("")
    return lines


def _choices(choices: dict) -> list[str]:
    """How each "(chosen)" score was chosen: on validation background and its probes, before the table above."""
    from l1ad.evaluation.score_choice import format_choice

    lines = []
    for model, c in choices.items():
        n = c["choice_rows"][1] - c["choice_rows"][0]
        lines += [f"The score of {model} was chosen by `l1ad choose-score` before any signal was scored: "
                  f"{c['rule']} ({n:,} events, rows {c['choice_rows'][0]:,}–{c['choice_rows'][1]:,} of "
                  f"`{Path(c['background_file']).name}`; TPR in %; probe seed {c['seed']}):", "",
                  format_choice(c), ""]  # fmt: skip
    return lines


def _comparisons(ev: dict) -> list[str]:
    """The evaluation's float-vs-quantized (student-vs-teacher) and tail tables, as evaluation.md has them."""
    from l1ad.evaluation.evaluate import comparison_table, tail_table

    lines = []
    if ev.get("float_vs_quantized"):
        lines += ["Each quantized model against its float twin, the student against its teacher (background "
                  "scores; TPR ratios on the signals):", "", *comparison_table(ev), ""]  # fmt: skip
    if ev.get("tail"):
        lines += ["Tail of the quantized scores on the test background:", "", *tail_table(ev), ""]
    return lines


def _seeds(run: Path) -> list[str]:
    """The spread over training seeds of each model ``scripts/study_seeds.py`` studied in the run."""
    lines = []
    for path in sorted(run.glob("studies/seeds_*/seeds.json")):
        r = json.loads(path.read_text())
        summary = r["summary"]
        lines += [f"Spread over training seeds of {r['model']}/{r['quantization']} (`scripts/study_seeds.py`, seeds "
                  f"{', '.join(map(str, r['seeds']))}, each trained as `make run` trains it; {r['n_background']:,} test "
                  "background events): mean ± standard deviation over the seeds, which is what a difference "
                  "between two models must beat.", "",
                  "| signal | AUROC | TPR @ FPR 1e-4 | TPR @ FPR 1e-5 |", "|---|---|---|---|"]  # fmt: skip
        for sig, stats in summary.items():
            cells = [f"{v['mean']:.4f} ± {v['std_over_seeds']:.4f}" if v["std_over_seeds"] is not None
                     else f"{v['mean']:.4f}" for v in stats.values()]  # fmt: skip
            lines.append(f"| {sig} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _representations(run: Path) -> list[str]:
    """The energy model per input representation (``scripts/study_representations.py``), when studied."""
    path = run / "studies" / "representations" / "representations.md"
    return [path.read_text().strip(), ""] if path.is_file() else []


def _default_projects() -> list[Path]:
    from l1ad.cli.pipeline import FIRMWARE_TARGETS

    return [Path("firmware_projects") / t for t in FIRMWARE_TARGETS]


def render(run: Path, projects: list[Path]) -> str:
    from l1ad.cli.pipeline import default_l1_model
    from l1ad.models import registry

    ev = json.loads((run / "evaluation.json").read_text())
    signals = sorted({s for per in ev["models"].values() for s in per})
    chosen = {c["label"] for c in ev.get("score_choice", {}).values()}
    default = registry.open_model(default_l1_model(run)).label  # make run's default L1 model
    lines = [
        f"Generated by `scripts/readme_results.py` from `{run}/evaluation.json` ({ev['n_background']:,} background "
        "test events; errors are statistical, the threshold's included; training varies more than that across "
        "machines and seeds, see the guide):",
        "",
    ]
    for sig in signals:
        lines += [f"**{sig}** ({ev['n_signal'][sig]:,} signal events)", "",
                  "| model | AUROC | TPR @ FPR 1e-4 | TPR @ FPR 1e-5 |", "|---|---|---|---|"]  # fmt: skip
        for label, name in _rows(ev.get("score_choice", {})):
            m = ev["models"].get(label, {}).get(sig)
            if m is not None:
                name = f"**{name} (chosen)**" if label in chosen else name
                name = f"**{name}, the default L1 model**" if label == default else name
                lines.append(
                    f"| {name} | {_v(m, 'auroc')} | {_v(m, 'tpr_at_fpr_1e-4')} | {_v(m, 'tpr_at_fpr_1e-5')} |"
                )
        lines.append("")
    lines += _choices(ev.get("score_choice", {}))
    lines += _comparisons(ev)
    lines += _seeds(run)
    lines += _representations(run)
    titles = ("Default L1 target", "The Latency-strategy target")
    for title, project in zip(titles, projects, strict=False):
        if (project / "metadata.json").is_file():
            lines += _firmware(project, title)
    return "\n".join(lines)


def render_pareto(run: Path) -> str | None:
    """The Pareto table of ``l1ad pareto`` (its own markdown, one heading level down), or None."""
    path = run / "pareto" / "pareto.json"
    if not path.is_file():
        return None
    r = json.loads(path.read_text())
    md = (run / "pareto" / "pareto.md").read_text().replace("# L1 Pareto front", "#### L1 Pareto front", 1)
    head = (f"Generated by `scripts/readme_results.py` from `{path}` (`l1ad pareto --profile {r['profile']}`, "
            f"seed {r['seed']}, {len(r['candidates'])} candidates trained on {r['training']['events']:,} events "
            f"for {r['training']['epochs']} epochs; the scan took {r['seconds_all_calls'] / 60:.0f} min on this machine; "
            f"plot: `{run}/pareto/pareto.png`).")  # fmt: skip
    return f"{head}\n\n{md.strip()}"


def _replace(text: str, begin: str, end: str, block: str) -> str:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{block}\n{end}{tail}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/default", type=Path)
    ap.add_argument("--projects", nargs="+", type=Path, help="firmware projects, the default L1 target first "
                    "(default: make run's, firmware_projects/<target>)")  # fmt: skip
    ap.add_argument("--readme", default="README.md", type=Path)
    a = ap.parse_args()
    text = a.readme.read_text()
    if BEGIN not in text or END not in text:
        print(f"{a.readme}: markers {BEGIN} / {END} missing", file=sys.stderr)
        return 2
    from l1ad.core.files import atomic_write_text

    text = _replace(text, BEGIN, END, render(a.run, a.projects or _default_projects()))
    front = render_pareto(a.run)
    if front is not None and PARETO_BEGIN in text and PARETO_END in text:
        text = _replace(text, PARETO_BEGIN, PARETO_END, front)
    atomic_write_text(a.readme, text)
    print(f"wrote the results block of {a.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
