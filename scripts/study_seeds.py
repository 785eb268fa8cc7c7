"""Spread over training seeds: how much of a difference between two models training alone can make.

Trains one model of ``make run`` (same events, config and epochs) with several seeds into a study
directory (resumable: a seed already trained is kept), scores the run's test background and signals
and prints, per signal, AUROC and TPR at FPR 1e-4 / 1e-5 for each seed with the statistical errors,
then the mean and the standard deviation over seeds. Writes ``<study>/seeds.json``. Seed 1 is
``make run``'s model, retrained here from scratch, so its row also shows how reproducible a run is.

    .venv/bin/python scripts/study_seeds.py --run runs/default --model ae_compact --quantization hgq --seeds 1 2 3
    .venv/bin/python scripts/study_seeds.py --model student   # the default L1 model (its teacher: the run's)
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

KEYS = ("auroc", "tpr_at_fpr_1e-4", "tpr_at_fpr_1e-5")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("runs/default"))
    ap.add_argument("--model", default="ae_compact")
    ap.add_argument("--quantization", default="hgq")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument(
        "--study", type=Path, help="output directory (default <run>/studies/seeds_<model>-<quant>)"
    )
    ap.add_argument("--max-events", type=int, default=300_000, help="training events (make run: 300k)")
    ap.add_argument("--epochs", type=int, default=12, help="Keras epochs (make run: 12)")
    ap.add_argument("--n-background", type=int, default=1_000_000, help="test background events scored")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from l1ad.core.files import atomic_write_text
    from l1ad.evaluation.metrics import signal_metrics
    from l1ad.events.io import read_events
    from l1ad.models import registry

    data = a.run / "data"
    study = a.study or a.run / "studies" / f"seeds_{a.model}-{a.quantization}"
    bkg = read_events(data / "background_test.h5", stop=a.n_background)
    signals = {p.stem.removeprefix("signal_"): read_events(p) for p in sorted(data.glob("signal_*.h5"))}
    # one scoring call per seed (a Keras model scores in its own process), split afterwards
    everything = np.concatenate([bkg, *signals.values()])
    edges = np.cumsum([0, len(bkg), *(len(ev) for ev in signals.values())])
    rows: dict[int, dict] = {}
    for seed in a.seeds:
        t0 = time.perf_counter()
        out = study / f"seed{seed}"
        if not (registry.model_dir(out, a.model, a.quantization) / registry.META_FILE).exists():
            train = [sys.executable, "-m", "l1ad.cli.main", "train", "--model", a.model, "--quantization",
                     a.quantization, "--background", str(data / "background_train.h5"), "--out", str(out),
                     "--seed", str(seed), "--max-events", str(a.max_events), "--epochs", str(a.epochs)]  # fmt: skip
            if a.model == "student":  # distilled from the run's energy model, as make run distils it
                from l1ad.models.distill import find_teacher

                train += ["--teacher", str(find_teacher(a.run))]
            subprocess.run(train, check=True)
        model = registry.open_model(registry.model_dir(out, a.model, a.quantization))
        s = registry.score(model, everything)[model.label]
        rows[seed] = {name: signal_metrics(s[: edges[1]], s[edges[j + 1] : edges[j + 2]])
                      for j, name in enumerate(signals)}  # fmt: skip
        print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)

    summary = {}
    lines = [f"{a.model}/{a.quantization}, {len(a.seeds)} seeds, {len(bkg):,} test background events", ""]
    for name in signals:
        lines += [f"**{name}**", "", "| seed | AUROC | TPR @ 1e-4 | TPR @ 1e-5 |", "|---|---|---|---|"]
        for seed, per in rows.items():
            m = per[name]
            cells = [f"{m[k]:.4f} ± {m[k + '_err']:.4f}" if m[k] is not None else "n/a" for k in KEYS]
            lines.append(f"| {seed} | " + " | ".join(cells) + " |")
        stats = {}
        for k in KEYS:
            v = np.array([per[name][k] for per in rows.values() if per[name][k] is not None], dtype=float)
            stats[k] = {
                "mean": float(v.mean()),
                "std_over_seeds": float(v.std(ddof=1)) if v.size > 1 else None,
            }
        summary[name] = stats
        lines.append("| mean ± std over seeds | " + " | ".join(
            f"{s['mean']:.4f} ± {s['std_over_seeds']:.4f}" if s["std_over_seeds"] is not None else f"{s['mean']:.4f}"
            for s in stats.values()) + " |")  # fmt: skip
        lines.append("")
    text = "\n".join(lines)
    print(text)
    study.mkdir(parents=True, exist_ok=True)
    record = {"model": a.model, "quantization": a.quantization, "seeds": a.seeds, "n_background": len(bkg),
              "per_seed": {str(k): v for k, v in rows.items()}, "summary": summary}  # fmt: skip
    atomic_write_text(study / "seeds.json", json.dumps(record, indent=1))
    atomic_write_text(study / "seeds.md", text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
