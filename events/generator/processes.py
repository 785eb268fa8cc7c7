"""Standard Model background processes at sqrt(s) = 13 TeV (truth level, one batch at a time).

Each builder takes ``(rng, n)`` and returns a :class:`~.detector.Truth` of ``n`` events; the detector
model, pre-filter and slot layout are applied afterwards by :func:`~.detector.simulate`.

* **W -> l nu** (l = e, mu, tau with equal branching; taus decay, see :mod:`.decays`): W mass
  Breit-Wigner (80.379, 2.085); W pT from ``pT (1 + pT^2/15^2)^-2.2`` (mode ~8 GeV, ``pT^-3.4`` tail:
  Pythia's parton shower gives a harder W/Z pT than the old 8 GeV scale); rapidity plateau
  ``|y| < 3.2`` with Gaussian shoulders (0.8); charged lepton angle ``(1 +- cos)^2`` (V-A) in the W
  rest frame; a recoil jet balances the W pT. Gives the Jacobian peak of lepton pT near 40 GeV and
  the transverse-mass edge at 80 GeV.
* **Z/gamma* -> l l** (m > 50): 92% Breit-Wigner (91.1876, 2.4952) and 8% photon continuum
  ``1/m^2``, angular distribution ``1 + cos^2``, production as for the W.
* **ttbar**: top masses Breit-Wigner (172.5, 1.42); ``m_tt = m_t1 + m_t2 + Gamma(1.6, 90 GeV)`` (mean
  about 490 GeV); the pair system has a falling pT spectrum (p0 = 30 GeV); ``t -> W b`` isotropic in
  the top frame; each W -> e nu, mu nu, tau nu (10.8% each) or q q' (67.6%); b and light quarks
  become jets.
* **QCD multijet, lepton-enriched**: the hard scatter has ``pT_hat ~ pT^-4.5`` above 30 GeV with two
  back-to-back b jets, plus Poisson(2.2) (at most 4) extra radiated jets (``pT^-4.5`` above 10 GeV), the
  second jet balancing the transverse momentum of the rest. Prompt leptons are absent in QCD, so the
  pre-filter (lepton > 23 GeV) would reject nearly every event; the sample is therefore **enriched**
  (as the Pythia sample, which forces semileptonic B decays): one of the two leading jets always
  yields a lepton candidate,

  - 99.4%: a non-isolated e or mu (9/91: the L1 e/gamma isolation removes most b -> e) from a
    semileptonic b decay carrying a fraction ``z ~ Beta(2, 5)`` of the jet momentum, within
    ``dR ~ 0.05`` of the jet axis, with a neutrino carrying ``z * U(0.2, 0.7)``; the jet keeps the
    rest, and holds a cascade (b -> c -> mu) muon 8% of the time;
  - 0.6%: a fake e/gamma (pi0 -> gamma gamma rich jet) with 60-95% of the jet momentum;
  - the other b decays semileptonically too: its neutrino, and a muon half of the time.

  The QCD events are thus "QCD events that fire the single-lepton pre-filter", not inclusive QCD.
"""

from __future__ import annotations

import numpy as np

from ..schema import LEPTON_TRIGGER_PT
from .decays import MU, NU, QUARK, TAU, E, add_b_jet, add_fermion, add_jet_with_muon, add_recoil
from .detector import Truth
from .kinematics import (
    F32,
    breit_wigner,
    cos_v_minus_a,
    cos_vector,
    normal,
    power_law,
    rapidity,
    resonance,
    two_body,
    uniform,
)

M_W, GAMMA_W = 80.379, 2.085
M_Z, GAMMA_Z = 91.1876, 2.4952
M_TOP, GAMMA_TOP = 172.5, 1.42
M_B = 4.8
#: Truth-level lepton pre-selection, safely looser than the 23 GeV pre-filter after smearing.
PRESELECT_PT, PRESELECT_ETA = 0.75 * LEPTON_TRIGGER_PT, 3.2
V_PT0, V_POWER = 15.0, 2.2  # W/Z pT spectrum
V_PLATEAU, V_SHOULDER = 3.2, 0.8  # W/Z rapidity plateau and Gaussian shoulders

