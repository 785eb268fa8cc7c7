"""``l1ad explain``, ``l1ad sample`` and ``l1ad choose-score``: attribution, Langevin sampling and the
score choice (on validation background) of a trained energy model."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def add_args(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("explain", help="top features of an event's energy-model score, with a bar chart")
    e.add_argument("model_dir", help="a trained energy/score model directory, e.g. runs/default/ebm-float")
    e.add_argument("--events", required=True, help="ADC2021-layout file")
    e.add_argument("--row", type=int, default=0, help="event row in the file")
    e.add_argument("--top", type=int, default=10)
    e.add_argument("--plot", help="bar chart path (default MODEL_DIR/explain_row<N>.png)")
    e.set_defaults(func=explain)

    s = sub.add_parser("sample", help="annealed Langevin samples compared with real background")
    s.add_argument("model_dir")
    s.add_argument("--reference", required=True, help="background file to compare with")
    s.add_argument(
        "--n", type=int, default=5000, help="events to sample (multiplicity patterns from the reference)"
    )
    s.add_argument("--steps", type=int, default=20, help="Langevin steps per noise level")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", help="directory for sampling.json and sampling.png (default MODEL_DIR)")
    s.set_defaults(func=sample)

    c = sub.add_parser(
        "choose-score", help="choose the energy model's score on validation background (never signals)"
    )
    c.add_argument("model_dir", help="a trained energy model directory, e.g. runs/default/ebm-float")
    c.add_argument("--background", required=True, help="validation background (e.g. data/background_val.h5)")
    c.add_argument("--n-events", type=int, default=200_000, help="half calibrate, half choose")
    c.add_argument("--seed", type=int, default=0, help="seed of the probes")
    c.add_argument("--fpr", type=float, default=1e-4, help="working point of the rule")
    c.set_defaults(func=choose_score)


def explain(args: argparse.Namespace) -> int:
    from l1ad.events.io import read_events
    from l1ad.models.ebm.explain import explain_event, plot_attribution

    row = read_events(args.events, start=args.row, stop=args.row + 1)
    if len(row) != 1:
        raise ValueError(f"{args.events}: no row {args.row}")
    explanation = explain_event(args.model_dir, row[0], top_k=args.top)
    print(f"{args.events} row {args.row}: top {args.top} score components (standardized units)")
    for name, value in explanation:
        print(f"  {name:12s} {value:+10.4f}")
    plot = Path(args.plot or Path(args.model_dir) / f"explain_row{args.row}.png")
    plot_attribution(explanation, plot, title=f"{Path(args.events).name} row {args.row}")
    print(f"bar chart: {plot}")
    return 0


def sample(args: argparse.Namespace) -> int:
    from l1ad.core.files import atomic_write_text
    from l1ad.events.io import read_events
    from l1ad.models.ebm.sampling import compare_with_background

    out = Path(args.out or args.model_dir)
    reference = read_events(args.reference, stop=args.n)
    stats = compare_with_background(
        args.model_dir, reference, plot_path=out / "sampling.png", n_steps=args.steps, seed=args.seed
    )
    atomic_write_text(out / "sampling.json", json.dumps(stats, indent=1))
    print(json.dumps({k: v for k, v in stats.items() if isinstance(v, dict)}, indent=1))
    return 0 if stats["finite"] else 1


def choose_score(args: argparse.Namespace) -> int:
    from l1ad.evaluation.score_choice import choose_ebm_score, format_choice

    result = choose_ebm_score(
        args.model_dir, args.background, n_events=args.n_events, seed=args.seed, fpr=args.fpr
    )
    print(f"TPR (%) at FPR {result['fpr']:g} on probes of {result['choice_rows'][1] - result['choice_rows'][0]:,} "
          f"validation background events ({args.background})")  # fmt: skip
    print(format_choice(result))
    print(f"rule: {result['rule']}\nchosen: {result['chosen']} (best: {result['best']})")
    return 0
