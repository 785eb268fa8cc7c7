"""L1 detector model: resolutions, pileup, MET, acceptance, thresholds and the 19-slot layout.

Truth objects from a process generator are collected in a :class:`Truth` record (columns of
``pT, eta, phi`` per object type, ``pT = 0`` for an absent object, plus the summed neutrino momentum).
:func:`simulate` turns a batch of truth events into accepted L1 events:

1. **Leptons** are smeared first: e/gamma ``sigma/pT = 12%/sqrt(pT) (+) 1.5%``; muons
   ``sigma/pT = 1.5% (+) 0.03% * pT`` (about 2% at 40 GeV, 5% at 150 GeV); small eta/phi smearing.
   Prompt e/gamma are identified with efficiency ``EG_EFFICIENCY / (1 + (EG_ISO_PT_HALF / pT)^2)``
   (92% at high pT; a soft electron often fails the rho-corrected isolation against pileup) and
   fail when other leptons within dR 0.3 carry more than 30% of their pT (:func:`_lepton_isolated`);
   muons have ``MU_EFFICIENCY`` = 95% and no isolation (the L1 single-muon trigger has none).
2. **Lepton pre-filter** (``schema.LEPTON_TRIGGER_PT``): at least one e or mu in acceptance above
   23 GeV after smearing. Failing events are dropped *before* the expensive steps, which is what
   keeps the generator fast.
3. **Pileup and extra radiation**: ``Poisson(PILEUP_MEAN * Gamma(2, 1/2))`` (mean 3, at most 10) soft
   jets per event with ``pT ~ pT^-6`` above 14 GeV, ``eta ~ N(0, 2.2)`` within 4.7.
   **Non-prompt and fake leptons in jets**: each hard or pileup jet independently gives a muon from a
   heavy-flavour decay with probability ``JET_MUON_PROB`` (pT fraction z ~ Beta(1.2, 4); the jet keeps
   the rest: muons leave the calorimeter) and a hard e/gamma fake (a photon or pi0 carrying most of
   the jet; it stays part of the jet) with probability ``JET_EGAMMA_PROB * min(1, 20 GeV / pT)``.
   **Soft e/gamma from pileup**: ``Poisson(EG_PILEUP_MEAN)`` candidates per event, ``pT^-3.6`` above
   3 GeV, flat in eta (the Pythia emulation: ~0.17 per event whatever the hard process).
4. **Jets** (hard and pileup) are smeared with ``sigma/pT = N/pT (+) S/sqrt(pT) (+) C`` (N = 4 GeV
   pileup noise, S = 1.0, C = 7%: about 25% at 20 GeV, 12% at 100 GeV). Every prompt e/gamma is
   also a calorimeter deposit: it joins the nearest jet or is a jet of its own, and jet axes lean to
   tower centres (:mod:`.calorimeter`).
5. **MET** (calorimeter + muons, as L1 computes it): the true invisible transverse momentum (vector
   sum of the neutrinos), plus the mismeasurement of every calorimeter deposit and muon
   (``pT_true - pT_measured`` along its direction, including objects below threshold or outside the
   L1 acceptance), plus a soft-term noise ``N(0, 0.5 sqrt(sum ET))`` per component, where ``sum ET``
   is the scalar sum of visible truth pT plus the underlying event and pileup (Gamma(8, 190 GeV),
   mean 1.5 TeV: with 20 pileup events and MPI the Pythia emulation's MET resolution is ~20 GeV per
   component). Slot 0 is ``[MET, 0, phi_MET, 1]``.
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
from .calorimeter import calo_deposit, smear_em, tower_axis
from .kinematics import F32, PI32, TWO_PI_32, wrap_phi32
from .kinematics import normal_f32 as _normal
from .kinematics import smear as _smear

logger = logging.getLogger(__name__)


# Resolutions (relative pT, absolute eta/phi).
EG_STOCHASTIC, EG_CONSTANT, EG_ANGLE = 0.12, 0.015, 0.01
MU_CONSTANT, MU_SLOPE, MU_ANGLE = 0.015, 0.0003, 0.02
JET_NOISE, JET_STOCHASTIC, JET_CONSTANT, JET_ANGLE = 4.0, 1.0, 0.07, 0.04
MET_SOFT_TERM = 0.5  # sigma per MET component = MET_SOFT_TERM * sqrt(sum ET)
UE_SHAPE, UE_SCALE = 8.0, 190.0  # underlying-event + pileup sum ET ~ Gamma(8, 190 GeV), mean 1.5 TeV

# Non-prompt and fake leptons inside jets (hard and pileup): per jet, independently,
# a muon from a heavy-flavour decay (no L1 muon isolation: it is kept) and an e/gamma candidate (a photon
# or pi0 that carries most of a jet, so it passes the isolation). Each takes a fraction z of the jet pT.
JET_MUON_PROB, JET_MUON_Z = 0.01, (1.2, 4.0)  # z ~ Beta(a, b): soft, as in b/c -> mu decays
JET_EGAMMA_PROB, JET_EGAMMA_Z = 0.012, (2.0, 3.0)
#: e/gamma isolation (as the Pythia emulation): other leptons' pT within dR 0.3 below 30% of the pT.
ISO_DR, EG_ISO_MAX = 0.3, 0.3
# Soft e/gamma candidates from pileup (the Pythia emulation: ~0.17 per event whatever the hard process,
# half of them below 4 GeV, flat in eta).
EG_PILEUP_MEAN, EG_PILEUP_INDEX, EG_PILEUP_MAX = 0.165, 3.6, 3
JET_EGAMMA_PT0 = 20.0  # the e/gamma fake probability falls as PT0 / pT above PT0 (isolation)
JET_LEPTON_SPREAD = 0.05  # eta/phi spread around the jet axis

# Identification efficiency of prompt leptons (as the Pythia emulation's 95%, times the e/gamma
# shower-shape losses of prompt electrons).
EG_EFFICIENCY, MU_EFFICIENCY = 0.92, 0.95
#: A soft electron fails the rho-corrected isolation against pileup often: its efficiency is
#: ``EG_EFFICIENCY / (1 + (EG_ISO_PT_HALF / pT)^2)`` (the Pythia emulation, A -> 4l: ~40% of the
#: 3-10 GeV electrons survive against the 15-23 GeV ones).
EG_ISO_PT_HALF = 8.0

# Pileup soft jets.
PILEUP_MEAN, PILEUP_SHAPE, PILEUP_MAX = 3.0, 2.0, 10  # negative binomial: Poisson(mean * Gamma(k, 1/k))
PILEUP_PT_MIN, PILEUP_INDEX, PILEUP_ETA_MAX, PILEUP_ETA_WIDTH = 14.0, 6.0, 4.7, 2.2


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


def _stack(cols: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, ...]:
    """Columns of one object type as three float32 ``(n, k)`` arrays (pT, eta, phi)."""
    if not cols:
        z = np.zeros((n, 0), dtype=F32)
        return z, z, z
    return tuple(np.stack([c[i] for c in cols], axis=1, dtype=F32) for i in range(3))


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
    n_pu = rng.poisson(PILEUP_MEAN * rng.gamma(PILEUP_SHAPE, 1.0 / PILEUP_SHAPE, k))
    u = F32(1.0) - rng.random((k, PILEUP_MAX), dtype=F32)  # (0, 1]
    pt = F32(PILEUP_PT_MIN) * u ** F32(-1.0 / (PILEUP_INDEX - 1.0))
    pt *= np.arange(PILEUP_MAX) < n_pu[:, None]
    eta = np.clip(F32(PILEUP_ETA_WIDTH) * _normal(rng, (k, PILEUP_MAX)), -PILEUP_ETA_MAX, PILEUP_ETA_MAX)
    phi = TWO_PI_32 * rng.random((k, PILEUP_MAX), dtype=F32) - F32(np.pi)
    return pt, eta, phi


def _lepton_isolated(pt, eta, phi, others) -> np.ndarray:
    """The e/gamma isolation against other leptons: the summed truth pT of the other e and mu within
    ``ISO_DR`` of a candidate must stay below ``EG_ISO_MAX`` of its pT (leptons from one light
    resonance, as A -> Z* Z*, are often that close; the isolation against hadrons is in the
    efficiency). ``others[0]`` are the candidates' own truth columns, in order."""
    o_pt, o_eta, o_phi = (np.concatenate([o[i] for o in others], axis=1) for i in range(3))
    if pt.shape[1] == 0 or o_pt.shape[1] < 2:
        return np.ones(pt.shape, dtype=bool)
    dr2 = (eta[:, :, None] - o_eta[:, None, :]) ** 2 + wrap_phi32(phi[:, :, None] - o_phi[:, None, :]) ** 2
    near = dr2 < F32(ISO_DR**2)
    m = pt.shape[1]  # the first m truth columns are the candidates' own
    near[:, np.arange(m), np.arange(m)] = False
    return (near * o_pt[:, None, :]).sum(axis=2) < F32(EG_ISO_MAX) * pt


