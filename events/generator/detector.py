"""L1 detector model: resolutions, pileup, MET, acceptance, thresholds and the 19-slot layout.

Truth objects from a process generator are collected in a :class:`Truth` record (columns of
``pT, eta, phi`` per object type, ``pT = 0`` for an absent object, plus the summed neutrino momentum).
:func:`simulate` turns a batch of truth events into accepted L1 events:

1. **Leptons** are smeared first: e/gamma ``sigma/pT = 12%/sqrt(pT) (+) 1.5%``; muons
   ``sigma/pT = 1.5% (+) 0.03% * pT`` (about 2% at 40 GeV, 5% at 150 GeV); small eta/phi smearing.
   Prompt leptons are identified with efficiency ``EG_EFFICIENCY`` = 88% (e/gamma: the Pythia
   emulation's 95% times its isolation and H/E losses) and ``MU_EFFICIENCY`` = 95%.
2. **Lepton pre-filter** (``schema.LEPTON_TRIGGER_PT``): at least one e or mu in acceptance above
   23 GeV after smearing. Failing events are dropped *before* the expensive steps, which is what
   keeps the generator fast.
3. **Pileup and extra radiation**: Poisson(``PILEUP_MEAN`` = 4.5, at most 10) soft jets per event with
   ``pT ~ pT^-6`` above 14 GeV, flat in ``|eta| < 4.7``; about 1.7 per event end up above the 15 GeV
   jet threshold after smearing (tuned to the jet multiplicity and HT of the Pythia reference with 20
   pileup events, ``tests/data/pythia_reference``; softer deposits are part of the MET soft term).
   **Non-prompt and fake leptons in jets**: each hard or pileup jet independently gives a muon from a
   heavy-flavour decay with probability ``JET_MUON_PROB`` (pT fraction z ~ Beta(1.2, 4)) and an
   e/gamma candidate (a photon or pi0 carrying most of the jet, so it is isolated) with probability
   ``JET_EGAMMA_PROB * min(1, 20 GeV / pT)`` (z ~ Beta(2, 3)); the jet keeps the rest. Tuned to the
   lepton multiplicities of ``tests/data/pythia_reference`` (they do not fire the pre-filter).
4. **Jets** (hard and pileup) are smeared with ``sigma/pT = N/pT (+) S/sqrt(pT) (+) C`` (N = 4 GeV
   pileup noise, S = 1.0, C = 7%: about 25% at 20 GeV, 12% at 100 GeV).
5. **MET** (our choice, documented): the true invisible transverse momentum (vector sum of the
   neutrinos), plus the mismeasurement of every visible object (``pT_true - pT_smeared`` along its
   direction, including objects below threshold or outside the L1 acceptance since calorimeter towers
   see them), plus a soft-term noise ``N(0, 0.5 sqrt(sum ET))`` per component (not raised to the Pythia
   reference MET: that would smear the W and H+- transverse-mass edges beyond their tests), where ``sum ET`` is the
   scalar sum of visible truth pT plus an underlying-event term (Gamma distributed, mean 60 GeV).
   Slot 0 is ``[MET, 0, phi_MET, 1]``.
6. **Slots**: per type, objects in acceptance and above threshold (``schema.OBJECT_TYPES``, compared
   after rounding to float32, the stored precision) are sorted by decreasing pT; the leading 4 e/gamma,
   4 muons and 10 jets are kept; empty slots are exactly zero.
"""

from __future__ import annotations

import logging

import numpy as np

from ..schema import (
    CLASS,
    EGAMMA,
    ETA,
    JET,
    LEPTON_TRIGGER_PT,
    MET,
    MUON,
    N_FEATURES,
    N_OBJECTS,
    PHI,
    PT,
    ObjectType,
)

logger = logging.getLogger(__name__)

#: float32 just below pi: stored phi must satisfy |phi| <= pi after rounding to float32.
PI32 = np.nextafter(np.float32(np.pi), np.float32(0.0))

# Resolutions (relative pT, absolute eta/phi).
EG_STOCHASTIC, EG_CONSTANT, EG_ANGLE = 0.12, 0.015, 0.01
MU_CONSTANT, MU_SLOPE, MU_ANGLE = 0.015, 0.0003, 0.02
JET_NOISE, JET_STOCHASTIC, JET_CONSTANT, JET_ANGLE = 4.0, 1.0, 0.07, 0.04
MET_SOFT_TERM = 0.5  # sigma per MET component = MET_SOFT_TERM * sqrt(sum ET)
UE_SHAPE, UE_SCALE = 4.0, 15.0  # underlying-event sum ET ~ Gamma(4, 15 GeV), mean 60 GeV

