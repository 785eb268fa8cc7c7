"""The L1 Pareto front: trigger sensitivity against firmware cost, and the rule that picks the default.

Each candidate (an L1 model: architecture, quantization style, HGQ2 ``beta`` or QKeras-style bit width)
has a row: its TPR at FPR 1e-4 per signal on the test background (with the error that includes the
threshold's own uncertainty), its firmware cost from its budget report (``report.json`` of a
``distributed_arithmetic`` build: Yosys LUTs, da4ml pipeline latency, DSPs, II) and its **tail
fidelity** on *validation* background (:func:`tail_overlap` with its float reference).

The default L1 model is chosen by :data:`CHOICE_RULE`, which reads only budgets and validation
background, never a signal: a trigger keeps the top of the score distribution, so the quantized score
that keeps the float reference's top events is the one that keeps its sensitivity, whatever the signal.

The front itself (:func:`pareto_front`) and the cheapest candidate that beats every float reference on
every signal (:func:`cheapest_winner`) are reported for the reader; neither feeds the choice.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.core.files import save_figure

log = logging.getLogger(__name__)

#: The working point of the front (TPR at this FPR of the test background).
FRONT_FPR_KEY = "tpr_at_fpr_1e-4"
#: The tail the choice looks at: the top 0.1 % of validation background (200 events of 200k).
TAIL_FRACTION = 1e-3

#: The rule's margin below the LUT budget: the Yosys LUTs of one candidate trained twice (seed 1, two
#: machines) differed by 4-13 % (ae_compact/hgq 19,173 vs 21,788; beta 3e-4 18,293 vs 16,982; student
#: 8,888 vs 9,252), so a design within 10 % of the budget is not reliably inside it.
LUT_MARGIN = 0.10

CHOICE_RULE = (
    "Among the candidates that pass every firmware budget with a margin (Yosys LUTs <= "
    f"{1 - LUT_MARGIN:g} of the 1 % VU13P budget: one candidate's LUTs vary by up to 13 % between "
    "trainings; 0 DSP, II = 1 clock, latency <= 50 ns), take the highest tail overlap with its float reference on validation "
    f"background (the fraction of the reference's top {TAIL_FRACTION:g} events the candidate also puts in "
    "its top; for a student the reference is its teacher); every candidate within one standard error of "
    "that best overlap counts as equal, and of those the one with the fewest LUTs is the default."
)


def tail_overlap(reference: np.ndarray, candidate: np.ndarray, fraction: float = TAIL_FRACTION) -> dict:
    """Fraction of ``reference``'s top ``fraction`` events that ``candidate`` also ranks in its top.

    Ties in the candidate's score at its threshold count with the weight a random tie-break would give
    them, so a saturated (tied) tail scores what it deserves instead of being ranked by event order.
    Returns ``{"overlap", "err", "k"}``: ``err`` is the binomial error over the ``k`` top events.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape or ref.ndim != 1:
        raise ValueError(f"need two 1-D score arrays over the same events, got {ref.shape} and {cand.shape}")
    k = int(math.floor(fraction * ref.size))
    if k < 1:
        raise ValueError(f"{ref.size} events hold no top {fraction:g} event")
    top_ref = np.argsort(-ref, kind="stable")[:k]
    t = np.partition(cand, cand.size - k)[cand.size - k]  # the candidate's k-th largest score
    above, tied = cand > t, cand == t
    weight_tied = (k - int(above.sum())) / int(tied.sum())
    hit = above[top_ref].sum() + weight_tied * tied[top_ref].sum()
    p = float(hit / k)
    return {"overlap": p, "err": math.sqrt(max(p * (1.0 - p), 1.0 / k) / k), "k": k}


def cost_from_report(report: dict[str, Any]) -> dict[str, Any]:
    """LUTs, their fraction of the part, latency, DSPs and the budget verdict of a ``report.json``."""
    row = report["sources"][0]
    return {
        "source": report["primary"],
        "lut": row["resources"].get("LUT"),
        "lut_percent": row["percent"].get("LUT"),
        "ff": row["resources"].get("FF"),
        "dsp": row["resources"].get("DSP"),
        "latency_ns": row.get("latency_ns"),
        "ii_ns": row.get("ii_ns"),
        "pass": bool(report["pass"]),
        "failed": [c["budget"] for c in report["budgets"] if not c["pass"]],
        "lut_limit_percent": next(
            (100 * c["limit"] for c in report["budgets"] if c["budget"] == "LUT fraction"), None
        ),
    }


