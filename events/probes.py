"""Signal-agnostic anomalies made from background: the probes a score is chosen on.

A trigger's score must be chosen without looking at the signals it will be judged on. These probes
derive anomalies from *validation background* alone, each by one generic way new physics shows up at
L1, declared here before any measurement:

==================  ==========================================================================
``extra_object``    one more e/gamma, muon or jet (type drawn uniformly): the leading object of
                    that type in another background event, put in pT order into its block (a
                    full block drops its softest object): an unusual object count
``harder``          every pT, MET included, scaled by 3: a much heavier hard scatter
``block_shuffle``   the leptons (e/gamma + muons), the jets and the MET each taken from a
                    different background event: realistic objects in unusual combinations
``met_kick``        an invisible particle: a transverse momentum of 100-300 GeV at a random angle
                    added to the MET vector
==================  ==========================================================================

The strengths were set once, on validation background alone: with a 1.5 pT scale, a 30-100 GeV
kick and soft extra objects no score of the energy model reached a TPR of 0.1 % at FPR 1e-4, so
the probes could not tell the scores apart.

Every probe returns valid ADC2021-layout events (class codes, pT order within each type, zero
padding) and keeps the lepton pre-filter (the lepton blocks stay together). Same seed, same events.
"""

from __future__ import annotations

import numpy as np

from l1ad.events import schema

PROBES = ("extra_object", "harder", "block_shuffle", "met_kick")
HARDER_FACTOR = 3.0
MET_KICK_GEV = (100.0, 300.0)


def _sort_block(particles: np.ndarray, kind: schema.ObjectType) -> None:
    """pT-order (descending) the slots of one type in place; padding (pT 0) goes last."""
    block = particles[:, kind.slots]
    order = np.argsort(-block[:, :, schema.PT], axis=1, kind="stable")
    particles[:, kind.slots] = np.take_along_axis(block, order[:, :, None], axis=1)


def _extra_object(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    kinds = (schema.EGAMMA, schema.MUON, schema.JET)
    choice = rng.integers(0, len(kinds), size=len(p))
    for i, kind in enumerate(kinds):
        rows = np.flatnonzero(choice == i)
        leading = p[:, kind.first_slot]
        donors = np.flatnonzero(leading[:, schema.CLASS] == kind.code)  # events with such an object
        if len(rows) == 0 or len(donors) == 0:
            continue
        objects = leading[donors[rng.integers(0, len(donors), size=len(rows))]]
        last = kind.first_slot + kind.n_slots - 1  # the softest slot: empty, or dropped when full
        p[rows, last] = objects
        sub = p[rows]
        _sort_block(sub, kind)
        p[rows] = sub
    return p


def _harder(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    p[:, :, schema.PT] *= HARDER_FACTOR
    return p


def _block_shuffle(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = len(p)
    out = p.copy()
    jets, met = rng.permutation(n), rng.permutation(n)
    out[:, schema.JET.slots] = p[jets][:, schema.JET.slots]
    out[:, schema.MET.slots] = p[met][:, schema.MET.slots]
    return out


def _met_kick(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = rng.uniform(*MET_KICK_GEV, size=len(p))
    angle = rng.uniform(-np.pi, np.pi, size=len(p))
    met = p[:, schema.MET.first_slot]
    px = met[:, schema.PT] * np.cos(met[:, schema.PHI]) + size * np.cos(angle)
    py = met[:, schema.PT] * np.sin(met[:, schema.PHI]) + size * np.sin(angle)
    met[:, schema.PT] = np.hypot(px, py)
    met[:, schema.PHI] = np.arctan2(py, px)
    met[:, schema.ETA] = 0.0
    met[:, schema.CLASS] = schema.MET_CLASS
    return p


_MAKERS = {
    "extra_object": _extra_object,
    "harder": _harder,
    "block_shuffle": _block_shuffle,
    "met_kick": _met_kick,
}


def make_probe(name: str, particles: np.ndarray, seed: int) -> np.ndarray:
    """The probe ``name`` made from ``particles`` ((N, 19, 4), left unchanged) with ``seed``."""
    if name not in _MAKERS:
        raise ValueError(f"unknown probe {name!r}; choose from {PROBES}")
    p = np.array(particles, dtype=np.float32, copy=True)
    if p.ndim != 3 or p.shape[1:] != (schema.N_OBJECTS, schema.N_FEATURES):
        raise ValueError(
            f"probe {name}: expected (N, {schema.N_OBJECTS}, {schema.N_FEATURES}) events, got {p.shape}"
        )
    rng = np.random.default_rng([seed, PROBES.index(name)])
    return _MAKERS[name](p, rng)


def make_probes(particles: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Every probe of :data:`PROBES`, each from the same background events."""
    return {name: make_probe(name, particles, seed) for name in PROBES}
