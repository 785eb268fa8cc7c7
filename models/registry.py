"""The model registry: the one place that knows run-directory names, model kinds, and how to load and
score any trained model.

A run directory holds one sub-directory per trained model, named :func:`model_dir_name`
(``<model>-<quantization>``; the IsolationForest baseline is plain ``iforest``), each with a
``meta.json`` sidecar naming ``model``, ``quantization`` and ``framework``:

=========================  ==========  ===========================  =====================================
model                      framework   quantizations                scored by
=========================  ==========  ===========================  =====================================
ae_ref, ae_compact, vae,   keras       float, hgq, qkeras           :mod:`l1ad.models.keras.score`, in a
student                                                             fresh process per model (HGQ2 and
                                                                    QKeras-style layers never share one)
ae_ref_log, ae_ref_hlt     keras       float                        the same (full-precision references)
ebm, ebm_hlt, score        torch       float                        :mod:`l1ad.models.ebm.scores`
iforest                    sklearn     float                        :mod:`l1ad.models.baselines.iforest`
=========================  ==========  ===========================  =====================================

Evaluation, the bit-width scan, the pipeline, the firmware build and (later) the service all find and
score models through this module; nothing else builds a model directory name or reads ``meta.json``
to decide how to load a model. Trainers import the naming from here; this module imports the scorers
lazily and never a trainer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.core.files import sha256_file
from l1ad.models.sidecar import META_FILE, read_meta

logger = logging.getLogger(__name__)

#: Model files of the Keras firmware models, in order of preference.
KERAS_MODEL_SUFFIXES = (".keras", ".h5")


@dataclass(frozen=True)
class ModelKind:
    """What the registry knows of one model name."""

    name: str
    framework: str  # keras | torch | sklearn
    quantizations: tuple[str, ...]
    firmware: bool  # has an hls4ml firmware (an L1 model)


KINDS: dict[str, ModelKind] = {
    k.name: k
    for k in (
        ModelKind("ae_ref", "keras", ("float", "hgq", "qkeras"), True),
        ModelKind("ae_compact", "keras", ("float", "hgq", "qkeras"), True),
        ModelKind("vae", "keras", ("float", "hgq", "qkeras"), True),
        ModelKind("student", "keras", ("float", "hgq", "qkeras"), True),
        ModelKind("ae_ref_log", "keras", ("float",), False),
        ModelKind("ae_ref_hlt", "keras", ("float",), False),
        ModelKind("ebm", "torch", ("float",), False),
        ModelKind("ebm_hlt", "torch", ("float",), False),
        ModelKind("score", "torch", ("float",), False),
        ModelKind("iforest", "sklearn", ("float",), False),
    )
}


def kind(model: str) -> ModelKind:
    if model not in KINDS:
        raise ValueError(f"unknown model {model!r}; choose one of {sorted(KINDS)}")
    return KINDS[model]


def check(model: str, quantization: str) -> ModelKind:
    """The kind of ``model`` after checking that it comes in ``quantization``."""
    k = kind(model)
    if quantization not in k.quantizations:
        extra = " (a full-precision model)" if k.quantizations == ("float",) else ""
        raise ValueError(
            f"--model {model}{extra} comes in quantization {', '.join(k.quantizations)}, not {quantization!r}"
        )
    return k


def model_dir_name(model: str, quantization: str) -> str:
    """The directory name of a trained model inside a run directory."""
    check(model, quantization)
    return model if KINDS[model].framework == "sklearn" else f"{model}-{quantization}"


def model_dir(run_dir: str | Path, model: str, quantization: str) -> Path:
    return Path(run_dir) / model_dir_name(model, quantization)


# --------------------------------------------------------------------------- discovery
@dataclass(frozen=True)
class TrainedModel:
    """One trained model directory of a run."""

    path: Path
    model: str
    quantization: str
    framework: str
    teacher: str | None = None  # students: the label of the model they distil

    @property
    def label(self) -> str:
        """``model/quantization`` (``iforest`` for the sklearn baseline): the name in every table."""
        return f"{self.model}/{self.quantization}" if self.framework != "sklearn" else self.model

    @property
    def meta(self) -> dict[str, Any]:
        return read_meta(self.path)


def open_model(path: str | Path) -> TrainedModel:
    """The :class:`TrainedModel` of one model directory."""
    path = Path(path)
    meta = read_meta(path)
    teacher = (meta.get("teacher") or {}).get("label")
    return TrainedModel(path, meta["model"], meta["quantization"], meta["framework"], teacher)


def discover(run_dir: str | Path) -> list[TrainedModel]:
    """Every model directory (with a ``meta.json``) directly under ``run_dir``, sorted by label."""
    found = [open_model(p.parent) for p in sorted(Path(run_dir).glob(f"*/{META_FILE}"))]
    return sorted(found, key=lambda m: m.label)


def find(run_dir: str | Path, name: str) -> TrainedModel:
    """A model of ``run_dir`` by label (``ae_compact/hgq``) or directory name (``ae_compact-hgq``)."""
    models = discover(run_dir)
    for m in models:
        if name in (m.label, m.path.name):
            return m
    known = ", ".join(m.label for m in models) or "none"
    raise FileNotFoundError(f"{run_dir}: no model {name!r} (trained: {known})")


# --------------------------------------------------------------------------- scoring
def score(model: TrainedModel | str | Path, particles: np.ndarray) -> dict[str, np.ndarray]:
    """Scores of one trained model: ``{label: (N,) float64}`` (the energy models give several:
    the primary score under the label, the others as ``label:score_name``)."""
    if not isinstance(model, TrainedModel):
        model = open_model(model)
    if model.framework == "keras":
        from l1ad.models.keras.score import score_in_subprocess

        return {model.label: np.asarray(score_in_subprocess(model.path, particles), dtype=np.float64)}
    loaded = load(model)  # torch, sklearn: in this process, with LoadedModel's label definitions
    try:
        return loaded.score(particles)
    finally:
        loaded.close()


class LoadedModel:
    """A trained model loaded once, scoring many batches with exactly :func:`score`'s definitions.

    Float models score in this process; a quantized Keras model scores in a worker process of its
    own (HGQ2 and QKeras-style layers never share a process). :attr:`score_labels` are the labels
    :meth:`score` returns (the primary one first), as in :func:`score` and the evaluation tables.
    """

    def __init__(self, trained: TrainedModel) -> None:
        self.trained = trained
        self.path = trained.path
        self.label = trained.label
        self.meta = read_meta(trained.path)
        self.hash = model_hash(trained.path)
        self._close = None
        if trained.framework == "torch":
            from l1ad.models.ebm.scores import SCORE_NAMES, load_model

            self._ebm = load_model(trained.path)
            self.score_labels = tuple(self._ebm_label(n, SCORE_NAMES[0]) for n in self._ebm.score_names)
        elif trained.framework == "keras":
            from l1ad.models.keras.score import IsolatedKerasScorer, KerasScorer

            scorer = (
                KerasScorer(trained.path)
                if trained.quantization == "float"
                else IsolatedKerasScorer(trained.path)
            )
            self._keras = scorer
            self._close = getattr(scorer, "close", None)
            self.score_labels = (self.label,)
        elif trained.framework == "sklearn":
            from l1ad.models.baselines.iforest import MODEL_FILE, IsolationForestBaseline

            self._forest = IsolationForestBaseline.load(trained.path / MODEL_FILE)
            self.score_labels = (self.label,)
        else:
            raise ValueError(
                f"{trained.path}: a plain {trained.framework} model has no l1ad score (firmware flow only)"
            )

    def _ebm_label(self, name: str, primary: str) -> str:
        return self.label if name == primary else f"{self.label}:{name}"

    def score(self, particles: np.ndarray, labels: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """``{label: (N,) float64}`` for ``labels`` (default: all of :attr:`score_labels`)."""
        labels = self.score_labels if labels is None else tuple(labels)
        unknown = set(labels) - set(self.score_labels)
        if unknown:
            raise ValueError(f"{self.label} has no score {sorted(unknown)}; it has {list(self.score_labels)}")
        if self.trained.framework == "torch":
            from l1ad.models.ebm.scores import SCORE_NAMES
            from l1ad.models.ebm.scores import score as ebm_score

            by_label = {self._ebm_label(n, SCORE_NAMES[0]): n for n in self._ebm.score_names}
            raw = ebm_score(self._ebm, particles, tuple(by_label[lab] for lab in labels))
            return {lab: np.asarray(raw[by_label[lab]], np.float64) for lab in labels}
        if self.trained.framework == "keras":
            return {self.label: np.asarray(self._keras(particles), dtype=np.float64)}
        return {self.label: np.asarray(self._forest.score(particles), dtype=np.float64)}

    def close(self) -> None:
        if self._close is not None:
            self._close()


def load(model: TrainedModel | str | Path) -> LoadedModel:
    """Load a trained model once for many :meth:`LoadedModel.score` calls (the service uses this)."""
    return LoadedModel(model if isinstance(model, TrainedModel) else open_model(model))


def primary_score(model: TrainedModel | str | Path, particles: np.ndarray) -> np.ndarray:
    """The model's own (first) score, (N,) float64."""
    return next(iter(score(model, particles).values()))


