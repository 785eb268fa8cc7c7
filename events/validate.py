"""Validation of L1-format particle arrays, with errors that name file, dataset, row and slot.

Every check is vectorized; :func:`find_problems` returns one boolean row mask per rule so callers
can report counts, raise on the first offending row, or drop/repair rows.

Rules (a row is an event):

``nonfinite``       NaN or inf anywhere
``negative_pt``     pT < 0
``phi_range``       phi outside [-pi, pi] (float32 rounding tolerated)
``eta_acceptance``  |eta| beyond the slot's acceptance (MET must have eta = 0)
``class_code``      class neither 0 (padding) nor the slot's class code
``padding``         a padded slot (class 0) with non-zero pT, eta or phi
``met_missing``     slot 0 is not a MET object (class 1)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from l1ad.events import schema

PHI_TOL = 1e-5
ETA_TOL = 1e-4

RULES = ("nonfinite", "negative_pt", "phi_range", "eta_acceptance", "class_code", "padding", "met_missing")
#: Rules that :func:`repair` can fix in place (the rest drop the row).
REPAIRABLE = ("phi_range", "padding")


class EventFileError(ValueError):
    """An invalid L1 event file or array; the message names file, dataset and row."""


@dataclass(frozen=True)
class Problem:
    rule: str
    row: int  # absolute row in the file
    slot: int
    message: str

    def describe(self, source: str, dataset: str | None = schema.DATASET_PARTICLES) -> str:
        """``dataset=None``: a columnar file (Parquet), named by the slot's columns instead."""
        slot_name = schema.slot_names()[self.slot]
        if dataset is None:
            cols = "/".join(schema.flat_feature_names()[3 * self.slot : 3 * self.slot + 3])
            return f"{source}: row {self.row} slot {self.slot} ({slot_name}, columns {cols}): {self.message}"
        return f"{source}: dataset '{dataset}' row {self.row} slot {self.slot} ({slot_name}): {self.message}"


def _slot_masks(p: np.ndarray) -> dict[str, np.ndarray]:
    """(N, 19) boolean masks of offending slots per rule."""
    pt, eta, phi, cls = (p[:, :, j] for j in range(4))
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(p).all(axis=2)
        padded = cls == schema.PADDING_CLASS
        eta_max = np.where(padded, np.inf, schema.SLOT_ETA_MAX[None, :] + ETA_TOL)
        met_col = np.zeros(p.shape[:2], dtype=bool)
        met_col[:, schema.MET.first_slot] = cls[:, schema.MET.first_slot] != schema.MET_CLASS
        return {
            "nonfinite": ~finite,
            "negative_pt": finite & (pt < 0),
            "phi_range": finite & (np.abs(phi) > math.pi + PHI_TOL),
            "eta_acceptance": finite & (np.abs(eta) > eta_max),
            "class_code": finite & ~padded & (cls != schema.SLOT_CLASS[None, :]),
            "padding": finite & padded & ((pt != 0) | (eta != 0) | (phi != 0)),
            "met_missing": finite & met_col,
        }


def check_shape(shape: tuple[int, ...], source: str, dataset: str = schema.DATASET_PARTICLES) -> None:
    expected = (schema.N_OBJECTS, schema.N_FEATURES)
    if len(shape) != 3 or tuple(shape[1:]) != expected:
        raise EventFileError(
            f"{source}: dataset '{dataset}' has shape {tuple(shape)}, expected (N, {expected[0]}, {expected[1]})"
        )


def find_problems(particles: np.ndarray) -> dict[str, np.ndarray]:
    """Per-rule (N,) boolean masks of offending rows."""
    return {rule: m.any(axis=1) for rule, m in _slot_masks(particles).items()}


def first_problems(particles: np.ndarray, row_offset: int = 0, limit: int = 5) -> list[Problem]:
    """The first ``limit`` problems (by row) with human-readable messages."""
    masks = _slot_masks(particles)
    found: list[Problem] = []
    for rule in RULES:
        rows, slots = np.nonzero(masks[rule])
        for r, s in zip(rows[:limit], slots[:limit], strict=True):
            pt, eta, phi, cls = (float(v) for v in particles[r, s])
            msg = {
                "nonfinite": f"non-finite value [pT, eta, phi, class] = {[pt, eta, phi, cls]}",
                "negative_pt": f"negative pT {pt}",
                "phi_range": f"phi {phi} outside [-pi, pi]",
                "eta_acceptance": f"eta {eta} outside the acceptance |eta| <= {schema.SLOT_ETA_MAX[s]}",
                "class_code": f"class {cls:g} in a slot of class {schema.SLOT_CLASS[s]}",
                "padding": f"padded slot (class 0) with non-zero pT/eta/phi {[pt, eta, phi]}",
                "met_missing": f"slot 0 must hold MET (class 1), found class {cls:g}",
            }[rule]
            found.append(Problem(rule, int(r) + row_offset, int(s), msg))
    found.sort(key=lambda p: (p.row, p.slot))
    return found[:limit]


def validate(
    particles: np.ndarray,
    source: str = "<array>",
    row_offset: int = 0,
    dataset: str | None = schema.DATASET_PARTICLES,
) -> None:
    """Raise :class:`EventFileError` naming the first offending row, with counts per rule
    (``dataset=None``: the source is columnar and the message names the slot's columns)."""
    check_shape(particles.shape, source)
    masks = find_problems(particles)
    bad = {rule: int(m.sum()) for rule, m in masks.items() if m.any()}
    if bad:
        first = first_problems(particles, row_offset, limit=1)[0]
        counts = ", ".join(f"{rule}: {n}" for rule, n in bad.items())
        raise EventFileError(
            f"{first.describe(source, dataset)} [invalid rows in this block by rule: {counts}; "
            "use `l1ad data validate --repair` or `--drop-invalid` to clean the file]"
        )


def repair(particles: np.ndarray) -> np.ndarray:
    """Fix repairable problems in a copy: wrap phi into [-pi, pi], zero padded slots."""
    p = particles.copy()
    phi = p[:, :, schema.PHI].astype(np.float64)
    wrapped = np.where(np.abs(phi) > math.pi + PHI_TOL, (phi + math.pi) % (2 * math.pi) - math.pi, phi)
    p[:, :, schema.PHI] = wrapped.astype(p.dtype)
    padded = p[:, :, schema.CLASS] == schema.PADDING_CLASS
    p[padded] = 0
    return p


def valid_rows(particles: np.ndarray) -> np.ndarray:
    """(N,) boolean mask of rows that pass every rule."""
    masks = find_problems(particles)
    return ~np.logical_or.reduce(list(masks.values()))
