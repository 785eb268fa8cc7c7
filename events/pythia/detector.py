"""L1 detector emulation for Pythia events: pileup overlay, e/gamma, muons, calo towers, jets, MET.

Input per event: the final-state particles of the hard event as an ``(n, 5)`` array
``[pdg_id, px, py, pz, E]`` (:data:`PID` ... :data:`E`), and a pool of minimum-bias events (same
layout) for the pileup overlay. Output: one ``(19, 4)`` L1 event in the ADC2021 layout or ``None`` when
the event fails the lepton pre-filter. The steps (constants below):

1. **Truth pre-filter** (:func:`truth_prefilter`): skip events with no e, mu or photon above
   ``TRUTH_PT_MIN`` = 16 GeV in ``|eta| < 3.2``; after resolution such events essentially never pass the
   23 GeV lepton pre-filter (a multi-photon cluster summing above 23 GeV with no photon above 16 GeV
   is neglected).
2. **Pileup overlay**: ``Poisson(PILEUP_MEAN = 20)`` events drawn at random from the pool are added,
   each rotated by a random azimuth and mirrored along the beam with probability 1/2
   (:func:`pileup_draws`).
3. **Muons**: final-state muons in ``|eta| < 2.1`` found with efficiency 95%, smeared with the fast
   generator's muon resolution (:func:`l1ad.events.generator.detector.smear_muon`). No isolation: the
   L1 single-muon trigger has none (``MU_ISO_MAX`` = inf, documented choice).
4. **e/gamma**: clusters of electrons and photons within ``dR < 0.1`` of a seed above 2 GeV (so
   pi0 -> gamma gamma in jets make fakes), efficiency 95%, the fast generator's e/gamma resolution, and
   relative isolation ``(sum pT in dR < 0.3 outside the cluster - rho * A_eff) / pT < EG_ISO_MAX = 0.3``
   (effective area ``A_eff`` = half the cone: a full subtraction lets soft pileup photons pass)
   and a shower-shape proxy: hadronic pT inside the cluster cone below ``EG_H_OVER_E`` = 25% of its pT.
5. **Calorimeter towers**: every visible particle except muons in ``|eta| < 5`` is binned into
   0.087 x 0.087 towers; each tower ET gets a stochastic response ``50% / sqrt(ET)``; towers below
   1 GeV are dropped. ``rho`` is the median ET density of 80 coarse regions in ``|eta| < 4`` (of the
   towers for jets; of the particles for the isolation sums).
6. **Jets**: anti-kT R = 0.4 (fastjet) on the towers; ``pT - rho * pi R^2`` (pileup subtraction) and a
   5% calibration constant term.
7. **MET**: minus the vector sum of the towers and the reconstructed muons, plus electronic noise
   ``N(0, MET_NOISE = 3 GeV)`` per component.
8. **L1 thresholds and pre-filter**: the acceptance/thresholds of :mod:`l1ad.events.schema` and at least
   one e/gamma or muon above ``LEPTON_TRIGGER_PT`` (slot filling shared with the fast generator).
"""

from __future__ import annotations

import logging

import numpy as np

from ..generator.detector import PI32, fill_slots, smear_egamma, smear_muon, wrap_phi32
from ..schema import CLASS, EGAMMA, JET, LEPTON_TRIGGER_PT, MET, MUON, N_FEATURES, N_OBJECTS, PHI, PT

logger = logging.getLogger(__name__)

PID, PX, PY, PZ, E = range(5)
F32 = np.float32

TRUTH_PT_MIN, TRUTH_ETA_MAX = 16.0, 3.2
PILEUP_MEAN = 20.0
MU_EFFICIENCY, EG_EFFICIENCY = 0.95, 0.95
MU_ISO_MAX, EG_ISO_MAX, EG_H_OVER_E = np.inf, 0.3, 0.25
ISO_EFFECTIVE_AREA = 0.5  # fraction of the geometric cone area used in the rho correction
EG_CLUSTER_DR, EG_SEED_PT, ISO_DR = 0.1, 2.0, 0.3
TOWER_SIZE, TOWER_ETA_MAX, TOWER_ET_MIN, TOWER_STOCHASTIC = 0.087, 5.0, 1.0, 0.5
RHO_ETA_MAX, RHO_ETA_BINS, RHO_PHI_BINS = 4.0, 10, 8
JET_R, JET_CONSTANT, JET_SEARCH_PT = 0.4, 0.05, 8.0
MET_NOISE = 3.0
_NEUTRINOS = (12, 14, 16)
_ETA_EDGES = np.arange(-TOWER_ETA_MAX, TOWER_ETA_MAX + 1e-9, TOWER_SIZE)
_N_PHI = int(round(2 * np.pi / TOWER_SIZE))
_PHI_EDGES = np.linspace(-np.pi, np.pi, _N_PHI + 1)