# --------------------------------------------------------------------------- firmware models
def firmware_model_file(path: str | Path) -> Path:
    """The Keras model file a firmware project is built from: ``model.keras`` of an l1ad model
    directory (first of :data:`KERAS_MODEL_SUFFIXES`), any ``*.keras``/``*.h5`` in a plain directory,
    or the path itself if it is a file."""
    p = Path(path)
    if p.is_file():
        return p
    if not p.is_dir():
        raise FileNotFoundError(f"model directory {p} does not exist")
    preferred = [p / f"model{s}" for s in KERAS_MODEL_SUFFIXES]
    candidates = [q for q in preferred if q.is_file()] or sorted(
        q for s in KERAS_MODEL_SUFFIXES for q in p.glob(f"*{s}")
    )
    if not candidates:
        raise FileNotFoundError(f"{p}: no Keras model file (*.keras, *.h5)")
    return candidates[0]


def firmware_model_meta(path: str | Path) -> dict[str, Any]:
    """``meta.json`` of a firmware model directory, ``{}`` for a plain model file or directory."""
    p = Path(path)
    return read_meta(p) if p.is_dir() and (p / META_FILE).is_file() else {}


def firmware_model(path: str | Path) -> tuple[Any, str | None]:
    """``(keras model, post-processing note)``: the model whose output the firmware computes.

    * an l1ad Keras model directory (``meta.json`` framework ``keras``): its deployed model
      (:func:`l1ad.models.keras.score.keras_model_for_firmware`, which knows each architecture);
    * a plain HGQ2 Keras model file, or a directory without ``meta.json`` or with framework ``hgq2``:
      the model file, loaded with the HGQ2 layers registered;
    * any other framework (``torch``, ``sklearn``): ValueError, there is no hls4ml firmware for it.
    """
    p = Path(path)
    meta = firmware_model_meta(p)
    if meta and meta["framework"] != "hgq2":
        if meta["framework"] != "keras":
            raise ValueError(
                f"{p}/{META_FILE}: {meta['model']} ({meta['framework']}) has no hls4ml firmware (Keras L1 models only)"
            )
        if not kind(meta["model"]).firmware:  # kind(): an unknown model is an error, never a fallback
            raise ValueError(
                f"{p}/{META_FILE}: {meta['model']} has no hls4ml firmware (Keras L1 models only)"
            )
        from l1ad.models.keras.score import keras_model_for_firmware

        fm = keras_model_for_firmware(p)
        return fm.model, fm.postprocessing
    import hgq  # noqa: F401  (registers the HGQ2 layers for deserialization)
    import keras

    return keras.models.load_model(firmware_model_file(p), compile=False), None


def model_hash(path: str | Path) -> str:
    """sha256 of the file a model is loaded from (``model.keras``, ``model.pt`` or ``model.joblib``)."""
    p = Path(path)
    meta = firmware_model_meta(p)
    if meta.get("framework") == "torch":
        from l1ad.models.ebm.scores import MODEL_FILE as TORCH_FILE

        return sha256_file(p / TORCH_FILE)
    if meta.get("framework") == "sklearn":
        from l1ad.models.baselines.iforest import MODEL_FILE as SKLEARN_FILE

        return sha256_file(p / SKLEARN_FILE)
    return sha256_file(firmware_model_file(p))