def _soft_egamma(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson(``EG_PILEUP_MEAN``) soft e/gamma per event, ``pT ~ pT^-EG_PILEUP_INDEX`` above 3 GeV,
    flat in ``|eta| < 3`` (reconstructed objects: no further smearing)."""
    n = np.minimum(rng.poisson(EG_PILEUP_MEAN, k), EG_PILEUP_MAX)
    u = F32(1.0) - rng.random((k, EG_PILEUP_MAX), dtype=F32)
    pt = (
        F32(EGAMMA.pt_min)
        * u ** F32(-1.0 / (EG_PILEUP_INDEX - 1.0))
        * (np.arange(EG_PILEUP_MAX) < n[:, None])
    )
    eta = F32(EGAMMA.eta_max) * (F32(2.0) * rng.random((k, EG_PILEUP_MAX), dtype=F32) - F32(1.0))
    phi = TWO_PI_32 * rng.random((k, EG_PILEUP_MAX), dtype=F32) - F32(np.pi)
    return pt.astype(F32), eta, phi


def simulate(truth: Truth, rng: np.random.Generator) -> np.ndarray:
    """Detector response, pre-filter and slot filling: ``(n_accepted, 19, 4)`` float32 L1 events."""
    n = truth.n
    e_true = _stack(truth.e, n)
    mu_true = _stack(truth.mu, n)
    e_pt, e_eta, e_phi = _smear_egamma(rng, *e_true)
    mu_pt, mu_eta, mu_phi = _smear_muon(rng, *mu_true)
    e_eff = F32(EG_EFFICIENCY) / (F32(1.0) + (F32(EG_ISO_PT_HALF) / np.maximum(e_pt, F32(1.0))) ** 2)
    e_ok = _accepted(EGAMMA, e_pt, e_eta) & (rng.random(e_pt.shape, dtype=F32) < e_eff)
    e_ok &= _lepton_isolated(e_pt, e_eta, e_phi, (e_true, mu_true))
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
        if name == "mu":  # muons leave the calorimeter; a photon or pi0 stays part of its jet
            j_pt_t = j_pt_t - o_pt_t
        extra[name] = ((o_pt_t, o_eta_t, o_phi_t), smear(rng, o_pt_t, o_eta_t, o_phi_t))
    j_pt, j_eta, j_phi = _smear_jet(rng, j_pt_t, j_eta_t, j_phi_t)
    hadronic = (j_pt_t, j_pt, j_phi_t)
    # L1 jets are clustered from all calorimeter deposits: a prompt electron or photon is also (part
    # of) a jet, measured with the calorimeter's electromagnetic resolution.
    em_pt, em_eta, em_phi = smear_em(rng, *e_true)
    em = (e_true[0], em_pt, e_true[2])
    j_pt, j_eta, j_phi, em_axis = calo_deposit((em_pt, em_eta, em_phi), (j_pt, j_eta, j_phi))
    j_eta, j_phi = tower_axis(rng, j_eta, j_phi, em_axis)
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
    for pt_t, pt_s, phi_t in (mu_true[0], mu_pt, mu_true[2]), hadronic, em:  # calorimeter e/gamma: once
        if pt_t.shape[1]:
            d = pt_t - pt_s
            mx += (d * np.cos(phi_t)).sum(axis=1)
            my += (d * np.sin(phi_t)).sum(axis=1)
            sum_et += pt_t.sum(axis=1)
    sigma = F32(MET_SOFT_TERM) * np.sqrt(sum_et)
    mx += sigma * _normal(rng, k)
    my += sigma * _normal(rng, k)

    # Soft e/gamma candidates from pileup photons and pi0s (part of the MET soft term, not of a jet).
    s_pt, s_eta, s_phi = _soft_egamma(rng, k)
    e_pt, e_eta, e_phi = (
        np.concatenate([a, b], axis=1) for a, b in ((e_pt, s_pt), (e_eta, s_eta), (e_phi, s_phi))
    )
    e_ok = np.concatenate([e_ok, s_pt > 0], axis=1)

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
