"""Two-sample tests between event samples: a fixed classifier test and per-type multiplicity pulls.

Both answer "could an anomaly detector trained on sample A tell it from sample B?" without tuning to pass:

* :func:`classifier_test` -- gradient-boosted trees (``sklearn.ensemble.HistGradientBoostingClassifier``,
  :data:`CLASSIFIER_ITERATIONS` = 200 iterations, no early stopping, otherwise sklearn's defaults) on
  all 57 network inputs (pT, eta, phi of the 19 slots, :func:`l1ad.events.schema.flat_feature_names`),
  the same number of events per class (at most ``max_per_class``), trained on 70% and scored on the
  held-out 30%. AUC 0.5 means indistinguishable, 1.0 disjoint; its error is the Hanley-McNeil standard
  error of the held-out AUC. The settings are fixed in advance and are not a knob to pass a test.
* :func:`multiplicity_table` -- per object type (e/gamma, muons, jets and leptons = e + mu) the fraction
  of events with ``k`` objects in each sample, the relative difference and the pull
  ``(f_A - f_B) / sqrt(f_A (1 - f_A) / n_A + f_B (1 - f_B) / n_B)`` (both samples' binomial errors).
  A bin *fails* when it holds at least :data:`MIN_BIN_FRACTION` of either sample and differs by more
  than :data:`MAX_RELATIVE` relative or :data:`MAX_PULL` in pull.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from . import schema

logger = logging.getLogger(__name__)

CLASSIFIER_ITERATIONS = 200
TEST_FRACTION = 0.3
MIN_BIN_FRACTION, MAX_RELATIVE, MAX_PULL = 0.01, 0.10, 3.0
MULTIPLICITY_TYPES = ("e", "mu", "lep", "jet")


def auc_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley-McNeil (1982) standard error of an AUC from ``n_pos`` and ``n_neg`` scored events."""
    q1, q2 = auc / (2.0 - auc), 2.0 * auc * auc / (1.0 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (
        n_pos * n_neg
    )
    return float(np.sqrt(max(var, 0.0)))


def classifier_test(a: np.ndarray, b: np.ndarray, seed: int = 1, max_per_class: int = 50_000) -> dict:
    """Held-out AUC of the fixed classifier separating ``a`` (label 1) from ``b`` (label 0)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 4242])))
    n = int(min(len(a), len(b), max_per_class))
    if n < 50:
        raise ValueError(f"classifier test needs at least 50 events per sample, got {len(a)} and {len(b)}")
    xa = schema.kinematics(a[rng.permutation(len(a))[:n]]).reshape(n, -1)
    xb = schema.kinematics(b[rng.permutation(len(b))[:n]]).reshape(n, -1)
    x = np.concatenate([xa, xb]).astype(np.float32)
    y = np.concatenate([np.ones(n), np.zeros(n)])
    order = rng.permutation(2 * n)
    n_test = int(round(TEST_FRACTION * 2 * n))
    test, train = order[:n_test], order[n_test:]
    clf = HistGradientBoostingClassifier(
        max_iter=CLASSIFIER_ITERATIONS, early_stopping=False, random_state=int(seed)
    )
    clf.fit(x[train], y[train])
    p = clf.predict_proba(x[test])[:, 1]
    auc = float(roc_auc_score(y[test], p))
    n_pos, n_neg = int(y[test].sum()), int((1 - y[test]).sum())
    return {
        "auc": auc,
        "auc_error": auc_error(auc, n_pos, n_neg),
        "n_per_class": n,
        "n_test": n_test,
        "iterations": CLASSIFIER_ITERATIONS,
        "inputs": schema.N_INPUTS,
    }


def multiplicities(particles: np.ndarray) -> dict[str, np.ndarray]:
    """Objects per event of each type (``lep`` = e/gamma + muons)."""
    pres = schema.present(particles)
    n_e = pres[:, schema.EGAMMA.slots].sum(axis=1)
    n_mu = pres[:, schema.MUON.slots].sum(axis=1)
    return {"e": n_e, "mu": n_mu, "lep": n_e + n_mu, "jet": pres[:, schema.JET.slots].sum(axis=1)}


def multiplicity_table(a: np.ndarray, b: np.ndarray) -> dict[str, list[dict]]:
    """Per type and multiplicity ``k``: fractions, relative difference, pull and pass/fail (see above)."""
    ma, mb = multiplicities(a), multiplicities(b)
    na, nb = len(a), len(b)
    out: dict[str, list[dict]] = {}
    for t in MULTIPLICITY_TYPES:
        top = int(max(ma[t].max(initial=0), mb[t].max(initial=0)))
        rows = []
        for k in range(top + 1):
            fa, fb = float(np.mean(ma[t] == k)), float(np.mean(mb[t] == k))
            var = fa * (1 - fa) / na + fb * (1 - fb) / nb
            pull = (fa - fb) / np.sqrt(var) if var > 0 else 0.0
            rel = (fa - fb) / fb if fb > 0 else (np.inf if fa > 0 else 0.0)
            tested = max(fa, fb) >= MIN_BIN_FRACTION
            ok = not tested or (abs(rel) <= MAX_RELATIVE and abs(pull) <= MAX_PULL)
            rows.append({"k": k, "a": fa, "b": fb, "relative": float(rel), "pull": float(pull),
                         "tested": tested, "ok": bool(ok)})  # fmt: skip
        out[t] = rows
    return out


def failing_bins(table: dict[str, list[dict]]) -> list[str]:
    """``"<type> = k"`` of every tested bin outside the tolerances."""
    return [f"{t} = {r['k']}" for t, rows in table.items() for r in rows if not r["ok"]]


def format_multiplicities(table: dict[str, list[dict]], name_a: str = "A", name_b: str = "B") -> str:
    lines = [f"  {'n':<8}{name_a[:10]:>11}{name_b[:10]:>11}{'rel':>9}{'pull':>8}  "]
    for t, rows in table.items():
        for r in rows:
            if max(r["a"], r["b"]) < 1e-4:
                continue
            flag = "" if not r["tested"] else ("ok" if r["ok"] else "FAIL")
            rel = f"{r['relative']:+9.2f}" if np.isfinite(r["relative"]) else f"{'inf':>9}"
            lines.append(
                f"  {t + ' = ' + str(r['k']):<8}{r['a']:>11.4f}{r['b']:>11.4f}{rel}{r['pull']:>+8.1f}  {flag}"
            )
    return "\n".join(lines)


def background_mixture(sample_dir: str | Path) -> np.ndarray:
    """The ADC2021 background mixture of a folder of per-process files (``W.h5``, ``QCD.h5``, ``Z.h5``,
    ``ttbar.h5``, as ``scripts/make_pythia_reference.py`` writes them): the largest sample in the
    mixture's proportions (:data:`l1ad.events.generator.BACKGROUND_FRACTIONS`), the leading events of
    each file, concatenated in process order."""
    from .generator import BACKGROUND_FRACTIONS, BACKGROUND_PROCESSES, mixture_counts
    from .io import read_events

    folder = Path(sample_dir)
    missing = [p for p in BACKGROUND_PROCESSES if not (folder / f"{p}.h5").exists()]
    if missing:
        raise FileNotFoundError(
            f"{folder}: no background mixture, missing {', '.join(f'{p}.h5' for p in missing)}"
        )
    parts = [read_events(folder / f"{p}.h5") for p in BACKGROUND_PROCESSES]
    n = int(min(len(x) / f for x, f in zip(parts, BACKGROUND_FRACTIONS, strict=True)))
    return np.concatenate([x[:c] for x, c in zip(parts, mixture_counts(n), strict=True)])