# Non-prompt and fake leptons inside jets (hard and pileup): per jet, independently,
# a muon from a heavy-flavour decay (no L1 muon isolation: it is kept) and an e/gamma candidate (a photon
# or pi0 that carries most of a jet, so it passes the isolation). Each takes a fraction z of the jet pT.
JET_MUON_PROB, JET_MUON_Z = 0.03, (1.2, 4.0)  # z ~ Beta(a, b): soft, as in b/c -> mu decays
JET_EGAMMA_PROB, JET_EGAMMA_Z = 0.08, (2.0, 3.0)
JET_EGAMMA_PT0 = 20.0  # the e/gamma fake probability falls as PT0 / pT above PT0 (isolation)
JET_LEPTON_SPREAD = 0.05  # eta/phi spread around the jet axis

# Identification efficiency of prompt leptons (as the Pythia emulation's 95%, times the e/gamma
# isolation and shower-shape losses of prompt electrons).
EG_EFFICIENCY, MU_EFFICIENCY = 0.88, 0.95

# Pileup soft jets.
PILEUP_MEAN, PILEUP_MAX = 4.5, 10
PILEUP_PT_MIN, PILEUP_INDEX, PILEUP_ETA_MAX = 14.0, 6.0, 4.7


class Truth:
    """Truth-level objects of a batch of ``n`` events, collected column by column."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.e: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.mu: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.jet: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.nu_px = np.zeros(n, dtype=np.float32)
        self.nu_py = np.zeros(n, dtype=np.float32)

    def add_e(self, pt: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> None:
        self.e.append((pt, eta, phi))

    def add_mu(self, pt: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> None:
        self.mu.append((pt, eta, phi))

    def add_jet(self, pt: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> None:
        self.jet.append((pt, eta, phi))

    def add_nu(self, px: np.ndarray, py: np.ndarray) -> None:
        """Add invisible transverse momentum (neutrinos)."""
        self.nu_px += px
        self.nu_py += py


F32 = np.float32
_TWO_PI_32 = F32(2.0 * np.pi)


def _stack(cols: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, ...]:
    """Columns of one object type as three float32 ``(n, k)`` arrays (pT, eta, phi)."""
    if not cols:
        z = np.zeros((n, 0), dtype=F32)
        return z, z, z
    return tuple(np.stack([c[i] for c in cols], axis=1, dtype=F32) for i in range(3))


def wrap_phi32(phi: np.ndarray) -> np.ndarray:
    """float32 azimuth wrapped into ``[-pi, pi]`` and clipped so that ``|phi| <= pi`` survives rounding."""
    phi = phi - _TWO_PI_32 * np.rint(phi / _TWO_PI_32)
    return np.clip(phi, -PI32, PI32, out=phi)


def _normal(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.standard_normal(shape, dtype=F32)


def _smear(rng: np.random.Generator, pt, eta, phi, rel_sigma, angle: float):
    pt_s = pt * (F32(1.0) + rel_sigma * _normal(rng, pt.shape))
    np.maximum(pt_s, F32(0.0), out=pt_s)
    eta_s = eta + F32(angle) * _normal(rng, eta.shape)
    phi_s = wrap_phi32(phi + F32(angle) * _normal(rng, phi.shape))
    return pt_s, eta_s, phi_s


def _smear_egamma(rng: np.random.Generator, pt, eta, phi):
    sig = np.sqrt(F32(EG_STOCHASTIC**2) / np.maximum(pt, F32(1.0)) + F32(EG_CONSTANT**2))
    return _smear(rng, pt, eta, phi, sig, EG_ANGLE)


def _smear_muon(rng: np.random.Generator, pt, eta, phi):
    sig = np.sqrt(F32(MU_CONSTANT**2) + (F32(MU_SLOPE) * pt) ** 2)
    return _smear(rng, pt, eta, phi, sig, MU_ANGLE)


def _smear_jet(rng: np.random.Generator, pt, eta, phi):
    inv = F32(1.0) / np.maximum(pt, F32(1.0))
    sig = np.sqrt(F32(JET_NOISE**2) * inv * inv + F32(JET_STOCHASTIC**2) * inv + F32(JET_CONSTANT**2))
    return _smear(rng, pt, eta, phi, sig, JET_ANGLE)


def _accepted(t: ObjectType, pt32: np.ndarray, eta32: np.ndarray) -> np.ndarray:
    return (pt32 > t.pt_min) & (np.abs(eta32) < t.eta_max)


def _fill(out: np.ndarray, t: ObjectType, pt32, eta32, phi32, ok) -> None:
    """Write the leading ``t.n_slots`` accepted objects of type ``t`` (pT-descending) into ``out``."""
    n, k = pt32.shape
    if k == 0:
        return
    ptv = np.where(ok, pt32, np.float32(0.0))
    if k == 1:  # nothing to sort
        order = np.zeros((n, 1), dtype=np.intp)
        pt_o = ptv
    else:
        order = np.argsort(-ptv, axis=1)[:, : t.n_slots]
        pt_o = np.take_along_axis(ptv, order, axis=1)
    have = pt_o > 0
    m = order.shape[1]
    sl = slice(t.first_slot, t.first_slot + m)
    out[:, sl, PT] = pt_o
    out[:, sl, ETA] = np.where(have, np.take_along_axis(eta32, order, axis=1), np.float32(0.0))
    out[:, sl, PHI] = np.where(have, np.take_along_axis(phi32, order, axis=1), np.float32(0.0))
    out[:, sl, CLASS] = have * np.float32(t.code)


def _pileup(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson(``PILEUP_MEAN``) soft jets per event in ``PILEUP_MAX`` float32 columns (pT = 0: absent)."""
    n_pu = rng.poisson(PILEUP_MEAN, k)
    u = F32(1.0) - rng.random((k, PILEUP_MAX), dtype=F32)  # (0, 1]
    pt = F32(PILEUP_PT_MIN) * u ** F32(-1.0 / (PILEUP_INDEX - 1.0))
    pt *= np.arange(PILEUP_MAX) < n_pu[:, None]
    eta = F32(PILEUP_ETA_MAX) * (F32(2.0) * rng.random((k, PILEUP_MAX), dtype=F32) - F32(1.0))
    phi = _TWO_PI_32 * rng.random((k, PILEUP_MAX), dtype=F32) - F32(np.pi)
    return pt, eta, phi


