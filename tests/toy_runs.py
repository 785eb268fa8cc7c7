"""Run directories with a tiny energy model evaluated on toy events: what the service, batch-job and
Dask tests (and ``scripts/bench_score.py``) score with. One toy background, test and signal sample,
one run per ``(name, seed)``; each run has a rate table resolving 5, 10 and 50 kHz."""

from __future__ import annotations

from pathlib import Path


def toy_runs(root: Path, runs: tuple[tuple[str, int], ...] = (("run", 0),)) -> dict[str, Path]:
    """``{"bkg", "test", "sig", <name>...}``: the toy samples under ``root`` and one trained, evaluated
    run directory per ``(name, seed)``."""
    from l1ad.evaluation.evaluate import evaluate_run
    from l1ad.events.io import write_events
    from l1ad.models.ebm.toydata import TINY_CONFIG, toy_events, write_toy_h5
    from l1ad.models.ebm.train import train_model

    out = {
        "bkg": write_toy_h5(root / "bkg.h5", 600, seed=0),
        "test": write_events(root / "test.h5", toy_events(8000, seed=5)),
        "sig": write_events(root / "sig.h5", toy_events(200, seed=6, anomalous=True)),
    }
    for name, seed in runs:
        train_model("ebm", out["bkg"], root / name, config=TINY_CONFIG, seed=seed)
        evaluate_run(root / name, out["test"], {"toy": out["sig"]})
        out[name] = root / name
    return out
