"""``l1ad pipeline``: the main job (``make run``): data -> models -> evaluation -> firmware -> reports.

Each step is the documented CLI command run in its own process (native HGQ2 and QKeras-style layers
must never share a process), so the pipeline is exactly what a user would type. Steps whose output
already exists are skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
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
    firmware_targets: tuple[str, ...]  # the first is the default L1 target
    calibration_events: int  # validation background for the thresholds of calibrated targets
    choice_fpr: float = 1e-4  # working point of the energy model's score choice (validation background)


#: Trained by ``make run``, in this order: the student distils the energy model (its teacher); the energy
#: model on the 64-feature HLT vector (``ebm_hlt``) is an HLT/offline model beside it, and the ADC2021 AE
#: on log(1 + pT) and on the HLT vector (``ae_ref_log``, ``ae_ref_hlt``) are float references.
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
    ("ebm_hlt", "float"),
    ("ae_ref_log", "float"),
    ("ae_ref_hlt", "float"),
)

#: Built by ``make run``: the default L1 target (the student chosen by the Pareto rule of ``l1ad pareto``;
#: distributed arithmetic: synthesized by Yosys, thresholds calibrated on validation background, RTL
#: simulated) and the autoencoder with the Latency strategy (DSP multipliers, ESTIMATE costs).
FIRMWARE_TARGETS = ("student_vu13p_da", "ae_compact_vu13p")

PROFILES = {
    "default": Profile(2_200_000, 100_000, 300_000, 12, 3, DEFAULT_MODELS, FIRMWARE_TARGETS, 10_000_000),
    # a few-minute smoke run of every step on small data (used by the end-to-end test)
    "quick": Profile(44_000, 5_000, 20_000, 2, 1, DEFAULT_MODELS, FIRMWARE_TARGETS, 200_000, 1e-2),
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


def default_l1_model(run: Path) -> Path:
    """The model directory in ``run`` that the default L1 target (``FIRMWARE_TARGETS[0]``) deploys."""
    from l1ad.hls.target import load_target

    spec, _ = load_target(FIRMWARE_TARGETS[0])
    return spec.resolve(spec.model, run)


def train_argv(model: str, quant: str, background: Path, out: Path, seed: int, prof: Profile) -> list[str]:
    """``l1ad train`` arguments for one model as the profile trains it (events, epochs per framework)."""
    from l1ad.models import registry

    argv = ["train", "--model", model, "--quantization", quant, "--background", str(background)]
    argv += ["--out", str(out), "--seed", str(seed)]
    if prof.train_events:
        argv += ["--max-events", str(prof.train_events)]
    framework = registry.kind(model).framework
    epochs = prof.torch_epochs if framework == "torch" else prof.keras_epochs
    if epochs and framework != "sklearn":
        argv += ["--epochs", str(epochs)]
    return argv


def run_step(argv: list[str], what: str, accept: tuple[int, ...] = (0,)) -> int:
    """Run one ``l1ad`` step; a status outside ``accept`` stops the pipeline."""
    log.info("==> %s: l1ad %s", what, " ".join(argv))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "l1ad.cli.main", *argv], check=False)
    if proc.returncode not in accept:
        raise RuntimeError(f"step '{what}' failed with exit status {proc.returncode}: l1ad {' '.join(argv)}")
    log.info("<== %s done in %.1f s", what, time.perf_counter() - t0)
    return proc.returncode


def _firmware(target: str, out: Path, data: Path, prof: Profile, seed: int) -> None:
    """Build, calibrate (targets without build-time thresholds), emulate and report one target."""
    from l1ad.hls.target import load_target, project_dir

    spec, path = load_target(target)
    # the default run builds into firmware_projects/<target>/; other run directories keep their own
    where = ["--run-dir", str(out)]
    project = project_dir(spec, path)
    if out.resolve() != DEFAULT_OUT.resolve():
        project = out / "firmware" / target
        where += ["--project", str(project)]
    run_step(["firmware", "build", target, *where], f"firmware build {target}")
    if spec.thresholds_from is None:
        calibrate = ["--n-events", str(prof.calibration_events), "--seed", str(seed), "--no-progress"]
        run_step(["firmware", "calibrate", target, *where, *calibrate], f"firmware calibrate {target}")
    emulate = ["--events", str(data / "background_test.h5")]
    if spec.strategy == "distributed_arithmetic":
        emulate.append("--rtl")
    run_step(["firmware", "emulate", target, *where, *emulate], f"firmware emulate {target}")
    if target == prof.firmware_targets[0]:  # the library CMS L1 software loads, of the default target
        lib = ["--out", str(project / "cmssw_emulator")]
        run_step(["firmware", "export-emulator", target, *where, *lib], f"firmware export-emulator {target}")
    # exit 1: a budget fails. That is a result of the run (named in the report), not a broken step
    report = ["--rtl-latency"] if spec.strategy == "distributed_arithmetic" else []
    t0 = time.time()
    if run_step(["firmware", "report", target, *where, *report], f"firmware report {target}", accept=(0, 1)):
        written = project / "report.json"
        if not written.is_file() or written.stat().st_mtime < t0 or json.loads(written.read_text())["pass"]:
            raise RuntimeError(f"step 'firmware report {target}' failed without writing a failing report")
        log.warning("firmware report: the %s target fails a budget (see its report.md)", target)


def main(args: argparse.Namespace) -> int:
    from l1ad.models import registry
    from l1ad.models.ebm.scores import CHOICE_FILE

    prof = PROFILES[args.profile]
    out = Path(args.out)
    data = out / "data"
    t_start = time.perf_counter()
    if args.force or not (data / "dataset.json").exists():
        n_bkg, n_sig = str(prof.n_background), str(prof.n_signal)
        generate = ["data", "generate", "--out", str(data), "--n-background", n_bkg, "--n-signal", n_sig]
        run_step([*generate, "--seed", str(args.seed)], "generate data")
    bkg_train = data / "background_train.h5"
    for model, quant in prof.models:
        model_dir = registry.model_dir(out, model, quant)
        if not args.force and (model_dir / registry.META_FILE).exists():
            log.info("skip training %s/%s: %s exists", model, quant, model_dir)
            continue
        argv = train_argv(model, quant, bkg_train, out, args.seed, prof)
        if model_dir.exists() and not args.force:
            argv.append("--resume")
        run_step(argv, f"train {model}/{quant}")
    for model, quant in prof.models:  # each energy model's score, on validation background
        model_dir = registry.model_dir(out, model, quant)
        if registry.kind(model).framework == "torch" and (
            args.force or not (model_dir / CHOICE_FILE).exists()
        ):
            choose = ["choose-score", str(model_dir), "--background", str(data / "background_val.h5")]
            run_step(
                [*choose, "--seed", str(args.seed), "--fpr", str(prof.choice_fpr)],
                f"choose the {model} score",
            )
    signals = [f"--signal={p.stem.removeprefix('signal_')}={p}" for p in sorted(data.glob("signal_*.h5"))]
    run_step(["evaluate", str(out), "--background", str(data / "background_test.h5"), *signals], "evaluate")
    if not args.skip_firmware:
        for target in prof.firmware_targets:
            _firmware(target, out, data, prof, args.seed)
    log.info("pipeline finished in %.1f min; results in %s", (time.perf_counter() - t_start) / 60, out)
    return 0
