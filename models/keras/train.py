"""Training of the Keras L1 models: data, deterministic split, checkpoints, early stopping, sidecar.

:func:`train_model` reads an ADC2021-layout HDF5 file, encodes it with the hardware encoding
(:func:`l1ad.events.encoding.encode`), trains with early stopping on the validation loss (best
weights restored), checkpoints every epoch into ``<model dir>/checkpoints`` (``resume=True``
continues from the last one) and writes ``model.keras`` + ``meta.json`` (see :mod:`l1ad.models.keras.storage`).

Targets: ``ae_ref``/``vae`` the masked MSE target (mask = ``schema.input_mask``: object valid bits);
``ae_compact`` dummy zeros (its loss is its own score output); ``student`` ``log(teacher score)``.
Training is deterministic for a seed (``keras.utils.set_random_seed`` + TF op determinism, no XLA).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from l1ad.core.files import atomic_write_text
from l1ad.core.versions import KERAS_TOOLS, tool_versions
from l1ad.events import encoding
from l1ad.events.io import data_hash, read_events
from l1ad.events.split import validation_split
from l1ad.models import registry
from l1ad.models.keras import storage as keras_io
from l1ad.models.keras.configs import FLOAT_ONLY, check_name, load_config, representation_of
from l1ad.models.keras.model_inputs import STANDARDIZER_FILE, ModelInputs, fit_standardizer, model_inputs
from l1ad.models.sidecar import write_meta

logger = logging.getLogger(__name__)

#: Teacher scores are clipped below at this value before the log (student target).
TEACHER_SCORE_FLOOR = 1e-6


TEACHER_TRANSFORMS = ("log", "identity")


def targets(
    name: str,
    inputs: ModelInputs,
    teacher: np.ndarray | None,
    teacher_transform: str = "log",
) -> np.ndarray:
    """Training target ``y`` of model ``name`` for its inputs (:func:`~l1ad.models.keras.model_inputs.model_inputs`).

    Autoencoders: the masked-MSE target of the live inputs with the inputs' error weights. Student:
    ``log(teacher score)`` for positive, heavy-tailed teacher scores (autoencoder errors, as CICADA
    does), or the teacher values as given (``identity``) for scores already on a log scale, such as an
    energy (a negative log-density), which the caller standardizes.
    """
    from l1ad.models.keras.layers import masked_mse_target

    x = inputs.x
    if name in ("ae_ref", "vae", *FLOAT_ONLY):
        return masked_mse_target(x, inputs.mask, inputs.weights)
    if name == "ae_compact":
        return np.zeros((len(x), 1), dtype=np.float32)
    if teacher is None or len(teacher) != len(x):
        raise ValueError(
            f"student training needs teacher_scores aligned with the events ({len(x)}), got "
            f"{None if teacher is None else len(teacher)}"
        )
    if teacher_transform not in TEACHER_TRANSFORMS:
        raise ValueError(f"teacher_transform must be one of {TEACHER_TRANSFORMS}, got {teacher_transform!r}")
    t = np.asarray(teacher, dtype=np.float64)
    if teacher_transform == "log":
        t = np.log(np.maximum(t, TEACHER_SCORE_FLOOR))
    return t.astype(np.float32)[:, None]


class EpochLogger(keras.callbacks.Callback):
    """Progress through ``logging``: one INFO line per epoch with its metrics and duration."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total = total
        self._t0 = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        text = " ".join(f"{k}={v:.5g}" for k, v in sorted((logs or {}).items()))
        logger.info("epoch %d/%d (%.1f s): %s", epoch + 1, self.total, time.perf_counter() - self._t0, text)


