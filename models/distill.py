"""The student's teacher: the one definition of what the CICADA-style L1 student regresses.

Teacher model
    The first of :data:`TEACHERS` trained in the run directory: the energy model (``ebm-float``),
    else the float reference autoencoder (``ae_ref-float``); or a model directory given explicitly.

Target (:func:`teacher_target`)
    * energy model (``framework == "torch"``): its ``energy`` score, E(x, sigma_min). An energy is
      already a negative log-density, so it is regressed on its own scale, standardized with a robust
      location and scale over the student's training events::

          target = (E - median(E)) / (IQR(E) / 1.349)           transform "identity"

      (1.349 IQR is one standard deviation of a Gaussian; the median and IQR ignore the tail that
      a trigger keeps, so the tail does not set the scale.)
    * any other teacher (a positive, heavy-tailed autoencoder error)::

          target = log(max(score, 0) + 1e-6)                     transform "log" (CICADA's choice)

      :func:`l1ad.models.keras.train.targets` applies the ``log`` (its floor is 1e-6 too).

The student's ``meta.json["teacher"]`` records the teacher's directory and label, the target and the
standardization constants, so evaluation compares the student with the right model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.models import registry
from l1ad.models.sidecar import read_meta, write_meta

logger = logging.getLogger(__name__)

#: Teachers of the student, in order of preference: the energy model once trained, else the float AE.
TEACHERS = (("ebm", "float"), ("ae_ref", "float"))
#: Positive teacher scores get this added before the log.
LOG_EPSILON = 1e-6
#: IQR of a unit Gaussian: IQR / 1.349 is a robust standard deviation.
GAUSS_IQR = 1.349


def find_teacher(run_dir: str | Path, explicit: str | Path | None = None) -> Path:
    """The teacher's model directory: ``explicit`` if given, else the first of :data:`TEACHERS` in ``run_dir``."""
    if explicit:
        path = Path(explicit)
        read_meta(path)  # a clear error if it is not a model directory
        return path
    for model, quant in TEACHERS:
        path = registry.model_dir(run_dir, model, quant)
        if (path / registry.META_FILE).is_file():
            return path
    names = ", ".join(registry.model_dir_name(m, q) for m, q in TEACHERS)
    raise FileNotFoundError(
        f"no teacher for the student in {run_dir}: train one of {names} first, or pass --teacher"
    )


def standardize(energy: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
    """``(E - median) / (IQR / 1.349)`` and ``{"median", "scale"}`` (the energy model's target)."""
    energy = np.asarray(energy, dtype=np.float64)
    q25, median, q75 = np.percentile(energy, [25, 50, 75])
    scale = max((q75 - q25) / GAUSS_IQR, 1e-12)
    return (energy - median) / scale, {"median": float(median), "scale": float(scale)}


def teacher_target(teacher: str | Path, particles: np.ndarray) -> tuple[np.ndarray, str, dict[str, float]]:
    """``(values, transform, constants)``: the student's regression input for each event (module docstring).

    ``transform`` is what :func:`l1ad.models.keras.train.targets` still applies (``identity`` or ``log``).
    """
    model = registry.open_model(teacher)
    if model.framework == "torch":
        from l1ad.models.ebm.scores import score as ebm_score

        values, constants = standardize(ebm_score(model.path, particles)["energy"])
        return values, "identity", constants
    s = registry.primary_score(model, particles)
    return np.maximum(s, 0.0) + LOG_EPSILON, "log", {}


def describe_target(transform: str) -> str:
    return "standardized teacher score" if transform == "identity" else "log(teacher score)"


def record_teacher(
    student_dir: str | Path, teacher: str | Path, transform: str, constants: dict[str, Any]
) -> None:
    """Name the teacher and its target in the student's ``meta.json`` (evaluation compares the two)."""
    meta = read_meta(student_dir)
    t = registry.open_model(teacher)
    meta["teacher"] = {
        "model_dir": str(teacher),
        "label": t.label,
        "target": describe_target(transform),
        **constants,
    }
    write_meta(student_dir, meta)
