"""The four ADC2021 benchmark signals (truth level, one batch at a time).

All resonances are produced with a falling pT spectrum ``pT (1 + pT^2/p0^2)^-2`` (p0 = 20 GeV for A,
25 GeV for h0 and the LQ pair; A and h0, made in gluon fusion, also get Poisson(0.6) extra ISR jets;
H+- is made as the W, :data:`~.processes.V_PT0`), the rapidity plateau of
:func:`~.kinematics.resonance` and an initial-state recoil jet. Widths are narrow (0.5-1 GeV).

* **Ato4l**: a neutral scalar A (m = 50 GeV) -> Z* Z* -> 4 l (l = e or mu per pair). The two virtual
  masses are drawn uniformly on the triangle ``m1, m2 >= 4 GeV, m1 + m2 < m_A``; each Z* decays with
  ``1 + cos^2``. The four-lepton mass peaks at 50 GeV, but the leptons are soft (~12 GeV on average),
  so many fail the 3 GeV L1 thresholds or acceptance and the event must still pass the 23 GeV pre-filter.
* **leptoquark**: a pair of scalar leptoquarks (m = 80 GeV; strong pair production dominates at this
  mass, as in Pythia's ``LeptoQuark:all``), each -> b tau, isotropic; the b gives a jet and the tau
  decays (:mod:`.decays`). The visible (b-jet + tau product) mass of one LQ lies below 80 GeV.
* **hToTauTau**: a neutral scalar h0 (m = 60 GeV) -> tau tau; visible di-tau mass below 60 GeV.
* **hChToTauNu**: a charged scalar h+- (m = 60 GeV) -> tau nu; the transverse mass of the visible tau
  product and MET has its edge at 60 GeV.

Only leptonic tau decays (35%) with a lepton above 23 GeV pass the pre-filter, so the tau signals have
a low acceptance; the generator oversamples accordingly.
"""

from __future__ import annotations

import numpy as np

from .decays import M_TAU, MU, NU, TAU, E, add_b_jet, add_fermion, add_isr_jets, add_recoil
from .detector import Truth
from .kinematics import F32, breit_wigner, cos_vector, resonance, two_body, uniform
from .processes import M_B, V_PLATEAU, V_POWER, V_PT0, V_SHOULDER

M_A, M_LQ, M_H0, M_HCH = 50.0, 80.0, 60.0, 60.0
M_ZSTAR_MIN = 4.0
#: pT scale of gluon-fusion production (A, h0, the LQ pair): harder initial-state radiation than the
#: quark-initiated W/Z (matched to the Pythia samples' HT and leading-lepton pT).
GG_PT0 = 25.0
#: Extra ISR jets per gluon-fusion event (A, h0; Poisson mean; Pythia's jet multiplicities).
GG_EXTRA_JETS = 0.6
#: LQ pair mass above threshold ~ Gamma(shape, scale) GeV.
LQ_PAIR_EXCESS = (1.6, 45.0)


def a_to_4l(rng: np.random.Generator, n: int) -> Truth:
    """A (50 GeV) -> Z* Z* -> 4 leptons."""
    truth = Truth(n)
    m = breit_wigner(rng, n, M_A, 0.5, 45.0, 55.0)
    a = resonance(rng, m, 20.0, 2.0)
    u, v = uniform(rng, n), uniform(rng, n)
    flip = u + v > 1.0
    u, v = np.where(flip, 1.0 - u, u), np.where(flip, 1.0 - v, v)
    span = m - 2.0 * M_ZSTAR_MIN - 0.5
    m1, m2 = M_ZSTAR_MIN + span * u, M_ZSTAR_MIN + span * v
    for z, mz in zip(two_body(rng, a, m, m1, m2), (m1, m2), strict=True):
        l1, l2 = two_body(rng, z, mz, 0.0, 0.0, cos_theta=cos_vector(rng, n))
        flavour = np.where(uniform(rng, n) < 0.5, E, MU)
        add_fermion(truth, rng, flavour, l1)
        add_fermion(truth, rng, flavour, l2)
    add_recoil(truth, rng, a)
    add_isr_jets(truth, rng, GG_EXTRA_JETS)
    return truth


def leptoquark(rng: np.random.Generator, n: int) -> Truth:
    """Leptoquark pair (80 GeV each, gg/qq -> LQ LQbar: at this mass strong pair production dominates,
    as in the Pythia sample's ``LeptoQuark:all``), each LQ -> b tau."""
    truth = Truth(n)
    m1 = breit_wigner(rng, n, M_LQ, 1.0, 70.0, 90.0)
    m2 = breit_wigner(rng, n, M_LQ, 1.0, 70.0, 90.0)
    m_pair = m1 + m2 + rng.gamma(*LQ_PAIR_EXCESS, n).astype(F32)
    system = resonance(rng, m_pair, GG_PT0, 2.0, plateau=1.5, shoulder=1.0)
    for lq, m in zip(two_body(rng, system, m_pair, m1, m2), (m1, m2), strict=True):
        b, tau = two_body(rng, lq, m, M_B, M_TAU)
        add_b_jet(truth, rng, b)
        add_fermion(truth, rng, TAU, tau)
    add_recoil(truth, rng, system)
    return truth


def h_to_tautau(rng: np.random.Generator, n: int) -> Truth:
    """Neutral scalar (60 GeV) -> tau tau."""
    truth = Truth(n)
    m = breit_wigner(rng, n, M_H0, 0.5, 55.0, 65.0)
    h = resonance(rng, m, GG_PT0, 2.0)
    for tau in two_body(rng, h, m, M_TAU, M_TAU):
        add_fermion(truth, rng, TAU, tau)
    add_recoil(truth, rng, h)
    add_isr_jets(truth, rng, GG_EXTRA_JETS)
    return truth


def hch_to_taunu(rng: np.random.Generator, n: int) -> Truth:
    """Charged scalar (60 GeV) -> tau nu."""
    truth = Truth(n)
    m = breit_wigner(rng, n, M_HCH, 0.5, 55.0, 65.0)
    h = resonance(rng, m, V_PT0, V_POWER, plateau=V_PLATEAU, shoulder=V_SHOULDER)  # q qbar' -> H+-, as the W
    tau, nu = two_body(rng, h, m, M_TAU, 0.0)
    add_fermion(truth, rng, TAU, tau)
    add_fermion(truth, rng, NU, nu)
    add_recoil(truth, rng, h)
    return truth
