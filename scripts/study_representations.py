"""The energy model on each input representation: linear / log pT, the 57 L1 inputs / the HLT vector.

For every representation of :mod:`l1ad.events.representations` (``l1``, ``l1_log``, ``hlt``,
``hlt_log``) this trains the energy model as ``make run`` trains it (same training events, epochs,
config and seed; only ``inputs`` differs), chooses its score with ``l1ad choose-score``'s rule on
validation background and its probes (never on signals), then scores the run's test background and
signals with the chosen score. It prints and writes ``<study>/representations.json`` and ``.md``:
the choice criterion (validation) and, per signal, AUROC and TPR at FPR 1e-4 with errors that include
the threshold's. The test-signal columns are a measurement; they do not choose anything (``make run``
fixes ``ebm`` = ``l1`` and ``ebm_hlt`` = ``hlt`` in advance).

    .venv/bin/python scripts/study_representations.py --run runs/default      # ~4 min per representation
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("runs/default"))
    ap.add_argument("--study", type=Path, help="output directory (default <run>/studies/representations)")
    ap.add_argument("--representations", nargs="+", default=None, help="default: all")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from l1ad.cli.pipeline import PROFILES
    from l1ad.core.files import atomic_write_text
    from l1ad.evaluation import metrics
    from l1ad.evaluation.score_choice import choose_ebm_score
    from l1ad.events.io import read_events
    from l1ad.events.representations import REPRESENTATIONS
    from l1ad.models.ebm.scores import score
    from l1ad.models.ebm.train import train_model

    prof = PROFILES["default"]
    data = a.run / "data"
    study = a.study or a.run / "studies" / "representations"
    reps = a.representations or list(REPRESENTATIONS)
    bkg = read_events(data / "background_test.h5")
    signals = {p.stem.removeprefix("signal_"): read_events(p) for p in sorted(data.glob("signal_*.h5"))}
    rows = []
    for rep in reps:
        t0 = time.perf_counter()
        model = train_model("ebm", data / "background_train.h5", study / rep, config={"inputs": rep},
                            seed=a.seed, epochs=prof.torch_epochs, resume=True, max_events=prof.train_events)  # fmt: skip
        train_s = json.loads((model / "meta.json").read_text())["metrics"]["train_seconds"]
        choice = choose_ebm_score(model, data / "background_val.h5", seed=a.seed, fpr=prof.choice_fpr)
        chosen = choice["chosen"]
        b = score(model, bkg, (chosen,))[chosen]
        per_signal = {name: metrics.signal_metrics(b, score(model, ev, (chosen,))[chosen])
                      for name, ev in signals.items()}  # fmt: skip
        crit = choice["scores"][chosen]
        rows.append({"representation": rep, "chosen": chosen, "train_seconds": train_s,
                     "criterion": [crit["mean_tpr"], crit["mean_tpr_err"]], "signals": per_signal})  # fmt: skip
        print(f"{rep}: chose {chosen}, " + ", ".join(
            f"{n} AUROC {m['auroc']:.3f} TPR@1e-4 {100 * m['tpr_at_fpr_1e-4']:.3f} %" for n, m in per_signal.items()
        ) + f" ({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
    result = {"seed": a.seed, "n_background": len(bkg), "n_signal": {n: len(v) for n, v in signals.items()},
              "train_events": prof.train_events, "epochs": prof.torch_epochs, "rows": rows}  # fmt: skip
    md = render(result)
    print(md)
    atomic_write_text(study / "representations.json", json.dumps(result, indent=1, default=float))
    atomic_write_text(study / "representations.md", md + "\n")
    print(f"wrote {study / 'representations.json'} and .md")
    return 0


def render(result: dict) -> str:
    """Markdown table of a ``representations.json``."""
    names = list(result["rows"][0]["signals"])
    lines = [
        f"Energy model per input representation (`scripts/study_representations.py`, seed {result['seed']}, "
        f"{result['train_events']:,} training events, {result['epochs']} epochs; score chosen on validation "
        f"background by the rule of `l1ad choose-score`; {result['n_background']:,} test background events). "
        "AUROC / TPR at FPR 1e-4 in %:",
        "",
        "| inputs | chosen score | probe criterion (%) | " + " | ".join(names) + " |",
        "|---" * (len(names) + 3) + "|",
    ]
    for r in result["rows"]:
        cells = [
            f"{m['auroc']:.3f} / {100 * m['tpr_at_fpr_1e-4']:.3f} ± {100 * m['tpr_at_fpr_1e-4_err']:.3f}"
            for m in r["signals"].values()
        ]
        crit = f"{100 * r['criterion'][0]:.2f} ± {100 * r['criterion'][1]:.2f}"
        lines.append(f"| {r['representation']} | {r['chosen']} | {crit} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
