"""``l1ad pipeline``: the main job (``make run``): data -> models -> evaluation -> firmware -> reports.

Each step is the documented CLI command run in its own process (native HGQ2 and QKeras-style layers
must never share a process), so the pipeline is exactly what a user would type. Steps whose output
already exists are skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Profile:
    n_background: int
    n_signal: int
    train_events: int | None  # None: the whole training file
    keras_epochs: int | None  # None: each model's configured epochs (early stopping still applies)
    torch_epochs: int | None
    models: tuple[tuple[str, str], ...]  # (model, quantization), in training order
    firmware_target: str | None


#: Trained by ``make run``, in this order: the student distils the energy model (its teacher).
DEFAULT_MODELS = (
    ("iforest", "float"),
    ("ae_ref", "float"),
    ("ae_ref", "hgq"),
    ("ae_compact", "float"),
    ("ae_compact", "hgq"),
    ("ae_compact", "qkeras"),
    ("vae", "float"),
    ("vae", "hgq"),
    ("ebm", "float"),
    ("student", "hgq"),
)

PROFILES = {
    "default": Profile(2_200_000, 100_000, 300_000, 12, 3, DEFAULT_MODELS, "ae_compact_vu13p"),
    # a few-minute smoke run of every step on small data (used by the end-to-end test)
    "quick": Profile(44_000, 5_000, 20_000, 2, 1, DEFAULT_MODELS, "ae_compact_vu13p"),
}


DEFAULT_OUT = Path("runs/default")


def add_args(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pipeline", help="the main job: generate data, train, evaluate, build and emulate firmware"
    )
    p.add_argument("--out", default=str(DEFAULT_OUT), help="run directory")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--profile", choices=sorted(PROFILES), default="default")
    p.add_argument("--skip-firmware", action="store_true")
    p.add_argument("--force", action="store_true", help="redo steps whose outputs exist")


def _run(argv: list[str], what: str, accept: tuple[int, ...] = (0,)) -> int:
    """Run one ``l1ad`` step; a status outside ``accept`` stops the pipeline."""
    log.info("==> %s: l1ad %s", what, " ".join(argv))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "l1ad.cli.main", *argv], check=False)
    if proc.returncode not in accept:
        raise RuntimeError(f"step '{what}' failed with exit status {proc.returncode}: l1ad {' '.join(argv)}")
    log.info("<== %s done in %.1f s", what, time.perf_counter() - t0)
    return proc.returncode


def main(args: argparse.Namespace) -> int:
    from l1ad.models import registry

    prof = PROFILES[args.profile]
    out = Path(args.out)
    data = out / "data"
    t_start = time.perf_counter()
    if args.force or not (data / "dataset.json").exists():
        n_bkg, n_sig = str(prof.n_background), str(prof.n_signal)
        generate = ["data", "generate", "--out", str(data), "--n-background", n_bkg, "--n-signal", n_sig]
        _run([*generate, "--seed", str(args.seed)], "generate data")
    bkg_train = str(data / "background_train.h5")
    for model, quant in prof.models:
        model_dir = registry.model_dir(out, model, quant)
        if not args.force and (model_dir / registry.META_FILE).exists():
            log.info("skip training %s/%s: %s exists", model, quant, model_dir)
            continue
        argv = ["train", "--model", model, "--quantization", quant, "--background", bkg_train]
        argv += ["--out", str(out), "--seed", str(args.seed)]
        if prof.train_events:
            argv += ["--max-events", str(prof.train_events)]
        framework = registry.kind(model).framework
        epochs = prof.torch_epochs if framework == "torch" else prof.keras_epochs
        if epochs and framework != "sklearn":
            argv += ["--epochs", str(epochs)]
        if model_dir.exists() and not args.force:
            argv.append("--resume")
        _run(argv, f"train {model}/{quant}")
    signals = [f"--signal={p.stem.removeprefix('signal_')}={p}" for p in sorted(data.glob("signal_*.h5"))]
    _run(["evaluate", str(out), "--background", str(data / "background_test.h5"), *signals], "evaluate")
    if prof.firmware_target and not args.skip_firmware:
        target = prof.firmware_target
        # the default run builds into firmware_projects/<target>/; other run directories keep their own
        where = ["--run-dir", str(out)]
        if out.resolve() != DEFAULT_OUT.resolve():
            where += ["--project", str(out / "firmware" / target)]
        _run(["firmware", "build", target, *where], "firmware build")
        _run(
            ["firmware", "emulate", target, *where, "--events", str(data / "background_test.h5")],
            "firmware emulate",
        )
        # exit 1: a budget fails. That is a result of the run (named in the report), not a broken step
        if _run(["firmware", "report", target, *where], "firmware report", accept=(0, 1)):
            log.warning("firmware report: the %s target fails a budget (see its report.md)", target)
    log.info("pipeline finished in %.1f min; results in %s", (time.perf_counter() - t_start) / 60, out)
    return 0