def mean_tpr(row: dict[str, Any]) -> float | None:
    """Mean TPR at the front's FPR over the signals (None if any is unresolved)."""
    values = [m.get(FRONT_FPR_KEY) for m in row["signals"].values()]
    return None if not values or any(v is None for v in values) else float(np.mean(values))


def pareto_front(rows: list[dict[str, Any]]) -> list[str]:
    """Labels of the rows no other row dominates (fewer or equal LUTs and higher or equal mean TPR,
    one of them strictly), cheapest first; rows without a cost or a TPR are not on it."""
    pts = [(r["cost"]["lut"], mean_tpr(r), r["label"]) for r in rows if r.get("cost")]
    pts = [p for p in pts if p[0] is not None and p[1] is not None]
    front = []
    for lut, tpr, label in pts:
        dominated = any(
            (ol <= lut and ot >= tpr) and (ol < lut or ot > tpr) for ol, ot, other in pts if other != label
        )
        if not dominated:
            front.append((lut, label))
    return [label for _, label in sorted(front)]


def within_budgets(cost: dict[str, Any] | None) -> bool:
    """The rule's budgets: the report passes (II, latency, LUT fraction), the LUTs are Yosys's, 0 DSP.

    A design costed by another source (the Latency strategy's ESTIMATE) or with DSPs does not qualify,
    whatever its own target's budgets say."""
    return bool(cost) and cost["pass"] and cost["source"] == "yosys" and cost["dsp"] == 0


def eligible(cost: dict[str, Any] | None) -> bool:
    """Within the budgets and :data:`LUT_MARGIN` below the LUT budget (the rule's candidates)."""
    if not within_budgets(cost):
        return False
    limit = cost.get("lut_limit_percent")
    return limit is None or cost["lut_percent"] <= (1 - LUT_MARGIN) * limit