QCD_PT_MIN, QCD_INDEX, QCD_EXTRA_MEAN, QCD_EXTRA_MAX = 30.0, 4.5, 2.2, 4
QCD_FAKE_FRACTION = 0.006
QCD_LEPTON_Z, QCD_LEPTON_SPREAD = (2.0, 5.0), 0.05  # the heavy-flavour lepton's share of its b jet, dR
QCD_NU_RANGE = (0.2, 0.7)  # the neutrino of the heavy-flavour decay: this times the lepton share
QCD_MUON_FRACTION = 0.91  # of the heavy-flavour leptons: isolation at L1 e/gamma removes most b -> e
#: The other b of the pair decays semileptonically too (as the Pythia sample forces): a muon in the
#: recoiling jet half of the time (b -> e there fails the e/gamma isolation and is not kept).
QCD_SECOND_MUON, QCD_SECOND_Z = 0.46, (1.5, 4.0)
#: A second, cascade muon in the triggering b jet (b -> c -> mu; Pythia: 2.9% of events have 3 muons).
QCD_CASCADE_MUON = 0.08


def w_lnu(rng: np.random.Generator, n: int) -> Truth:
    """W -> l nu with l = e, mu, tau (1/3 each)."""
    truth = Truth(n)
    m = breit_wigner(rng, n, M_W, GAMMA_W, 50.0, 200.0)
    w = resonance(rng, m, V_PT0, V_POWER, plateau=V_PLATEAU, shoulder=V_SHOULDER)
    lep, nu = two_body(rng, w, m, 0.0, 0.0, cos_theta=cos_v_minus_a(rng, n))
    add_fermion(truth, rng, rng.integers(0, 3, n), lep)
    add_fermion(truth, rng, NU, nu)
    add_recoil(truth, rng, w)
    return truth


def z_ll(rng: np.random.Generator, n: int) -> Truth:
    """Z/gamma* -> l l with m_ll > 50 GeV, l = e, mu, tau (1/3 each)."""
    truth = Truth(n)
    m = np.where(
        uniform(rng, n) < 0.92,
        breit_wigner(rng, n, M_Z, GAMMA_Z, 50.0, 300.0),
        power_law(rng, n, 50.0, 2.0, 300.0),
    )
    z = resonance(rng, m, V_PT0, V_POWER, plateau=V_PLATEAU, shoulder=V_SHOULDER)
    l1, l2 = two_body(rng, z, m, 0.0, 0.0, cos_theta=cos_vector(rng, n))
    flavour = rng.integers(0, 3, n)
    add_fermion(truth, rng, flavour, l1)
    add_fermion(truth, rng, flavour, l2)
    add_recoil(truth, rng, z)
    return truth


