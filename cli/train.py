"""``l1ad train``: train one model (Keras QAT/float, PyTorch energy model, or a baseline) on any file."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

KERAS_MODELS = ("ae_ref", "ae_compact", "vae", "student")
TORCH_MODELS = ("ebm", "score")
BASELINE_MODELS = ("iforest",)
#: Teachers of the student, in order of preference: the energy model once trained, else the float AE.
TEACHERS = ("ebm-float", "ae_ref-float")


def add_args(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model on an ADC2021-layout background file")
    p.add_argument("--model", required=True, choices=KERAS_MODELS + TORCH_MODELS + BASELINE_MODELS)
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


def find_teacher(out: Path, explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    for name in TEACHERS:
        if (out / name / "meta.json").exists():
            return out / name
    raise FileNotFoundError(
        f"no teacher for the student in {out}: train one of {TEACHERS} first, or pass --teacher"
    )


def teacher_targets(teacher: Path, background: str, max_events: int | None) -> tuple[np.ndarray, str, dict]:
    """The student's regression input for every event of the training file.

    Returns ``(values, transform, info)``: an energy model's energy at the lowest noise level is already
    a negative log-density, so it is standardized (median, IQR/1.349 over these events) and regressed
    as is (``identity``); an autoencoder's positive, heavy-tailed error is regressed as its ``log``
    (CICADA's choice).
    """
    from l1ad.evaluation.run_models import discover, score
    from l1ad.events.io import read_events

    particles = read_events(background, stop=max_events)
    meta = json.loads((teacher / "meta.json").read_text())
    if meta["framework"] == "torch":
        from l1ad.models.ebm_scores import score as ebm_score

        energy = np.asarray(ebm_score(teacher, particles)["energy"], dtype=np.float64)
        q25, median, q75 = np.percentile(energy, [25, 50, 75])
        scale = max((q75 - q25) / 1.349, 1e-12)
        return (energy - median) / scale, "identity", {"median": float(median), "scale": float(scale)}
    (model,) = [m for m in discover(teacher.parent) if m.path == teacher]
    s = score(model, particles)[model.label]
    return np.maximum(s, 0.0) + 1e-6, "log", {}


def record_teacher(student_dir: Path, teacher: Path, info: dict) -> None:
    """Name the teacher in the student's ``meta.json`` (evaluation compares the two)."""
    from l1ad.events.io import atomic_write_text

    meta_path = student_dir / "meta.json"
    meta = json.loads(meta_path.read_text())
    t = json.loads((teacher / "meta.json").read_text())
    label = f"{t['model']}/{t['quantization']}"
    target = (
        "standardized teacher score" if meta.get("teacher_transform") == "identity" else "log(teacher score)"
    )
    meta["teacher"] = {"model_dir": str(teacher), "label": label, "target": target, **info}
    atomic_write_text(meta_path, json.dumps(meta, indent=1, sort_keys=True) + "\n")


def main(args: argparse.Namespace) -> int:
    out = Path(args.out)
    common = dict(
        background=args.background,
        out=out,
        config=args.config,
        seed=args.seed,
        epochs=args.epochs,
        resume=args.resume,
        max_events=args.max_events,
    )
    if args.model in TORCH_MODELS:
        if args.quantization != "float":
            raise ValueError(
                f"--model {args.model} is a full-precision PyTorch model: use --quantization float"
            )
        from l1ad.models.ebm_train import train_model

        path = train_model(args.model, **common)
    elif args.model in BASELINE_MODELS:
        from l1ad.evaluation.baseline_train import train_iforest

        path = train_iforest(args.background, out, seed=args.seed, max_events=args.max_events)
    else:
        from l1ad.models.keras_train import train_model

        extra = {}
        if args.model == "student":
            teacher = find_teacher(out, args.teacher)
            log.info("student teacher: %s", teacher)
            values, transform, info = teacher_targets(teacher, args.background, args.max_events)
            extra = {"teacher_scores": values, "teacher_transform": transform}
        path = train_model(args.model, args.quantization, **common, **extra)
        if args.model == "student":
            record_teacher(path, teacher, info)
    log.info("model written to %s", path)
    return 0