def kinematics(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(pT, eta, phi)`` of particles ``[pid, px, py, pz, E]`` (eta clipped to +-10 along the beam)."""
    pt = np.hypot(p[:, PX], p[:, PY])
    eta = np.arcsinh(np.divide(p[:, PZ], pt, out=np.full(len(p), 1e4), where=pt > 0))
    return pt, np.clip(eta, -10.0, 10.0), np.arctan2(p[:, PY], p[:, PX])


def visible(p: np.ndarray) -> np.ndarray:
    """Particles without neutrinos and outside the beam pipe removed (``|eta| < 5``)."""
    pt, eta, _ = kinematics(p)
    keep = ~np.isin(np.abs(p[:, PID]), _NEUTRINOS) & (np.abs(eta) < TOWER_ETA_MAX) & (pt > 0.1)
    return p[keep]


def truth_prefilter(p: np.ndarray) -> bool:
    """Can this hard event pass the 23 GeV lepton pre-filter at all? (see the module docstring)."""
    cand = np.isin(np.abs(p[:, PID]), (11, 13, 22))
    if not cand.any():
        return False
    pt, eta, _ = kinematics(p[cand])
    return bool(((pt > TRUTH_PT_MIN) & (np.abs(eta) < TRUTH_ETA_MAX)).any())


def _dr(eta1, phi1, eta2, phi2) -> np.ndarray:
    dphi = np.abs(phi1 - phi2)
    dphi = np.where(dphi > np.pi, 2 * np.pi - dphi, dphi)
    return np.hypot(eta1 - eta2, dphi)


def _bin2d(eta, phi, eta_edges, phi_edges, weights) -> np.ndarray:
    """Weighted 2-D histogram, bin for bin what ``np.histogram2d`` gives, at a fraction of its cost."""
    ie = np.searchsorted(eta_edges, eta, side="right") - 1
    ip = np.searchsorted(phi_edges, phi, side="right") - 1
    ne, nphi = len(eta_edges) - 1, len(phi_edges) - 1
    ie[eta == eta_edges[-1]] = ne - 1  # numpy's convention: the last edge belongs to the last bin
    ip[phi == phi_edges[-1]] = nphi - 1
    inside = (ie >= 0) & (ie < ne) & (ip >= 0) & (ip < nphi)
    flat = ie[inside] * nphi + ip[inside]
    return np.bincount(flat, weights=weights[inside], minlength=ne * nphi).reshape(ne, nphi)


def _towers(rng: np.random.Generator, pt, eta, phi) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calorimeter towers ``(ET, eta, phi)`` above threshold, after the stochastic response."""
    h = _bin2d(eta, phi, _ETA_EDGES, _PHI_EDGES, pt)
    ie, ip = np.nonzero(h)
    et = h[ie, ip]
    et = np.maximum(et + TOWER_STOCHASTIC * np.sqrt(et) * rng.standard_normal(len(et)), 0.0)
    keep = et > TOWER_ET_MIN
    eta_c = 0.5 * (_ETA_EDGES[ie] + _ETA_EDGES[ie + 1])
    phi_c = 0.5 * (_PHI_EDGES[ip] + _PHI_EDGES[ip + 1])
    return et[keep], eta_c[keep], phi_c[keep]


_RHO_ETA_EDGES = np.linspace(-RHO_ETA_MAX, RHO_ETA_MAX, RHO_ETA_BINS + 1)
_RHO_PHI_EDGES = np.linspace(-np.pi, np.pi, RHO_PHI_BINS + 1)


def rho(et: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> float:
    """Median ET density (GeV per unit eta-phi area) of coarse regions in ``|eta| < RHO_ETA_MAX``."""
    h = _bin2d(eta, phi, _RHO_ETA_EDGES, _RHO_PHI_EDGES, et)
    area = (2 * RHO_ETA_MAX / RHO_ETA_BINS) * (2 * np.pi / RHO_PHI_BINS)
    return float(np.median(h) / area)


def cluster_jets(et: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Anti-kT R = 0.4 jets ``(n, 3)`` ``[pT, eta, phi]`` above ``JET_SEARCH_PT`` from massless towers."""
    import fastjet

    if len(et) == 0:
        return np.zeros((0, 3))
    px, py, pz, e = et * np.cos(phi), et * np.sin(phi), et * np.sinh(eta), et * np.cosh(eta)
    inputs = [
        fastjet.PseudoJet(*v) for v in zip(px.tolist(), py.tolist(), pz.tolist(), e.tolist(), strict=True)
    ]
    seq = fastjet.ClusterSequence(inputs, fastjet.JetDefinition(fastjet.antikt_algorithm, JET_R))
    jets = seq.inclusive_jets(JET_SEARCH_PT)
    return np.array([[j.pt(), j.eta(), j.phi_std()] for j in jets]).reshape(-1, 3)


def _egamma(pt, eta, phi, pid) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Greedy e/gamma clusters: ``(pT, eta, phi)`` and the member indices of each cluster."""
    is_eg = np.flatnonzero(np.isin(np.abs(pid), (11, 22)))
    order = is_eg[np.argsort(-pt[is_eg])]
    used = np.zeros(len(pt), dtype=bool)
    out_pt, out_eta, out_phi, members = [], [], [], []
    for i in order:
        if pt[i] < EG_SEED_PT:
            break
        if used[i]:
            continue
        near = order[(_dr(eta[i], phi[i], eta[order], phi[order]) < EG_CLUSTER_DR) & ~used[order]]
        used[near] = True
        px, py = (pt[near] * np.cos(phi[near])).sum(), (pt[near] * np.sin(phi[near])).sum()
        out_pt.append(np.hypot(px, py))
        out_eta.append(eta[i])
        out_phi.append(np.arctan2(py, px))
        members.append(near)
    return np.array(out_pt), np.array(out_eta), np.array(out_phi), members


def _isolation(pt, eta, phi, cand_eta, cand_phi, exclude: np.ndarray, rho_: float) -> float:
    """Pileup-corrected scalar pT sum in ``dR < ISO_DR`` around a candidate, its own particles excluded."""
    inside = _dr(cand_eta, cand_phi, eta, phi) < ISO_DR
    inside[exclude] = False
    return float(pt[inside].sum() - ISO_EFFECTIVE_AREA * rho_ * np.pi * ISO_DR**2)


def _hadronic(pt, eta, phi, pid, cand_eta, cand_phi) -> float:
    """Hadronic pT (not e, gamma or mu) in the cluster cone: the L1 H/E shower-shape proxy."""
    inside = _dr(cand_eta, cand_phi, eta, phi) < EG_CLUSTER_DR
    inside &= ~np.isin(np.abs(pid), (11, 13, 22))
    return float(pt[inside].sum())


def _f32(*cols) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(c, dtype=F32) for c in cols)


def pileup_draws(rng: np.random.Generator, pool_size: int, n: int):
    """``n`` pileup draws from a pool: (event index, azimuthal rotation, beam-axis flip) per draw.

    A pool of a few hundred events is reused thousands of times; without the rotation and flip the
    same minimum-bias jets would sit at the same (eta, phi) in 5% of all events each (measured: the
    second jet's phi distribution of the first committed samples was modulated by +-50%, and the
    two-sample classifier found it). Minimum bias is symmetric in phi and under z -> -z, so each draw
    is an equally likely event.
    """
    idx = rng.integers(0, max(pool_size, 1), n)
    return idx, rng.uniform(-np.pi, np.pi, n), rng.random(n) < 0.5


def overlay(event: np.ndarray, angle: float, flip: bool) -> np.ndarray:
    """A pool event rotated by ``angle`` in phi and, with ``flip``, mirrored along the beam axis."""
    out = event.copy()
    c, s = np.cos(angle), np.sin(angle)
    out[:, PX] = c * event[:, PX] - s * event[:, PY]
    out[:, PY] = s * event[:, PX] + c * event[:, PY]
    if flip:
        out[:, PZ] = -event[:, PZ]
    return out


def reconstruct(
    rng: np.random.Generator, hard: np.ndarray, pool: list[np.ndarray], pileup_mean: float = PILEUP_MEAN
) -> np.ndarray | None:
    """One L1 event ``(19, 4)`` float32 from a hard event and the pileup pool, or ``None`` if it fails."""
    n_pu = rng.poisson(pileup_mean) if pool else 0
    parts = [visible(hard)] + [
        overlay(pool[i], a, f) for i, a, f in zip(*pileup_draws(rng, len(pool), n_pu), strict=True)
    ]
    p = np.concatenate(parts)
    pid = p[:, PID]
    pt, eta, phi = kinematics(p)
    is_mu = np.abs(pid) == 13
    calo = ~is_mu
    t_et, t_eta, t_phi = _towers(rng, pt[calo], eta[calo], phi[calo])
    rho_ = rho(t_et, t_eta, t_phi)
    rho_iso = rho(pt, eta, phi)

    # Muons.
    mu = np.flatnonzero(is_mu & (pt > MUON.pt_min) & (np.abs(eta) < MUON.eta_max))
    mu = mu[rng.random(len(mu)) < MU_EFFICIENCY]
    mu_pt, mu_eta, mu_phi = smear_muon(rng, *_f32(pt[mu], eta[mu], phi[mu]))
    mu_ok = np.ones(len(mu), bool)
    if np.isfinite(MU_ISO_MAX):  # the L1 single-muon trigger has no isolation: skipped unless set
        mu_iso = np.array([_isolation(pt, eta, phi, eta[i], phi[i], np.array([i]), rho_iso) for i in mu])
        mu_ok = mu_iso < MU_ISO_MAX * np.maximum(mu_pt, 1e-3)

    # e/gamma.
    eg_pt, eg_eta, eg_phi, members = _egamma(pt, eta, phi, pid)
    eg_pt, eg_eta, eg_phi = smear_egamma(rng, *_f32(eg_pt, eg_eta, eg_phi))
    eg_ok = (rng.random(len(eg_pt)) < EG_EFFICIENCY) & (np.abs(eg_eta) < EGAMMA.eta_max)
    # isolation and H/E only where the cluster can be stored (a cluster below threshold never is)
    for k in np.flatnonzero(eg_ok & (eg_pt > EGAMMA.pt_min)):
        iso = _isolation(pt, eta, phi, eg_eta[k], eg_phi[k], members[k], rho_iso)
        had = _hadronic(pt, eta, phi, pid, eg_eta[k], eg_phi[k])
        eg_ok[k] = bool(iso < EG_ISO_MAX * np.maximum(eg_pt[k], 1e-3)) and bool(had < EG_H_OVER_E * eg_pt[k])

    lep = np.concatenate(
        [eg_pt[eg_ok & (eg_pt > LEPTON_TRIGGER_PT)], mu_pt[mu_ok & (mu_pt > LEPTON_TRIGGER_PT)]]
    )
    if len(lep) == 0:
        return None

    # Jets with pileup subtraction and a calibration constant term.
    jets = cluster_jets(t_et, t_eta, t_phi)
    j_pt = np.maximum(jets[:, 0] - rho_ * np.pi * JET_R**2, 0.0)
    j_pt = j_pt * (1.0 + JET_CONSTANT * rng.standard_normal(len(j_pt)))
    j_pt, j_eta, j_phi = _f32(j_pt, jets[:, 1], wrap_phi32(jets[:, 2].astype(F32)))

    # MET: minus the visible (tower + muon) vector sum, plus electronic noise.
    mx = -(t_et * np.cos(t_phi)).sum() - (mu_pt * np.cos(mu_phi)).sum() + MET_NOISE * rng.standard_normal()
    my = -(t_et * np.sin(t_phi)).sum() - (mu_pt * np.sin(mu_phi)).sum() + MET_NOISE * rng.standard_normal()

    out = np.zeros((1, N_OBJECTS, N_FEATURES), dtype=F32)
    out[0, MET.first_slot, PT] = np.hypot(mx, my)
    out[0, MET.first_slot, PHI] = np.clip(np.float32(np.arctan2(my, mx)), -PI32, PI32)
    out[0, MET.first_slot, CLASS] = MET.code
    for t, (opt, oeta, ophi, ok) in (
        (EGAMMA, (eg_pt, eg_eta, eg_phi, eg_ok)),
        (MUON, (mu_pt, mu_eta, mu_phi, mu_ok)),
        (JET, (j_pt, j_eta, j_phi, np.ones(len(j_pt), bool))),
    ):
        ok = ok & (opt > t.pt_min) & (np.abs(oeta) < t.eta_max)
        fill_slots(out, t, opt[None, :], oeta[None, :], wrap_phi32(ophi)[None, :], ok[None, :])
    return out[0]