def _w_decay_codes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Fermion codes of the two W daughters: (l, nu) with l = e/mu/tau 10.8% each, else (q, q')."""
    u = uniform(rng, n)
    lep = np.where(u < 0.108, E, np.where(u < 0.216, MU, np.where(u < 0.324, TAU, QUARK)))
    return lep, np.where(lep == QUARK, QUARK, NU)


def ttbar(rng: np.random.Generator, n: int) -> Truth:
    """t tbar -> (W b)(W b) with inclusive W decays."""
    truth = Truth(n)
    m_t1 = breit_wigner(rng, n, M_TOP, GAMMA_TOP, 160.0, 185.0)
    m_t2 = breit_wigner(rng, n, M_TOP, GAMMA_TOP, 160.0, 185.0)
    m_tt = m_t1 + m_t2 + rng.gamma(1.6, 90.0, n).astype(F32)
    system = resonance(rng, m_tt, 30.0, 2.0, plateau=0.8, shoulder=1.0)
    for top, m_top in zip(two_body(rng, system, m_tt, m_t1, m_t2), (m_t1, m_t2), strict=True):
        m_w = breit_wigner(rng, n, M_W, GAMMA_W, 60.0, 100.0)
        w, b = two_body(rng, top, m_top, m_w, M_B)
        add_b_jet(truth, rng, b)
        f1, f2 = two_body(rng, w, m_w, 0.0, 0.0)
        c1, c2 = _w_decay_codes(rng, n)
        add_fermion(truth, rng, c1, f1)
        add_fermion(truth, rng, c2, f2)
    add_recoil(truth, rng, system)
    return truth


def qcd_multijet(rng: np.random.Generator, n: int) -> Truth:
    """Lepton-enriched QCD multijet (see the module docstring).

    The lepton candidate is decided first and events whose truth lepton cannot pass the pre-filter
    (pT < 0.75 * 23 GeV or |eta| > 3.2, i.e. > 10 sigma away after smearing) are dropped before the rest
    is generated: this changes no distribution, it only saves time. The returned record holds the
    surviving events.
    """
    pt_hat = power_law(rng, n, QCD_PT_MIN, QCD_INDEX, 3000.0)
    y1 = rapidity(rng, n, 2.0, 1.0, QCD_PT_MIN)
    fake = uniform(rng, n) < QCD_FAKE_FRACTION
    z = rng.beta(*QCD_LEPTON_Z, n).astype(F32)
    lep_frac = np.where(fake, uniform(rng, n, 0.6, 0.95), z)
    lep_eta = y1 + np.where(fake, F32(0.02), F32(QCD_LEPTON_SPREAD)) * normal(rng, n)
    sel = np.flatnonzero((lep_frac * pt_hat > PRESELECT_PT) & (np.abs(lep_eta) < PRESELECT_ETA))
    pt_hat, y1, fake, z, lep_frac, lep_eta = (a[sel] for a in (pt_hat, y1, fake, z, lep_frac, lep_eta))
    n = len(sel)
    truth = Truth(n)

    # Hard scatter: jet 1 at pt_hat, extra radiation, jet 2 balancing the rest.
    phi1 = uniform(rng, n, -np.pi, np.pi)
    y2 = rapidity(rng, n, 2.0, 1.0, QCD_PT_MIN)
    sum_x, sum_y = pt_hat * np.cos(phi1), pt_hat * np.sin(phi1)
    n_extra = rng.poisson(QCD_EXTRA_MEAN, n)
    for i in range(QCD_EXTRA_MAX):
        pt = np.minimum(power_law(rng, n, 10.0, QCD_INDEX, 3000.0), 0.7 * pt_hat) * (n_extra > i)
        phi = uniform(rng, n, -np.pi, np.pi)
        truth.add_jet(pt, rapidity(rng, n, 2.0, 1.2, 10.0), phi)
        sum_x, sum_y = sum_x + pt * np.cos(phi), sum_y + pt * np.sin(phi)
    pt2, phi2 = np.hypot(sum_x, sum_y), np.arctan2(-sum_y, -sum_x)
    # the second b decays semileptonically too: its neutrino leaves the recoiling jet, and half the
    # time its lepton is a muon (an electron there stays in the jet: it fails the e/gamma isolation)
    nu2 = rng.beta(*QCD_SECOND_Z, n).astype(F32) * uniform(rng, n, 0.4, 1.0) * pt2
    truth.add_nu(nu2 * np.cos(phi2), nu2 * np.sin(phi2))
    add_jet_with_muon(truth, rng, pt2 - nu2, y2, phi2, QCD_SECOND_MUON, QCD_SECOND_Z, 0.1)

    # Enrichment: jet 1 gives a non-isolated lepton (HF decay, with a neutrino) or a fake e/gamma.
    nu_frac = np.where(fake, 0.0, np.clip(z * uniform(rng, n, *QCD_NU_RANGE), 0.0, np.maximum(0.9 - z, 0.0)))
    lep_phi = phi1 + np.where(fake, F32(0.02), F32(QCD_LEPTON_SPREAD)) * normal(rng, n)
    lep_pt = lep_frac * pt_hat
    is_mu = ~fake & (uniform(rng, n) < QCD_MUON_FRACTION)
    truth.add_e(np.where(is_mu, 0.0, lep_pt), lep_eta, lep_phi)
    truth.add_mu(np.where(is_mu, lep_pt, 0.0), lep_eta, lep_phi)
    nu_pt = nu_frac * pt_hat
    truth.add_nu(nu_pt * np.cos(phi1), nu_pt * np.sin(phi1))
    rest = np.maximum(1.0 - lep_frac - nu_frac, 0.0) * pt_hat  # with a cascade (b -> c -> mu) muon
    add_jet_with_muon(truth, rng, rest, y1, phi1, QCD_CASCADE_MUON, QCD_SECOND_Z, QCD_LEPTON_SPREAD)
    return truth
