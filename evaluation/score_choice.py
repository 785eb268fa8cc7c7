"""The energy model's score, chosen on validation background before any test signal is looked at.

Declared in advance (this module, before the measurement it decides):

* **The family**, in order of preference: ``pattern_density`` (a density across patterns of
  objects), ``pattern_tail``, ``multiscale_gmm``, ``energy``, ``score_norm``
  (:mod:`l1ad.models.ebm.scores`).
* **The data**: the run's validation background (``background_val.h5``), never the test file or a
  signal. Its first half refits the per-pattern calibration (``pattern.json``); the second half is
  the background of the choice, and the signal-agnostic probes of :mod:`l1ad.events.probes` are made
  from it.
* **The rule**: each score's criterion is its mean TPR at FPR 1e-4 over the probes, with the error
  of that mean (each TPR's error includes its threshold's). The chosen score is the *first* of the
  family whose criterion is within one error of the best one (the one-standard-error rule: no score is
  preferred over a simpler-to-defend one on a difference the statistics cannot resolve).

``l1ad choose-score MODEL_DIR --background background_val.h5`` writes ``score_choice.json`` next to
the model; the evaluation reads it and reports the chosen score as its own row.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.core.files import atomic_write_text
from l1ad.evaluation.metrics import tpr_at_fpr
from l1ad.events.io import read_events
from l1ad.events.probes import make_probes

log = logging.getLogger(__name__)

FAMILY = ("pattern_density", "pattern_tail", "multiscale_gmm", "energy", "score_norm")
CHOICE_FPR = 1e-4
RULE = (
    "first score of the declared family whose mean TPR at FPR {fpr:g} over the probes "
    "({probes}) is within one standard error of the best, on validation background"
)


def choose(
    background: dict[str, np.ndarray],
    probes: dict[str, dict[str, np.ndarray]],
    family: tuple[str, ...] = FAMILY,
    fpr: float = CHOICE_FPR,
) -> dict[str, Any]:
    """Apply the rule: ``background[score]`` and ``probes[probe][score]`` are score arrays.

    Only background and background-derived probes enter; there is no signal argument.
    """
    if not probes:
        raise ValueError("the choice needs at least one probe")
    missing = [s for s in family if s not in background or any(s not in p for p in probes.values())]
    if missing:
        raise ValueError(f"scores {missing} of the family are missing from the background or a probe")
    table: dict[str, dict[str, Any]] = {}
    for name in family:
        res = {p: tpr_at_fpr(background[name], scores[name], fpr) for p, scores in probes.items()}
        if any(math.isnan(r.tpr) for r in res.values()):
            raise ValueError(f"FPR {fpr:g} is not resolved by {len(background[name])} background events")
        table[name] = {
            "mean_tpr": float(np.mean([r.tpr for r in res.values()])),
            "mean_tpr_err": math.sqrt(sum(r.tpr_err**2 for r in res.values())) / len(res),
            "tpr": {p: r.tpr for p, r in res.items()},
            "tpr_err": {p: r.tpr_err for p, r in res.items()},
        }
    best = max(family, key=lambda n: table[n]["mean_tpr"])
    bar = table[best]["mean_tpr"] - table[best]["mean_tpr_err"]
    chosen = next(n for n in family if table[n]["mean_tpr"] >= bar)
    return {
        "rule": RULE.format(fpr=fpr, probes=", ".join(probes)),
        "fpr": fpr,
        "family": list(family),
        "probes": list(probes),
        "n_background": int(len(next(iter(background.values())))),
        "scores": table,
        "best": best,
        "chosen": chosen,
    }


def choose_ebm_score(
    model_dir: str | Path,
    background: str | Path,
    n_events: int = 200_000,
    seed: int = 0,
    fpr: float = CHOICE_FPR,
) -> dict[str, Any]:
    """Refit the pattern calibration on half of ``background`` (validation background), choose the
    score on the other half and its probes, write ``pattern.json`` and ``score_choice.json``."""
    from l1ad.models.ebm import pattern_density
    from l1ad.models.ebm.scores import CHOICE_FILE, fit_pattern, load_model, score

    model_dir = Path(model_dir)
    t0 = time.perf_counter()
    events = read_events(background, stop=n_events)
    half = len(events) // 2
    if half * fpr < 10:
        raise ValueError(f"{background}: {len(events)} events; the choice at FPR {fpr:g} needs "
                         f">= {math.ceil(20 / fpr)} (half calibrates, half chooses, 10 above threshold)")  # fmt: skip
    model = load_model(model_dir)
    calib_events, choice_events = events[:half], events[half:]
    calib = fit_pattern(model, calib_events)
    calib["fitted_on"] = {"file": str(background), "rows": [0, half]}
    model.pattern_source = calib
    log.info("pattern calibration refitted on %d validation events (%d patterns)", half, calib["n_patterns"])
    bkg = score(model, choice_events, FAMILY)
    probe_scores = {}
    for name, probe in make_probes(choice_events, seed).items():
        log.info("scoring probe %s (%d events)", name, len(probe))
        probe_scores[name] = score(model, probe, FAMILY)
    result = choose(bkg, probe_scores, fpr=fpr)
    result.update(
        background_file=str(background),
        calibration_rows=[0, half],
        choice_rows=[half, len(events)],
        seed=seed,
    )
    pattern_density.save(calib, model_dir / pattern_density.PATTERN_FILE)
    atomic_write_text(model_dir / CHOICE_FILE, json.dumps(result, indent=1))
    log.info(
        "chose %s (best %s) for %s in %.0f s",
        result["chosen"],
        result["best"],
        model_dir,
        time.perf_counter() - t0,
    )
    return result


def read_choice(model_dir: str | Path) -> dict[str, Any] | None:
    """The model's ``score_choice.json``, or None when no choice was made."""
    from l1ad.models.ebm.scores import CHOICE_FILE

    path = Path(model_dir) / CHOICE_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def format_choice(result: dict[str, Any]) -> str:
    """The choice as a Markdown table (TPR in %)."""
    probes = result["probes"]
    lines = [f"| score | {' | '.join(probes)} | mean |", "|---" * (len(probes) + 2) + "|"]
    for name in result["family"]:
        row = result["scores"][name]
        cells = [f"{100 * row['tpr'][p]:.2f} ± {100 * row['tpr_err'][p]:.2f}" for p in probes]
        mark = " (chosen)" if name == result["chosen"] else ""
        lines.append(f"| {name}{mark} | {' | '.join(cells)} | "
                     f"{100 * row['mean_tpr']:.2f} ± {100 * row['mean_tpr_err']:.2f} |")  # fmt: skip
    return "\n".join(lines)