class Checkpointer(keras.callbacks.Callback):
    """Each epoch: save the full training state; track the best ``val_loss``; stop after ``patience``."""

    def __init__(self, ckpt_dir: Path, patience: int, state: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.dir = ckpt_dir
        self.patience = patience
        self.state = state or {"epoch": 0, "best": None, "best_epoch": None, "wait": 0, "history": []}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        val = float(logs.get("val_loss", np.nan))
        st = self.state
        st["history"].append({k: float(v) for k, v in logs.items()})
        if np.isfinite(val) and (st["best"] is None or val < st["best"]):
            st.update(best=val, best_epoch=epoch + 1, wait=0)
            keras_io.save_weights(self.model, self.dir / "best.weights.h5")
        else:
            st["wait"] += 1
        st["epoch"] = epoch + 1
        keras_io.save_keras(self.model, self.dir / "last.keras")
        atomic_write_text(self.dir / "state.json", json.dumps(st, indent=1))
        if st["wait"] >= self.patience:
            logger.info(
                "early stopping at epoch %d (best %.5g at epoch %s)", epoch + 1, st["best"], st["best_epoch"]
            )
            self.model.stop_training = True


def train_model(
    name: str,
    quantization: str,
    background: str | Path,
    out: str | Path,
    config: str | Path | dict | None = None,
    seed: int = 0,
    epochs: int | None = None,
    resume: bool = False,
    teacher_scores: np.ndarray | None = None,
    max_events: int | None = None,
    validation: str | Path | None = None,
    validation_teacher_scores: np.ndarray | None = None,
    teacher_transform: str = "log",
) -> Path:
    """Train model ``name`` in style ``quantization`` on ``background``; return the model directory.

    ``teacher_scores`` (student only) are aligned with the (first ``max_events``) events of
    ``background``; with a separate ``validation`` file pass ``validation_teacher_scores`` too.
    """
    import tensorflow as tf

    from l1ad.models.keras.architectures import build, from_train
    from l1ad.quantization.styles import get_style

    check_name(name, quantization)
    cfg = load_config(name, config)
    n_epochs = cfg.epochs if epochs is None else int(epochs)
    model_dir = registry.model_dir(out, name, quantization)
    ckpt_dir = model_dir / keras_io.CHECKPOINT_DIR
    model_dir.mkdir(parents=True, exist_ok=True)

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()

    particles = read_events(background, stop=max_events)
    tr, va = validation_split(len(particles), cfg.validation_fraction) if validation is None else (None, None)
    # float references standardize their representation on the training events; L1 models: hardware inputs
    standardizer = fit_standardizer(representation_of(cfg), particles if tr is None else particles[tr])
    inputs = model_inputs(particles, standardizer)
    x_all = inputs.x
    y_all = targets(name, inputs, teacher_scores, teacher_transform)
    if validation is None:
        x_tr, y_tr, x_va, y_va = x_all[tr], y_all[tr], x_all[va], y_all[va]
        sha = data_hash(particles)
    else:
        vp = read_events(validation)
        x_tr, y_tr = x_all, y_all
        v_inputs = model_inputs(vp, standardizer)
        x_va = v_inputs.x
        y_va = targets(name, v_inputs, validation_teacher_scores, teacher_transform)
        sha = data_hash(particles)
    logger.info("%s-%s: %d train / %d validation events", name, quantization, len(x_tr), len(x_va))

    style = get_style(quantization, cfg)
    state = None
    if resume and (ckpt_dir / "last.keras").is_file() and (ckpt_dir / "state.json").is_file():
        state = json.loads((ckpt_dir / "state.json").read_text())
        train = keras_io.load_keras(ckpt_dir / "last.keras", quantization, compile=True)
        built = from_train(name, train, style)
        built.train.run_eagerly = cfg.run_eagerly
        logger.info("resuming from %s after epoch %d", ckpt_dir, state["epoch"])
    else:
        built = build(name, quantization, cfg, seed)
        built.train.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=built.loss, jit_compile=False,
                            run_eagerly=cfg.run_eagerly)  # fmt: skip
    initial_epoch = state["epoch"] if state else 0

    checkpointer = Checkpointer(ckpt_dir, cfg.patience, state)
    callbacks = [*style.callbacks(x_tr), checkpointer, EpochLogger(n_epochs)]  # ranges widen before the save
    t0 = time.perf_counter()
    if initial_epoch < n_epochs and (state is None or state["wait"] < cfg.patience):
        built.train.fit(
            x_tr, y_tr, validation_data=(x_va, y_va), epochs=n_epochs, initial_epoch=initial_epoch,
            batch_size=cfg.batch_size, shuffle=True, callbacks=callbacks, verbose=0,
        )  # fmt: skip
    train_seconds = time.perf_counter() - t0
    st = checkpointer.state
    if (ckpt_dir / "best.weights.h5").is_file():
        built.train.load_weights(ckpt_dir / "best.weights.h5")

    ranges = style.calibrate_ranges(built.train, x_all)  # background only: the training file's events
    ebops = style.ebops(built.train, x_tr[: min(len(x_tr), 8192)])
    if standardizer is not None:
        standardizer.save(model_dir / STANDARDIZER_FILE)
    keras_io.save_keras(built.deployed, model_dir / keras_io.MODEL_FILE)
    if built.aux is not None:
        keras_io.save_keras(built.aux, model_dir / keras_io.AUX_FILE)
    epochs_run = st["epoch"] - initial_epoch
    meta = {
        "model": name,
        "quantization": quantization,
        "framework": "keras",
        "config": cfg.to_dict(),
        "seed": seed,
        "data_sha256": sha,
        "background": str(background),
        "validation": None if validation is None else str(validation),
        "n_train": int(len(x_tr)),
        "n_val": int(len(x_va)),
        "teacher_transform": teacher_transform if name == "student" else None,
        "metrics": {
            "best_val_loss": st["best"],
            "best_epoch": st["best_epoch"],
            "final_val_loss": st["history"][-1].get("val_loss") if st["history"] else None,
            "epochs_total": st["epoch"],
            "epochs_run": epochs_run,
            "train_seconds": round(train_seconds, 3),
            "seconds_per_epoch": round(train_seconds / epochs_run, 3) if epochs_run else None,
            "ebops": ebops,
            "n_params": int(built.deployed.count_params()),
        },
        "range_calibration": ranges,
        "input_types": [t.hls() for t in encoding.INPUT_TYPES] if quantization != "float" else None,
        "input_encoding": encoding.describe()
        if standardizer is None
        else {"representation": standardizer.representation},
        "output_type": _output_type(name, quantization),
        "postprocessing": _postprocessing(name),
        "versions": tool_versions(KERAS_TOOLS),
    }
    write_meta(model_dir, meta)
    logger.info("saved %s (best val loss %s, %s EBOPs)", model_dir, st["best"], ebops)
    return model_dir


def _output_type(name: str, quantization: str) -> str | None:
    from l1ad.models.keras.layers import PT_ERROR_WEIGHTS
    from l1ad.quantization.score_path import RECON_TYPE, score_sum_type

    if quantization == "float":
        return None
    n_pt = int(np.count_nonzero(PT_ERROR_WEIGHTS))
    return {"ae_ref": RECON_TYPE.hls(), "ae_compact": score_sum_type(n_pt).hls()}.get(name)


def _postprocessing(name: str) -> str:
    from l1ad.models.keras.architectures import POSTPROCESSING

    return POSTPROCESSING[name]
