"""The L1 Pareto front: tail overlap on known answers, dominance, the choice rule, the table and plot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from l1ad.reports import pareto


def _row(label, lut, tprs, overlap=0.9, err=0.02, ok=True, source="yosys"):
    cost = {"source": source, "lut": lut, "lut_percent": 100 * lut / 1_728_000, "ff": 10, "dsp": 0,
            "latency_ns": 37.5, "ii_ns": 6.25, "pass": ok, "failed": [] if ok else ["LUT fraction"],
            "lut_limit_percent": 1.0}  # fmt: skip
    signals = {s: {"tpr_at_fpr_1e-4": t, "tpr_at_fpr_1e-4_err": 0.1 * t} for s, t in tprs.items()}
    return {
        "label": label,
        "signals": signals,
        "cost": cost,
        "tail": {"overlap": overlap, "err": err, "k": 200},
    }


def test_tail_overlap_known_answers():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=20_000)
    assert pareto.tail_overlap(ref, ref)["overlap"] == 1.0
    assert pareto.tail_overlap(ref, 3.0 * ref + 1.0)["overlap"] == 1.0  # any monotone map keeps the tail
    assert pareto.tail_overlap(ref, -ref)["overlap"] == 0.0
    # a saturated candidate: every event tied at one value -> the weight of a random tie-break, k/n... of
    # the k top events each counts k/n, so the overlap is the chance level k/n
    res = pareto.tail_overlap(ref, np.zeros_like(ref), fraction=1e-2)
    assert res["k"] == 200 and res["overlap"] == pytest.approx(200 / 20_000)
    # half of the reference's top events kept exactly, the rest pushed to the bottom
    cand = ref.copy()
    top = np.argsort(-ref)[:200]
    cand[top[::2]] = -10.0
    res = pareto.tail_overlap(ref, cand, fraction=1e-2)
    assert res["overlap"] == pytest.approx(0.5, abs=0.01)
    assert res["err"] == pytest.approx(np.sqrt(0.25 / 200), rel=0.05)


def test_tail_overlap_ties_at_the_threshold_are_weighted_not_ordered():
    ref = np.arange(1000, dtype=float)  # the top 10 are events 990..999
    cand = ref.copy()
    cand[985:] = 985.0  # the candidate ties the top 15 events: 10 of its 15 tied places count
    res = pareto.tail_overlap(ref, cand, fraction=1e-2)
    assert res["overlap"] == pytest.approx(10 / 15)
    cand_reversed = cand[::-1].copy()  # event order must not matter
    assert pareto.tail_overlap(ref[::-1].copy(), cand_reversed, fraction=1e-2)["overlap"] == res["overlap"]


def test_tail_overlap_rejects_bad_input():
    with pytest.raises(ValueError, match="same events"):
        pareto.tail_overlap(np.zeros(10), np.zeros(11))
    with pytest.raises(ValueError, match="no top"):
        pareto.tail_overlap(np.zeros(10), np.zeros(10), fraction=1e-3)


def test_pareto_front_keeps_only_undominated():
    rows = [
        _row("cheap", 1000, {"a": 0.01, "b": 0.01}),
        _row("mid", 5000, {"a": 0.03, "b": 0.03}),
        _row("dominated", 6000, {"a": 0.02, "b": 0.02}),  # costs more than mid, sees less
        _row("best", 20000, {"a": 0.05, "b": 0.05}),
        {
            "label": "unbuilt",
            "signals": {"a": {"tpr_at_fpr_1e-4": 0.9}, "b": {"tpr_at_fpr_1e-4": 0.9}},
            "cost": None,
        },
    ]
    assert pareto.pareto_front(rows) == ["cheap", "mid", "best"]


def test_choice_uses_budgets_and_validation_tail_only():
    rows = [
        _row("over_budget", 30000, {"a": 0.9}, overlap=0.99, ok=False),  # best everything, fails a budget
        _row("best_tail", 15000, {"a": 0.01}, overlap=0.90, err=0.02),
        _row("equal_cheaper", 9000, {"a": 0.001}, overlap=0.89, err=0.02),  # within one error -> cheaper wins
        _row("worse_tail", 5000, {"a": 0.5}, overlap=0.80, err=0.02),  # signal TPR plays no part
    ]
    pick = pareto.choose(rows)
    assert pick["label"] == "equal_cheaper", pick
    rows[2]["tail"]["overlap"] = 0.85  # now outside one error of the best
    assert pareto.choose(rows)["label"] == "best_tail"
    assert pareto.choose([rows[0]])["label"] is None
    # an ESTIMATE-costed design, or one with DSPs, does not qualify even if its own target passes it
    estimated = _row("estimated", 100, {"a": 0.5}, overlap=0.99, source="model estimate")
    with_dsp = _row("with_dsp", 100, {"a": 0.5}, overlap=0.99)
    with_dsp["cost"]["dsp"] = 57
    assert pareto.choose([*rows, estimated, with_dsp])["label"] == "best_tail"
    # a design that passes the budget by less than the rule's margin (0.98 % of a 1 % budget) is not chosen
    edge = _row("at_the_edge", int(0.0098 * 1_728_000), {"a": 0.5}, overlap=0.99)
    assert pareto.within_budgets(edge["cost"]) and not pareto.eligible(edge["cost"])
    assert pareto.choose([*rows, edge])["label"] == "best_tail"
    inside = _row("inside", int(0.0089 * 1_728_000), {"a": 0.5}, overlap=0.99)
    assert pareto.choose([*rows, edge, inside])["label"] == "inside"


def test_cheapest_winner_against_references():
    refs = {"cut": {"a": {"tpr_at_fpr_1e-4": 0.02}, "b": {"tpr_at_fpr_1e-4": 0.05}},
            "ae": {"a": {"tpr_at_fpr_1e-4": 0.04}, "b": {"tpr_at_fpr_1e-4": 0.01}}}  # fmt: skip
    rows = [
        _row("small", 1000, {"a": 0.05, "b": 0.04}),  # loses b to the cut
        _row("large", 9000, {"a": 0.04, "b": 0.06}),
        _row("huge", 90000, {"a": 0.09, "b": 0.09}),
    ]
    win = pareto.cheapest_winner(rows, refs)
    assert win["label"] == "large" and win["lut"] == 9000
    assert win["best_reference"] == {"a": {"label": "ae", "tpr": 0.04}, "b": {"label": "cut", "tpr": 0.05}}
    assert pareto.cheapest_winner(rows[:1], refs)["label"] is None


def test_cost_from_report_reads_the_budget_report():
    report = {
        "primary": "yosys",
        "pass": False,
        "sources": [
            {
                "resources": {"LUT": 19173, "FF": 2232, "DSP": 0},
                "percent": {"LUT": 1.11},
                "latency_ns": 43.75,
                "ii_ns": 6.25,
            }
        ],  # fmt: skip
        "budgets": [{"budget": "LUT fraction", "pass": False, "limit": 0.01}, {"budget": "II", "pass": True}],
    }
    cost = pareto.cost_from_report(report)
    assert cost["lut"] == 19173 and cost["source"] == "yosys" and cost["failed"] == ["LUT fraction"]
    assert cost["pass"] is False and cost["latency_ns"] == 43.75 and cost["lut_limit_percent"] == 1.0


def test_markdown_and_plot(tmp_path):
    rows = [_row("x", 12000, {"a": 0.01, "b": 0.02}), _row("y", 20000, {"a": 0.02, "b": 0.03}, ok=False)]
    rows.append(
        {"label": "z", "signals": rows[0]["signals"], "cost": None, "build_error": "boom", "tail": None}
    )
    refs = {"cut": {"a": {"tpr_at_fpr_1e-4": 0.015, "tpr_at_fpr_1e-4_err": 0.001}}}
    result = {"candidates": rows, "signals": ["a", "b"], "front": pareto.pareto_front(rows), "references": refs,
              "choice": pareto.choose(rows), "cheapest_winner": pareto.cheapest_winner(rows, refs),
              "n_background": 1000, "n_validation": 500, "target": "t", "lut_budget": 17280.0,
              "latency_budget_ns": 50.0}  # fmt: skip
    md = pareto.format_markdown(result)
    assert "| *x |" in md and "| *y |" in md and "FAIL: LUT fraction" in md and "no build" in md
    assert "**Chosen:** `x`" in md and "reference cut" in md
    assert (
        "Cheapest candidate at or above every reference on every signal: `y` (20,000 LUT)" in md
    )  # x misses a
    assert "Default L1 target" not in md  # no default given
    result["default"] = {"target": "t_da", "model": "/r/y", "label": "y"}
    assert "`t_da`, holding `y`: NOT the rule's choice" in pareto.format_markdown(result)
    result["default"]["label"] = "x"
    assert "`t_da`, holding `x`: the rule's choice." in pareto.format_markdown(result)
    png = pareto.plot_front(result, tmp_path / "front.png")
    assert png.stat().st_size > 10_000
    json.dumps(result)  # the result is JSON as written


def test_declared_candidates():
    from l1ad.cli.pareto import CANDIDATES, PROFILES, _slug

    labels = [c.label for c in CANDIDATES]
    assert len(labels) >= 12 and len(set(labels)) == len(labels)
    assert len({_slug(lab) for lab in labels}) == len(labels)  # one directory each
    assert {c.model for c in CANDIDATES} >= {"ae_compact", "ae_ref", "vae", "student"}
    assert {c.quant for c in CANDIDATES} == {"hgq", "qkeras"}
    for prof in PROFILES.values():
        assert prof.candidates is None or set(prof.candidates) <= set(labels)
    student = next(c for c in CANDIDATES if c.model == "student")
    assert student.reference is None  # held against its teacher
    assert next(c for c in CANDIDATES if c.quant == "qkeras").reference == ("ae_compact", "float")


def test_default_model_is_found_among_the_candidates(tmp_path):
    """make run's default L1 target holds a model of the run, and the scan names the candidate that is it."""
    from l1ad.cli.pareto import CANDIDATES, _default_model
    from l1ad.cli.pipeline import FIRMWARE_TARGETS
    from l1ad.hls.target import load_target

    spec, _ = load_target(FIRMWARE_TARGETS[0])
    own = spec.resolve(spec.model, tmp_path)
    model, quant = own.name.split("-")
    # the default is one of the declared candidates as the run trains it (no overrides)
    label = next(c.label for c in CANDIDATES if (c.model, c.quant, c.config) == (model, quant, ()))
    rows = [{"label": "other", "model_dir": str(tmp_path / "x")}, {"label": label, "model_dir": str(own)}]
    default = _default_model(rows, tmp_path)
    assert default == {"target": FIRMWARE_TARGETS[0], "model": str(own.resolve()), "label": label}
    assert _default_model(rows[:1], tmp_path)["label"] is None
