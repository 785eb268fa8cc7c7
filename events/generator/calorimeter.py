"""The calorimeter side of the fast L1 model: e/gamma deposits in the jets and the tower grid.

L1 jets are clustered from calorimeter towers (the Pythia emulation: anti-kT R = 0.4 on 0.087 x 2pi/72
towers of every visible particle except muons). Two consequences the fast model reproduces:

* every electron or photon is also (part of) a jet: :func:`calo_deposit` adds e/gamma deposits,
  measured with the towers' electromagnetic response (:func:`smear_em`), to the nearest jet within
  ``JET_MERGE_DR`` or makes a jet of its own. The Pythia emulation: 99.8% of the e/gamma above 23 GeV
  in W events have a jet within dR 0.2, jet/e pT 0.86 / 1.00 / 1.16 (16 / 50 / 84%);
* jet axes are means of tower centres: :func:`tower_axis` pulls them toward the centre of their
  tower, strongly for a jet whose axis is an e/gamma shower (one or two towers).
"""

from __future__ import annotations

import numpy as np

from .kinematics import F32, smear, wrap_phi32

#: Calorimeter towers (as the Pythia emulation): 0.087 x 2pi/72 in eta x phi, eta edges from -5.
TOWER_ETA_SIZE, TOWER_PHI_SIZE, TOWER_ETA_EDGE = 0.087, 2.0 * np.pi / 72.0, 5.0
TOWER_AXIS_EM, TOWER_AXIS_HADRONIC = (0.55, 0.1), (0.3, 0.3)  # (fraction pulled, least scale)
#: Tower response to an electromagnetic deposit (50%/sqrt(ET), 5% calibration, pileup noise).
CALO_EM_NOISE, CALO_EM_STOCHASTIC, CALO_EM_CONSTANT, CALO_EM_ANGLE = 4.0, 0.5, 0.05, 0.02
#: An e/gamma deposit this close to a jet axis is part of that jet (the anti-kT radius).
JET_MERGE_DR = 0.4


def smear_em(rng: np.random.Generator, pt, eta, phi):
    """An e/gamma deposit as the calorimeter towers measure it (the jet clustering's input)."""
    inv = F32(1.0) / np.maximum(pt, F32(1.0))
    sig = np.sqrt(
        F32(CALO_EM_NOISE**2) * inv * inv + F32(CALO_EM_STOCHASTIC**2) * inv + F32(CALO_EM_CONSTANT**2)
    )
    return smear(rng, pt, eta, phi, sig, CALO_EM_ANGLE)


def tower_axis(rng: np.random.Generator, eta, phi, em) -> tuple[np.ndarray, np.ndarray]:
    """Jet axes pulled toward the centre of their calorimeter tower.

    A jet clustered from towers sits at the ET-weighted mean of tower centres; one dominated by a
    single tower (an electron or photon shower, ``em``) sits near that tower's centre. Per jet, with
    probability ``f`` its offset from the centre (in eta and in phi) is scaled by ``U(a, 1)``:
    ``(f, a)`` = :data:`TOWER_AXIS_EM` or :data:`TOWER_AXIS_HADRONIC`.
    """
    frac = np.where(em, F32(TOWER_AXIS_EM[0]), F32(TOWER_AXIS_HADRONIC[0]))
    low = np.where(em, F32(TOWER_AXIS_EM[1]), F32(TOWER_AXIS_HADRONIC[1]))
    out = []
    for x, lo, size in ((eta, -TOWER_ETA_EDGE, TOWER_ETA_SIZE), (phi, -np.pi, TOWER_PHI_SIZE)):
        cell = np.floor((x - F32(lo)) / F32(size))
        centre = F32(lo) + (cell + F32(0.5)) * F32(size)
        u = rng.random(x.shape, dtype=F32)
        scale = np.where(rng.random(x.shape, dtype=F32) < frac, low + (F32(1.0) - low) * u, F32(1.0))
        out.append((centre + (x - centre) * scale).astype(F32))
    return out[0], wrap_phi32(out[1])


def calo_deposit(obj, jets, radius: float = JET_MERGE_DR):
    """Add calorimeter objects ``(pT, eta, phi)`` columns to truth jets: an object within ``radius`` of
    a jet adds its pT to the nearest one (the harder of the two sets the axis); otherwise it is a jet
    of its own (a new column). Returns the jet columns and which jets have an e/gamma axis; objects with
    pT = 0 add nothing."""
    o_pt, o_eta, o_phi = obj
    j_pt, j_eta, j_phi = (np.array(a, dtype=F32) for a in jets)
    em = np.zeros(j_pt.shape, dtype=bool)
    new_pt, new_eta, new_phi = [], [], []
    rows = np.arange(len(j_pt))
    for c in range(o_pt.shape[1]):
        pt, eta, phi = o_pt[:, c], o_eta[:, c], o_phi[:, c]
        if j_pt.shape[1]:
            dr2 = (j_eta - eta[:, None]) ** 2 + wrap_phi32(j_phi - phi[:, None]) ** 2
            dr2 = np.where(j_pt > 0, dr2, np.inf)
            near = dr2.argmin(axis=1)
            hit = (dr2[rows, near] < radius * radius) & (pt > 0)
        else:
            near, hit = np.zeros(len(pt), dtype=np.intp), np.zeros(len(pt), dtype=bool)
        r, k = rows[hit], near[hit]
        harder = pt[hit] > j_pt[r, k]
        j_eta[r, k] = np.where(harder, eta[hit], j_eta[r, k])
        j_phi[r, k] = np.where(harder, phi[hit], j_phi[r, k])
        em[r, k] |= harder
        j_pt[r, k] += pt[hit]
        new_pt.append(np.where(hit, F32(0.0), pt))
        new_eta.append(eta)
        new_phi.append(phi)
    if not new_pt:
        return j_pt, j_eta, j_phi, em
    j_pt, j_eta, j_phi = (
        np.concatenate([j, np.stack(o, axis=1).astype(F32)], axis=1)
        for j, o in ((j_pt, new_pt), (j_eta, new_eta), (j_phi, new_phi))
    )
    return j_pt, j_eta, j_phi, np.concatenate([em, np.ones((len(j_pt), len(new_pt)), dtype=bool)], axis=1)
