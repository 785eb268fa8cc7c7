"""Energy vs ``pattern_density`` of a trained energy model, measured on a run's own data.

Usage: ``python scripts/study_pattern_density.py [--run runs/default] [--model ebm-float]``

The per-pattern calibration is fitted on the run's *validation* background (``background_val.h5``),
never on test events or signals; both scores are then reported once on the test background and the
four signals (AUROC with its Hanley-McNeil error, TPR at FPR 1e-4 with its binomial error). A model
trained with this calibration already has ``pattern.json``; this script refits it from the validation
file so that models trained before it existed can be measured too. Prints a Markdown table with two ablations:
``tail`` (-log t: how extreme the event is within its own pattern) and ``pattern_tail``
(-log P(pattern) - log t: a tail probability, not a density; see ``tests/test_pattern_density.py``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("runs/default"))
    ap.add_argument("--model", default="ebm-float")
    ap.add_argument("--fpr", type=float, default=1e-4)
    args = ap.parse_args()

    from l1ad.evaluation.metrics import auroc, auroc_error, tpr_at_fpr
    from l1ad.events import schema
    from l1ad.events.default_data import dataset_paths
    from l1ad.events.io import read_events
    from l1ad.models.ebm import pattern_density
    from l1ad.models.ebm.scores import batched_energy, fit_pattern, load_model

    model = load_model(args.run / args.model)
    data = args.run / "data"
    val = read_events(data / "background_val.h5")
    t0 = time.perf_counter()
    calib = fit_pattern(model, val)
    print(f"calibration: {len(val)} validation background events, {calib['n_patterns']} patterns "
          f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    backgrounds, signals = dataset_paths(data)

    def scores(path: Path) -> dict[str, np.ndarray]:
        ev = read_events(path)
        e = batched_energy(model, ev)
        mask = schema.input_mask(ev)
        log_p, log_t = pattern_density.terms(calib, e, mask)
        return {"energy": e, "pattern_density": pattern_density.score(calib, e, mask),
                "tail": -log_t, "pattern_tail": -log_p - log_t}  # fmt: skip

    bkg = scores(backgrounds["test"])
    n_b = len(bkg["energy"])
    print(f"\n{n_b} test background events; AUROC / TPR at FPR {args.fpr:g} (%)\n")
    names = ("energy", "pattern_density", "tail", "pattern_tail")
    print(f"| signal | n | {' | '.join(names)} |\n|---|---|{'---|' * len(names)}")
    for name, path in signals.items():
        sig = scores(path)
        cells = []
        for k in names:
            a = auroc(bkg[k], sig[k])
            t = tpr_at_fpr(bkg[k], sig[k], args.fpr)
            err = auroc_error(a, len(sig[k]), n_b)
            cells.append(f"{a:.3f} ± {err:.3f} / {100 * t.tpr:.2f} ± {100 * t.tpr_err:.2f}")
        print(f"| {name} | {len(sig['energy'])} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