def choose(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Apply :data:`CHOICE_RULE` (budgets and validation background only). ``{"label", "why"}``;
    ``label`` is None when no candidate passes the budgets."""
    ok = [r for r in rows if r.get("tail") and eligible(r.get("cost"))]
    if not ok:
        return {"label": None, "why": "no candidate passes every firmware budget with the LUT margin"}
    best = max(ok, key=lambda r: r["tail"]["overlap"])
    floor = best["tail"]["overlap"] - best["tail"]["err"]
    equal = [r for r in ok if r["tail"]["overlap"] >= floor]
    pick = min(equal, key=lambda r: (r["cost"]["lut"], -r["tail"]["overlap"]))
    return {
        "label": pick["label"],
        "why": f"{len(ok)} candidates pass the budgets with the LUT margin; best tail overlap {best['tail']['overlap']:.3f} ± "
        f"{best['tail']['err']:.3f} ({best['label']}); {len(equal)} within one error; fewest LUTs: "
        f"{pick['label']} ({pick['cost']['lut']:,} LUT)",
    }


def cheapest_winner(rows: list[dict[str, Any]], references: dict[str, dict[str, dict]]) -> dict[str, Any]:
    """The cheapest candidate whose TPR at the front's FPR is at least every reference's on every signal
    (central values; ``references``: ``{label: {signal: metrics}}``), budgets or not; the shortfall
    of each candidate otherwise."""
    signals = sorted({s for r in rows for s in r["signals"]})
    best_ref = {
        s: max(
            ((m[s][FRONT_FPR_KEY] or 0.0, lab) for lab, m in references.items() if s in m), default=(0.0, "-")
        )
        for s in signals
    }
    winners = [
        r for r in rows
        if r.get("cost") and r["cost"]["lut"] is not None
        and all((r["signals"][s].get(FRONT_FPR_KEY) or 0.0) >= best_ref[s][0] for s in signals)
    ]  # fmt: skip
    pick = min(winners, key=lambda r: r["cost"]["lut"]) if winners else None
    return {
        "label": pick["label"] if pick else None,
        "lut": pick["cost"]["lut"] if pick else None,
        "best_reference": {s: {"label": lab, "tpr": v} for s, (v, lab) in best_ref.items()},
    }


def _pct(v: float | None, err: float | None = None) -> str:
    if v is None:
        return "n/a"
    return f"{100 * v:.3f} ± {100 * err:.3f}" if err is not None else f"{100 * v:.3f}"


def _other_targets(rows: list[dict[str, Any]], target: str) -> str:
    other = sorted({f"`{r['target']}` for {r['label']}" for r in rows if r.get("target", target) != target})
    return f" (except {', '.join(other)})" if other else ""


def format_markdown(result: dict[str, Any]) -> str:
    rows, signals = result["candidates"], result["signals"]
    front = set(result["front"])
    lines = [
        f"# L1 Pareto front: TPR at FPR 1e-4 (%, test background, {result['n_background']:,} events) "
        "against firmware cost",
        "",
        f"Cost: `{result['target']}` built per candidate{_other_targets(rows, result['target'])}; LUTs by "
        "Yosys on the da4ml Verilog (source named per row), latency = da4ml pipeline registers x clock. Budgets: "
        "the rule's (Yosys LUTs, 0 DSP, II, latency). Tail overlap: validation background "
        f"({result['n_validation']:,} events), top {TAIL_FRACTION:g}. `*` = on the front.",
        "",
        "| candidate | " + " | ".join(signals) + " | mean | LUT (% VU13P) | latency ns | DSP | budgets "
        "| tail overlap |",
        "|---" * (len(signals) + 7) + "|",
    ]
    for r in rows:
        c = r.get("cost")
        cells = [_pct(r["signals"][s].get(FRONT_FPR_KEY), r["signals"][s].get(FRONT_FPR_KEY + "_err"))
                 for s in signals]  # fmt: skip
        if c:
            lut = f"{c['lut']:,} ({c['lut_percent']:.2f} %, {c['source']})"
            failed = (
                c["failed"]
                + [f"{c['dsp']} DSP"] * bool(c["dsp"])
                + ["no Yosys LUTs"] * (c["source"] != "yosys")
            )
            if eligible(c):
                verdict = "pass"
            elif within_budgets(c):
                verdict = f"pass, but within the rule's {LUT_MARGIN:.0%} LUT margin"
            else:
                verdict = "FAIL: " + ", ".join(failed)
            lat, dsp = f"{c['latency_ns']:g}", str(c["dsp"])
        else:
            lut, verdict, lat, dsp = "n/a", "no build (see pareto.json)", "n/a", "n/a"
        tail = f"{r['tail']['overlap']:.3f} ± {r['tail']['err']:.3f}" if r.get("tail") else "n/a"
        mark = "*" if r["label"] in front else ""
        lines.append(
            f"| {mark}{r['label']} | "
            + " | ".join(cells)
            + f" | {_pct(mean_tpr(r))} | {lut} | {lat} | {dsp} "
            f"| {verdict} | {tail} |"
        )
    refs = result["references"]
    for lab, per in refs.items():
        cells = [_pct(per[s].get(FRONT_FPR_KEY), per[s].get(FRONT_FPR_KEY + "_err")) if s in per else "n/a"
                 for s in signals]  # fmt: skip
        lines.append(f"| reference {lab} (float) | " + " | ".join(cells) + " | | | | | | |")
    choice, win = result["choice"], result["cheapest_winner"]
    lines += ["", f"**Rule**: {CHOICE_RULE}", "",
              f"**Chosen:** `{choice['label']}`: {choice['why']}.", ""]  # fmt: skip
    default = result.get("default")
    if default:
        held = f"`{default['label']}`" if default["label"] else "a model that is not a candidate"
        agree = "the rule's choice" if default["label"] == choice["label"] else "NOT the rule's choice"
        lines += [f"Default L1 target of `make run`: `{default['target']}`, holding {held}: {agree}.", ""]
    best = ", ".join(f"{s} {v['label']} {_pct(v['tpr'])} %" for s, v in win["best_reference"].items())
    if win["label"]:
        lines.append(f"Cheapest candidate at or above every reference on every signal: `{win['label']}` "
                     f"({win['lut']:,} LUT). Best reference per signal: {best}.")  # fmt: skip
    else:
        lines.append(
            f"No candidate reaches every reference on every signal (best reference per signal: {best})."
        )
    return "\n".join(lines) + "\n"


def plot_front(result: dict[str, Any], path: Path) -> Path:
    """Mean TPR at 1e-4 (and per signal, small markers) against Yosys LUTs; budget line, front line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    plt.style.use(mplhep.style.CMS)
    rows = [r for r in result["candidates"] if r.get("cost") and mean_tpr(r) is not None]
    fig, (ax, ax_lat, ax_key) = plt.subplots(1, 3, figsize=(22, 8), gridspec_kw={"width_ratios": [3, 2, 1.4]})
    budget_lut = result["lut_budget"]
    for i, s in enumerate(result["signals"]):
        ax.scatter([r["cost"]["lut"] for r in rows], [100 * r["signals"][s][FRONT_FPR_KEY] for r in rows],
                   s=14, color=f"C{i}", alpha=0.6, label=s)  # fmt: skip
    key = []  # candidates are numbered on the plots and named in the key panel
    for n, r in enumerate(rows, start=1):
        x, y, lat = r["cost"]["lut"], 100 * mean_tpr(r), r["cost"]["latency_ns"]
        ax.scatter(x, y, s=60, marker="o" if eligible(r["cost"]) else "x", color="k")
        if r["label"] == result["choice"]["label"]:
            ax.scatter(x, y, s=320, facecolors="none", edgecolors="r", lw=2, label="the rule's choice")
        ax.annotate(str(n), (x, y), fontsize=11, xytext=(4, 3), textcoords="offset points")
        ax_lat.scatter(x, lat, color="k", marker="o" if eligible(r["cost"]) else "x")
        ax_lat.annotate(
            str(n), (x, lat), fontsize=11, xytext=(4, 3 + 9 * (n % 3)), textcoords="offset points"
        )
        source = "" if r["cost"]["source"] == "yosys" else f" [{r['cost']['source']}]"
        key.append(f"{n:2d}  {r['label']}{source}")
    by_label = {r["label"]: r for r in rows}
    front = [by_label[lab] for lab in result["front"] if lab in by_label]
    ax.step([r["cost"]["lut"] for r in front], [100 * mean_tpr(r) for r in front], where="post", color="k",
            lw=1, label="front (mean)")  # fmt: skip
    for a in (ax, ax_lat):
        a.axvline(budget_lut, color="r", ls="--", lw=1, label="1 % VU13P LUT budget")
        a.axvline(
            (1 - LUT_MARGIN) * budget_lut,
            color="r",
            ls=":",
            lw=1,
            label=f"the rule's {LUT_MARGIN:.0%} margin",
        )
        a.set_xscale("log")
        a.set_xlabel("LUTs (Yosys, da4ml Verilog)", fontsize=18)
    ax.set_yscale("log")
    ax.set_ylabel("TPR at FPR $10^{-4}$ (%)  [4 kHz of 40 MHz]", fontsize=18)
    ax.legend(
        fontsize=11,
        title="o: within budgets and margin, x: not; black: mean",
        title_fontsize=11,
        loc="lower right",
    )
    ax_lat.axhline(result["latency_budget_ns"], color="r", ls="-.", lw=1, label="50 ns latency budget")
    ax_lat.set_ylabel("latency (ns, da4ml pipeline)", fontsize=18)
    ax_lat.legend(fontsize=11, loc="lower right")
    ax_key.axis("off")
    ax_key.text(0.0, 1.0, "\n".join(key), va="top", ha="left", family="monospace", fontsize=11,
                transform=ax_key.transAxes)  # fmt: skip
    fig.tight_layout()
    return save_figure(fig, path, dpi=90)
