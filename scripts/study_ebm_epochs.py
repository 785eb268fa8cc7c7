"""How long the energy model should train, measured on validation background only (never signals).

Trains the energy model of ``make run`` (same events, config and seed) into a study directory,
resuming epoch block by epoch block, and after each block records the validation DSM loss and the
score-choice criterion of :mod:`l1ad.evaluation.score_choice` (mean TPR at FPR 1e-4 over the probes
of validation background, per score). Early stopping is off (patience = all epochs) so every block
is measured. Prints a table and writes ``<study>/epochs.json`` and ``<study>/epochs.png``.

    .venv/bin/python scripts/study_ebm_epochs.py --run runs/default --epochs 3 6 9 12 15
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
    ap.add_argument("--study", type=Path, help="output directory (default <run>/studies/ebm_epochs)")
    ap.add_argument("--epochs", type=int, nargs="+", default=[3, 6, 9, 12, 15])
    ap.add_argument("--max-events", type=int, default=300_000, help="training events (make run: 300k)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fpr", type=float, default=1e-4, help="working point of the criterion")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from l1ad.core.files import atomic_write_text
    from l1ad.evaluation.score_choice import FAMILY, choose_ebm_score
    from l1ad.models.ebm.train import train_model

    data = a.run / "data"
    study = a.study or a.run / "studies" / "ebm_epochs"
    rows = []
    for epochs in sorted(a.epochs):
        t0 = time.perf_counter()
        model = train_model("ebm", data / "background_train.h5", study, config={"patience": max(a.epochs)},
                            seed=a.seed, epochs=epochs, resume=True, max_events=a.max_events)  # fmt: skip
        meta = json.loads((model / "meta.json").read_text())["metrics"]
        choice = choose_ebm_score(model, data / "background_val.h5", seed=a.seed, fpr=a.fpr)
        rows.append({
            "epochs": epochs,
            "val_dsm": meta["history"][-1]["val_dsm"],
            "train_seconds": meta["train_seconds"],
            "criterion": {s: [choice["scores"][s]["mean_tpr"], choice["scores"][s]["mean_tpr_err"]] for s in FAMILY},
            "chosen": choice["chosen"],
        })  # fmt: skip
        print(f"{epochs} epochs: val DSM {rows[-1]['val_dsm']:.4f}, chosen {choice['chosen']} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip

    head = "| epochs | val DSM | train s | " + " | ".join(FAMILY) + " | chosen |"
    lines = [head, "|---" * (len(FAMILY) + 4) + "|"]
    for r in rows:
        cells = [f"{100 * v:.2f} ± {100 * e:.2f}" for v, e in r["criterion"].values()]
        lines.append(
            f"| {r['epochs']} | {r['val_dsm']:.4f} | {r['train_seconds']:.0f} | {' | '.join(cells)} | {r['chosen']} |"
        )
    print(f"mean probe TPR (%) at FPR {a.fpr:g} on validation background, per score:\n" + "\n".join(lines))
    atomic_write_text(
        study / "epochs.json", json.dumps({"rows": rows, "seed": a.seed, "fpr": a.fpr}, indent=1)
    )
    _plot(rows, study / "epochs.png")
    print(f"wrote {study / 'epochs.json'} and {study / 'epochs.png'}")
    return 0


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    from l1ad.core.files import save_figure
    from l1ad.evaluation.plots import hep_style

    with hep_style():
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 9), sharex=True)
        ep = [r["epochs"] for r in rows]
        ax1.plot(ep, [r["val_dsm"] for r in rows], "o-", color="k")
        ax1.set_ylabel("validation DSM loss", fontsize=16)
        ax1.set_title("energy model, validation background only", fontsize=14)
        for name in rows[0]["criterion"]:
            v = [100 * r["criterion"][name][0] for r in rows]
            e = [100 * r["criterion"][name][1] for r in rows]
            ax2.errorbar(ep, v, yerr=e, marker="o", capsize=3, label=name)
        ax2.set_yscale("log")
        ax2.set_xlabel("training epochs", fontsize=16)
        ax2.set_ylabel("mean probe TPR [%] at the rule's FPR", fontsize=16)
        ax2.legend(fontsize=12)
        fig.tight_layout()
        save_figure(fig, path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