def simulate(truth: Truth, rng: np.random.Generator) -> np.ndarray:
    """Detector response, pre-filter and slot filling: ``(n_accepted, 19, 4)`` float32 L1 events."""
    n = truth.n
    e_true = _stack(truth.e, n)
    mu_true = _stack(truth.mu, n)
    e_pt, e_eta, e_phi = _smear_egamma(rng, *e_true)
    mu_pt, mu_eta, mu_phi = _smear_muon(rng, *mu_true)
    e_ok = _accepted(EGAMMA, e_pt, e_eta) & (rng.random(e_pt.shape, dtype=F32) < F32(EG_EFFICIENCY))
    mu_ok = _accepted(MUON, mu_pt, mu_eta) & (rng.random(mu_pt.shape, dtype=F32) < F32(MU_EFFICIENCY))
    trig = (e_ok & (e_pt > LEPTON_TRIGGER_PT)).any(axis=1) | (mu_ok & (mu_pt > LEPTON_TRIGGER_PT)).any(axis=1)
    keep = np.flatnonzero(trig)
    k = len(keep)
    if k == 0:
        return np.zeros((0, N_OBJECTS, N_FEATURES), dtype=F32)

    # Everything below acts on the k pre-filtered events only.
    pu = _pileup(rng, k)
    j_pt_t, j_eta_t, j_phi_t = (
        np.concatenate([np.stack([c[i][keep] for c in truth.jet], axis=1, dtype=F32), pu[i]], axis=1)
        if truth.jet
        else pu[i]
        for i in range(3)
    )
    e_pt, e_eta, e_phi, e_ok = e_pt[keep], e_eta[keep], e_phi[keep], e_ok[keep]
    mu_pt, mu_eta, mu_phi, mu_ok = mu_pt[keep], mu_eta[keep], mu_phi[keep], mu_ok[keep]
    e_true = tuple(c[keep] for c in e_true)
    mu_true = tuple(c[keep] for c in mu_true)

    # Non-prompt muons and fake e/gamma from the jets: the jet keeps the rest of its pT.
    extra = {}
    for name, prob, (za, zb), smear in (
        ("mu", JET_MUON_PROB, JET_MUON_Z, _smear_muon),
        ("e", JET_EGAMMA_PROB, JET_EGAMMA_Z, _smear_egamma),
    ):
        if name == "e":  # an isolated photon/pi0 that carries most of the jet gets rarer with jet pT
            # (the jet pT here is what is left after the muon took its share, hence inside the loop)
            prob = F32(prob) * np.minimum(F32(1.0), F32(JET_EGAMMA_PT0) / np.maximum(j_pt_t, F32(1.0)))
        hit = (rng.random(j_pt_t.shape, dtype=F32) < prob) & (j_pt_t > 0)
        z = rng.beta(za, zb, j_pt_t.shape).astype(F32) * hit
        o_pt_t = z * j_pt_t
        o_eta_t = j_eta_t + F32(JET_LEPTON_SPREAD) * _normal(rng, j_pt_t.shape)
        o_phi_t = wrap_phi32(j_phi_t + F32(JET_LEPTON_SPREAD) * _normal(rng, j_pt_t.shape))
        j_pt_t = j_pt_t - o_pt_t
        extra[name] = ((o_pt_t, o_eta_t, o_phi_t), smear(rng, o_pt_t, o_eta_t, o_phi_t))
    j_pt, j_eta, j_phi = _smear_jet(rng, j_pt_t, j_eta_t, j_phi_t)
    (xe_true, (xe_pt, xe_eta, xe_phi)), (xm_true, (xm_pt, xm_eta, xm_phi)) = extra["e"], extra["mu"]
    e_true = tuple(np.concatenate([a, b], axis=1) for a, b in zip(e_true, xe_true, strict=True))
    mu_true = tuple(np.concatenate([a, b], axis=1) for a, b in zip(mu_true, xm_true, strict=True))
    e_pt, e_eta, e_phi = (
        np.concatenate([a, b], axis=1) for a, b in ((e_pt, xe_pt), (e_eta, xe_eta), (e_phi, xe_phi))
    )
    mu_pt, mu_eta, mu_phi = (
        np.concatenate([a, b], axis=1) for a, b in ((mu_pt, xm_pt), (mu_eta, xm_eta), (mu_phi, xm_phi))
    )
    e_ok = np.concatenate([e_ok, _accepted(EGAMMA, xe_pt, xe_eta)], axis=1)
    mu_ok = np.concatenate([mu_ok, _accepted(MUON, xm_pt, xm_eta)], axis=1)

    # MET: neutrinos + mismeasurement of all visible objects + soft-term noise.
    mx = truth.nu_px[keep]
    my = truth.nu_py[keep]
    sum_et = rng.gamma(UE_SHAPE, UE_SCALE, k).astype(F32)
    for pt_t, pt_s, phi_t in (
        (e_true[0], e_pt, e_true[2]),
        (mu_true[0], mu_pt, mu_true[2]),
        (j_pt_t, j_pt, j_phi_t),
    ):
        if pt_t.shape[1]:
            d = pt_t - pt_s
            mx += (d * np.cos(phi_t)).sum(axis=1)
            my += (d * np.sin(phi_t)).sum(axis=1)
            sum_et += pt_t.sum(axis=1)
    sigma = F32(MET_SOFT_TERM) * np.sqrt(sum_et)
    mx += sigma * _normal(rng, k)
    my += sigma * _normal(rng, k)

    out = np.zeros((k, N_OBJECTS, N_FEATURES), dtype=F32)
    out[:, MET.first_slot, PT] = np.hypot(mx, my)
    out[:, MET.first_slot, PHI] = np.clip(np.arctan2(my, mx), -PI32, PI32)
    out[:, MET.first_slot, CLASS] = MET.code
    _fill(out, EGAMMA, e_pt, e_eta, e_phi, e_ok)
    _fill(out, MUON, mu_pt, mu_eta, mu_phi, mu_ok)
    _fill(out, JET, j_pt, j_eta, j_phi, _accepted(JET, j_pt, j_eta))
    return out


# Public names of the building blocks shared with the Pythia L1 emulation (l1ad.events.pythia.detector).
smear_egamma = _smear_egamma
smear_muon = _smear_muon
smear_jet = _smear_jet
accepted = _accepted
fill_slots = _fill
