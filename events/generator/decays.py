"""Final-state fermions into truth objects, with tau decays.

A decay product is described per event by a fermion code (:data:`E`, :data:`MU`, :data:`TAU`,
:data:`QUARK`, :data:`NU`) and its lab four-momentum. :func:`add_fermion` routes it into the
:class:`~.detector.Truth` record: electrons to e/gamma, muons to muons, quarks to jets (no
fragmentation model: the jet carries the quark momentum; the detector smears it), neutrinos to the
invisible momentum.

Taus decay in the collinear approximation (the tau is ultra-relativistic): the visible product carries
a fraction ``x`` of the tau momentum along the tau direction and the neutrinos the rest.

* leptonic (PDG: e 17.82%, mu 17.39%): ``x`` from the unpolarised massless-lepton spectrum
  ``f(x) = (5 - 9x^2 + 4x^3) / 3`` (mean 0.35: the lepton is soft);
* hadronic (64.79%): a visible tau-jet with ``x`` uniform on ``[x_min, 1]``, ``x_min = m_vis^2/m_tau^2``
  for the pi (17% of hadronic decays, x_min = 0), rho (40%, 0.19) and a1 / multi-prong (43%, 0.35).
"""

from __future__ import annotations

import numpy as np

from .detector import Truth
from .kinematics import F32, P4, normal, tabulated_sampler, uniform

E, MU, TAU, QUARK, NU = 0, 1, 2, 3, 4

M_TAU = 1.777
BR_TAU_E, BR_TAU_MU = 0.1782, 0.1739
#: hadronic tau: (cumulative fraction, x_min) for pi, rho, a1/multi-prong.
TAU_HAD_MODES = ((0.17, 0.0), (0.57, 0.19), (1.0, 0.35))
#: A hadronic tau whose neutral pions carry most of its visible energy is an isolated e/gamma at L1
#: (the Pythia emulation's clusters see pi0 -> gamma gamma): this fraction of tau-jets becomes one.
TAU_HAD_EGAMMA = 0.12

_x_grid = np.linspace(0.0, 1.0, 513)
_tau_leptonic_x = tabulated_sampler(_x_grid, (5.0 - 9.0 * _x_grid**2 + 4.0 * _x_grid**3) / 3.0)


def tau_decay(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-tau decay mode (:data:`E`, :data:`MU` or :data:`QUARK` for hadronic) and visible fraction x."""
    u = uniform(rng, n)
    mode = np.where(u < BR_TAU_E, E, np.where(u < BR_TAU_E + BR_TAU_MU, MU, QUARK))
    x_lep = _tau_leptonic_x(rng, n)
    v = uniform(rng, n)
    x_min = np.where(v < TAU_HAD_MODES[0][0], F32(TAU_HAD_MODES[0][1]), F32(TAU_HAD_MODES[1][1]))
    x_min = np.where(v >= TAU_HAD_MODES[1][0], F32(TAU_HAD_MODES[2][1]), x_min)
    x_had = x_min + (1.0 - x_min) * uniform(rng, n)
    return mode, np.where(mode == QUARK, x_had, x_lep)


def add_fermion(truth: Truth, rng: np.random.Generator, code: np.ndarray | int, p: P4) -> None:
    """Add one final-state fermion per event (``code`` per event or a scalar) to ``truth``."""
    n = truth.n
    if np.isscalar(code) and code == NU:
        truth.add_nu(p.px, p.py)
        return
    code = np.broadcast_to(np.asarray(code), (n,))
    pt, eta, phi = p.pt, p.eta, p.phi
    is_tau = code == TAU
    if is_tau.any():
        mode, x = tau_decay(rng, n)
        mode = np.where(is_tau, mode, code)
        frac = np.where(is_tau, x, 1.0)
        vis = frac * pt
        inv = np.where(is_tau, 1.0 - frac, 0.0)
        truth.add_nu(inv * p.px, inv * p.py)
        pi0 = is_tau & (mode == QUARK) & (uniform(rng, n) < TAU_HAD_EGAMMA)
        mode = np.where(pi0, E, mode)
    else:
        mode, vis = code, pt
    for kind, add in ((E, truth.add_e), (MU, truth.add_mu), (QUARK, truth.add_jet)):
        sel = mode == kind
        if sel.any():
            add(np.where(sel, vis, 0.0), eta, phi)
    is_nu = code == NU
    if is_nu.any():
        truth.add_nu(np.where(is_nu, p.px, 0.0), np.where(is_nu, p.py, 0.0))


#: Rapidity of the recoil (ISR) jet: a plateau convolved with a Gaussian (matched to the Pythia jets).
RECOIL_PLATEAU, RECOIL_SHOULDER = 2.0, 1.3


def add_recoil(truth: Truth, rng: np.random.Generator, system: P4) -> None:
    """Initial-state radiation: one jet balancing the transverse momentum of the produced system."""
    n = truth.n
    y = RECOIL_PLATEAU * (2.0 * uniform(rng, n) - 1.0) + RECOIL_SHOULDER * normal(rng, n)
    truth.add_jet(system.pt, y, system.phi + np.pi)


def add_isr_jets(truth: Truth, rng: np.random.Generator, mean: float, pt_min: float = 12.0) -> None:
    """Extra initial-state jets of gluon-initiated production: Poisson(``mean``) (at most 3) jets with
    ``pT ~ pT^-4`` above ``pt_min``, the recoil jet's rapidity and a uniform azimuth."""
    n = truth.n
    k = rng.poisson(mean, n)
    for i in range(3):
        u = 1.0 - uniform(rng, n)
        pt = pt_min * u ** (-1.0 / 3.0) * (k > i)
        y = RECOIL_PLATEAU * (2.0 * uniform(rng, n) - 1.0) + RECOIL_SHOULDER * normal(rng, n)
        truth.add_jet(np.minimum(pt, 1000.0), y, uniform(rng, n, -np.pi, np.pi))


#: b -> mu X (direct and via c, PDG ~ 20%, of which ~12% leave an L1 muon above 3 GeV: tuned to the
#: Pythia ttbar and LQ muon multiplicities): the non-prompt muon of a b-jet; it takes a soft fraction
#: z ~ Beta(1.5, 4) of the b momentum and the jet keeps the rest (L1 muons have no isolation).
B_TO_MU, B_MU_Z = 0.12, (1.5, 4.0)


def add_jet_with_muon(
    truth: Truth,
    rng: np.random.Generator,
    pt,
    eta,
    phi,
    prob: float,
    z_beta: tuple[float, float],
    spread: float,
) -> None:
    """A jet that holds a non-prompt muon with probability ``prob``: the muon takes a fraction
    z ~ Beta(*z_beta) of the pT, ``spread`` away from the jet axis in eta and phi; the jet keeps the rest."""
    n = truth.n
    z = (uniform(rng, n) < prob) * rng.beta(*z_beta, n).astype(F32)
    truth.add_mu(z * pt, eta + F32(spread) * normal(rng, n), phi + F32(spread) * normal(rng, n))
    truth.add_jet((1.0 - z) * pt, eta, phi)


def add_b_jet(truth: Truth, rng: np.random.Generator, p: P4) -> None:
    """A b-quark jet, with its semileptonic muon (:data:`B_TO_MU`) split off along the jet axis."""
    add_jet_with_muon(truth, rng, p.pt, p.eta, p.phi, B_TO_MU, B_MU_Z, 0.05)
