"""``l1ad train``: train one model (Keras QAT/float, PyTorch energy model, or a baseline) on any file."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)

#: The choices of --model, in the registry's order (kept literal: the parser must not import the models).
MODELS = (
    "ae_ref",
    "ae_compact",
    "vae",
    "student",
    "ae_ref_log",
    "ae_ref_hlt",
    "ebm",
    "ebm_hlt",
    "score",
    "iforest",
)


def add_args(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on an ADC2021-layout background file")
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument("--quantization", choices=("hgq", "qkeras", "float"), default="float")
    p.add_argument("--background", required=True, help="training background file (any ADC2021-layout HDF5)")
    p.add_argument(
        "--out", required=True, help="run directory; the model goes to OUT/<model>-<quantization>/"
    )
    p.add_argument("--config", help="YAML file overriding the model's default configuration")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, help="override the configured number of epochs")
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    p.add_argument("--max-events", type=int, help="use only the first N events of the file")
    p.add_argument(
        "--teacher",
        help="student only: model directory of the teacher (default: OUT/ebm-float, else OUT/ae_ref-float)",
    )


def main(args: argparse.Namespace) -> int:
    from l1ad.models.training import train

    path = train(
        args.model,
        args.quantization,
        background=args.background,
        out=args.out,
        config=args.config,
        seed=args.seed,
        epochs=args.epochs,
        resume=args.resume,
        max_events=args.max_events,
        teacher=args.teacher,
    )
    log.info("model written to %s", path)
    return 0
