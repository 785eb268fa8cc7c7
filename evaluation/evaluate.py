"""``l1ad evaluate``: every model of a run directory, and the baselines, on any ADC2021-layout files.

Writes into the run directory:

- ``evaluation.json``: ``{"models": {LABEL: {SIGNAL: {auroc, auroc_err, auprc, tpr_at_fpr_1e-4, ...}}},
  "n_background": N, "rates": {LABEL: [rate-table rows]}, "float_vs_quantized": {...}}``
- ``evaluation.md``: the same as tables, one per signal, models sorted by TPR at FPR 1e-5
- ``metrics.json``: the float-vs-quantized comparison alone (correlations, TPR ratios)
- ``plots/``: ROC curves per signal (L1 / HLT / baselines panels), score histograms per model,
  float-vs-quantized 2D histograms, TPR ratios, loss curves of the networks that record one

``evaluation.json`` also holds ``"score_choice"`` (the energy model's score, chosen on validation
background before this evaluation) and ``"tail"`` (:func:`~l1ad.evaluation.metrics.tail_health` of each
quantized score: ties at the top, distinct scores that fire at 1 kHz).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from l1ad.core.files import atomic_write_text
from l1ad.evaluation import metrics, plots
from l1ad.evaluation.paired_bootstrap import tpr_ratio
from l1ad.evaluation.score_choice import read_choice
from l1ad.events.io import read_events
from l1ad.models.baselines.cuts import cut_scores
from l1ad.models.registry import discover, score

log = logging.getLogger(__name__)

RATES_KHZ = (1.0, 5.0, 10.0, 50.0)
COMPARE_FPR = 1e-5  # the plotted working point
COMPARE_FPRS = (1e-4, 1e-5)  # TPR ratios reported (1e-5 rests on ~10 background events per 1M)


def _tpr(m: dict, fpr: float) -> float | None:
    return m.get(f"tpr_at_fpr_{fpr:.0e}".replace("e-0", "e-"))


def reference_pairs(labels: list[str], teachers: dict[str, str]) -> dict[str, str]:
    """``{label: reference}``: each quantized model's float twin, and each student's teacher."""
    pairs = {}
    for label in labels:
        name, _, quant = label.partition("/")
        if quant not in ("", "float") and ":" not in quant and f"{name}/float" in labels:
            pairs[label] = f"{name}/float"
        if label in teachers and teachers[label] in labels:
            pairs[label] = teachers[label]
    return pairs


def float_vs_quantized(
    bkg: dict[str, np.ndarray],
    sig: dict[str, dict[str, np.ndarray]],
    table: dict[str, dict[str, dict]],
    plot_dir: Path,
    teachers: dict[str, str],
) -> dict[str, dict]:
    """Score correlation and TPR ratios of every quantized model against its float twin, and of
    every student against its teacher (how much sensitivity survives the distillation). Each ratio
    carries its paired-bootstrap error (:func:`~l1ad.evaluation.paired_bootstrap.tpr_ratio`)."""
    out = {}
    for label, twin in reference_pairs(list(bkg), teachers).items():
        corr = metrics.score_correlation(bkg[twin], bkg[label])
        ratios: dict[float, dict] = {fpr: {} for fpr in COMPARE_FPRS}
        errors: dict[float, dict] = {fpr: {} for fpr in COMPARE_FPRS}
        for fpr in COMPARE_FPRS:
            for signal in table[label]:
                r = tpr_ratio(bkg[twin], sig[signal][twin], bkg[label], sig[signal][label], fpr)
                ratios[fpr][signal], errors[fpr][signal] = r["ratio"], r["err"]
        slug = label.replace("/", "_")
        plots.plot_float_vs_quantized(bkg[twin], bkg[label], plot_dir / f"float_vs_quantized_{slug}.png")
        plots.plot_tpr_ratio(
            {s: _tpr(table[twin][s], COMPARE_FPR) for s in table[label]},
            {s: _tpr(table[label][s], COMPARE_FPR) for s in table[label]},
            plot_dir / f"tpr_ratio_{slug}.png",
            fpr=COMPARE_FPR,
        )
        out[label] = {
            "reference": twin,
            **corr,
            **{f"tpr_ratio_at_fpr_{f:g}": ratios[f] for f in COMPARE_FPRS},
            **{f"tpr_ratio_at_fpr_{f:g}_err": errors[f] for f in COMPARE_FPRS},
        }
    return out


def format_markdown(result: dict) -> str:
    signals = sorted({s for per in result["models"].values() for s in per})
    lines = [
        f"# Evaluation of `{result['run_dir']}`",
        "",
        f"Background events: {result['n_background']:,}",
        "",
    ]
    for signal in signals:
        lines += [
            f"## {signal}",
            "",
            "| model | AUROC | AUPRC | TPR @ FPR 1e-4 | TPR @ FPR 1e-5 | eff @ 99.99% rej. |",
            "|---|---|---|---|---|---|",
        ]
        rows = [(label, per[signal]) for label, per in result["models"].items() if signal in per]
        rows.sort(key=lambda r: -(r[1].get("tpr_at_fpr_1e-5") or 0.0))
        for label, m in rows:

            def fmt(key: str, m: dict = m) -> str:
                v, e = m.get(key), m.get(f"{key}_err")
                return "n/a" if v is None else (f"{v:.4f} ± {e:.4f}" if e is not None else f"{v:.4f}")

            lines.append(
                f"| {label} | {fmt('auroc')} | {m['auprc']:.4f} | {fmt('tpr_at_fpr_1e-4')} | "
                f"{fmt('tpr_at_fpr_1e-5')} | {fmt('eff_at_rejection_0.9999')} |"
            )
        lines.append("")
    lines += [
        "## Trigger thresholds for target rates (40 MHz collisions)",
        "",
        "| model | " + " | ".join(f"{r:g} kHz" for r in RATES_KHZ) + " |",
    ]
    lines.append("|---" * (len(RATES_KHZ) + 1) + "|")
    for label, rows in result["rates"].items():
        cells = [f"{r['threshold']:.5g}" if r["resolved"] else "unresolved" for r in rows]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if result["float_vs_quantized"]:
        lines += ["", "## Float vs quantized, and student vs teacher", "", *comparison_table(result)]
    if result.get("tail"):
        lines += ["", "## Tail of the L1 (quantized) scores on background", "", *tail_table(result)]
    return "\n".join(lines) + "\n"


def comparison_table(result: dict) -> list[str]:
    """Markdown rows: each quantized model against its float twin, the student against its teacher."""
    lines = [
        "| model | reference | Pearson | Spearman | TPR ratio @ 1e-4 per signal | TPR ratio @ 1e-5 per signal |",
        "|---|---|---|---|---|---|",
    ]
    for label, c in result["float_vs_quantized"].items():
        ratios = [", ".join(f"{s}: {_ratio(r, c.get(f'tpr_ratio_at_fpr_{f:g}_err', {}).get(s))}"
                            for s, r in c[f"tpr_ratio_at_fpr_{f:g}"].items()) for f in COMPARE_FPRS]  # fmt: skip
        p, s = c["pearson"], c["spearman"]
        lines.append(
            f"| {label} | {c['reference']} | {p if p is None else f'{p:.4f}'} | "
            f"{s if s is None else f'{s:.4f}'} | {ratios[0]} | {ratios[1]} |"
        )
    return lines


def _ratio(r: float | None, err: float | None) -> str:
    if r is None:
        return "n/a"
    return f"{r:.2f}" if err is None else f"{r:.2f} ± {err:.2f}"


def tail_table(result: dict) -> list[str]:
    """Markdown: the tail health (:func:`~l1ad.evaluation.metrics.tail_health`) of each quantized score."""
    lines = [f"PASS: one event at the largest score and >= {metrics.MIN_DISTINCT_IN_TAIL} events firing at 1 kHz with "
             "distinct scores; FAIL: ties at the top or among the firing events (a saturated or too coarse "
             "output); unresolved: all firing events distinct, but too few fire to tell (the firmware "
             "calibration checks it on 10M events).", "",
             "| model | largest score | events at it | events firing at 1 kHz | distinct among them | tail |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    verdicts = {True: "PASS", False: "FAIL", None: "unresolved"}
    for label, t in result["tail"].items():
        lines.append(f"| {label} | {t['max_score']:.6g} | {t['n_at_max']} | {t['n_firing']} | "
                     f"{t['distinct_above_threshold']} | {verdicts[t['pass']]} |")  # fmt: skip
    return lines


def roc_groups(models: list, labels: list[str]) -> dict[str, list[str]]:
    """The ROC panels: L1 (quantized models, the firmware's), HLT (full-precision models and their
    scores) and baselines (cuts, IsolationForest); every label in exactly one."""
    l1 = {m.label for m in models if m.framework != "sklearn" and m.quantization != "float"}
    hlt = {m.label for m in models if m.framework != "sklearn" and m.quantization == "float"}
    groups: dict[str, list[str]] = {"L1 (quantized)": [], "HLT (full precision)": [], "baselines": []}
    for label in labels:
        base = label.split(":", 1)[0]  # "ebm/float:score_norm" is a score of ebm/float
        groups[
            "L1 (quantized)" if base in l1 else "HLT (full precision)" if base in hlt else "baselines"
        ].append(label)
    return groups


def evaluate_run(
    run_dir: str | Path,
    background: str | Path,
    signals: dict[str, str | Path],
    max_background: int | None = None,
) -> dict:
    """Score every model of ``run_dir`` and the cut baselines; write tables, JSON and plots."""
    run_dir = Path(run_dir)
    plot_dir = run_dir / "plots"
    models = discover(run_dir)
    if not models:
        raise ValueError(
            f"{run_dir}: no trained models (no */meta.json); train one with `l1ad train ... --out {run_dir}`"
        )
    log.info("evaluating %d trained models of %s (+ cut baselines)", len(models), run_dir)
    bkg_events = read_events(background, stop=max_background)
    sig_events = {name: read_events(path) for name, path in signals.items()}

    # every model scores all files in one call (one subprocess per Keras model), then we split
    names = list(sig_events)
    sizes = [len(bkg_events)] + [len(sig_events[n]) for n in names]
    edges = np.cumsum([0, *sizes])
    all_events = np.concatenate([bkg_events, *(sig_events[n] for n in names)])
    all_scores = cut_scores(all_events)
    for m in models:
        log.info("scoring %d events with %s", len(all_events), m.label)
        all_scores.update(score(m, all_events))
    del all_events
    bkg_scores = {label: s[: edges[1]] for label, s in all_scores.items()}
    sig_scores = {
        n: {label: s[edges[i + 1] : edges[i + 2]] for label, s in all_scores.items()}
        for i, n in enumerate(names)
    }

    table = {
        label: {name: metrics.signal_metrics(b, sig_scores[name][label]) for name in sig_events}
        for label, b in bkg_scores.items()
    }
    rates = {label: metrics.thresholds_for_rates(b, RATES_KHZ) for label, b in bkg_scores.items()}
    groups = roc_groups(models, list(bkg_scores))
    for name in sig_events:
        plots.plot_roc_curves(
            {label: (bkg_scores[label], sig_scores[name][label]) for label in bkg_scores},
            plot_dir / f"roc_{name}.png",
            signal=name,
            groups=groups,
        )
    for label, b in bkg_scores.items():
        slug = label.replace("/", "_").replace(":", "_")
        plots.plot_score_histograms(
            b,
            {name: sig_scores[name][label] for name in sig_events},
            plot_dir / f"scores_{slug}.png",
            title=label,
        )
    teachers = {m.label: m.teacher for m in models if m.teacher}
    comparison = float_vs_quantized(bkg_scores, sig_scores, table, plot_dir, teachers)
    choices = {}
    for m in models:
        history = m.meta.get("metrics", {}).get("history")
        if history:  # the energy and score networks record their loss per epoch
            slug = m.label.replace("/", "_")
            best = m.meta["metrics"].get("best_epoch")
            plots.plot_loss_curve(history, plot_dir / f"loss_{slug}.png", title=m.label, best_epoch=best)
        choice = read_choice(m.path) if m.framework == "torch" else None
        if choice is not None:
            chosen = m.label if choice["chosen"] == "energy" else f"{m.label}:{choice['chosen']}"
            choices[m.label] = {"label": chosen, **choice}

    result = {
        "run_dir": str(run_dir),
        "background_file": str(background),
        "signal_files": {k: str(v) for k, v in signals.items()},
        "n_background": int(len(bkg_events)),
        "n_signal": {k: int(len(v)) for k, v in sig_events.items()},
        "models": table,
        "rates": rates,
        "float_vs_quantized": comparison,
        "score_choice": choices,
        "tail": {label: metrics.tail_health(bkg_scores[label]) for label in groups["L1 (quantized)"]},
    }
    atomic_write_text(run_dir / "evaluation.json", json.dumps(result, indent=1))
    atomic_write_text(run_dir / "metrics.json", json.dumps(comparison, indent=1))
    atomic_write_text(run_dir / "evaluation.md", format_markdown(result))
    log.info("wrote %s, %s and plots/", run_dir / "evaluation.md", run_dir / "evaluation.json")
    return result
