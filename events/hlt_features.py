"""The 64-feature HLT vector: object kinematics plus event-level physics features, one definition.

The L1 models see the 57 raw inputs (:func:`l1ad.events.schema.kinematics`). The use case's HLT and
offline models see this vector instead (:data:`FEATURE_NAMES`, in order):

* **56 object kinematics**: ``MET_pt``, ``MET_phi`` (MET's eta is 0 by construction and is dropped),
  then ``pt``, ``eta``, ``phi`` of ``e1..e4``, ``mu1..mu4``, ``jet1..jet10`` (zero where absent, as in
  the L1 layout).
* **8 event-level features**:

  ====================  ==========================================================================
  ``HT``                scalar sum of jet pT (GeV)
  ``n_e``, ``n_mu``,    object multiplicities per type
  ``n_jet``
  ``sphericity``        ``3/2 (l2 + l3)`` of the momentum tensor ``S_ab = sum p_a p_b / sum |p|^2``
                        over all e/gamma, muons and jets (massless, ``p = pT (cos phi, sin phi,
                        sinh eta)``); eigenvalues ``l1 >= l2 >= l3``; 0 with fewer than 2 objects
  ``aplanarity``        ``3/2 l3`` of the same tensor
  ``m_ll``              invariant mass of the two leading leptons (e/gamma or muon by pT, massless;
                        GeV); 0 with fewer than 2
  ``mT_lep_met``        transverse mass of the leading lepton and MET,
                        ``sqrt(2 pT MET (1 - cos dphi))`` (GeV)
  ====================  ==========================================================================

A leading-jet-pair mass is left out: the jets' kinematics and ``HT`` are in the vector, and the 64 of
the use case are spent on the leptons' masses, which the multi-lepton and W/Z-like signals turn on.
"""

from __future__ import annotations

import numpy as np

from l1ad.events import schema

EVENT_FEATURES = ("HT", "n_e", "n_mu", "n_jet", "sphericity", "aplanarity", "m_ll", "mT_lep_met")
_KIN_NAMES = [n for n in schema.flat_feature_names() if n != "MET_eta"]
#: names of the 64 features, in vector order
FEATURE_NAMES = tuple(_KIN_NAMES + list(EVENT_FEATURES))
N_FEATURES = len(FEATURE_NAMES)
#: columns of the 57 L1 inputs that the HLT vector's 56 object kinematics take (all but MET_eta)
KIN_COLUMNS = np.array([i for i, n in enumerate(schema.flat_feature_names()) if n != "MET_eta"])
_VISIBLE = slice(schema.EGAMMA.first_slot, schema.N_OBJECTS)


def _momenta(particles: np.ndarray, slots: slice) -> np.ndarray:
    """(N, k, 3) massless 3-momenta of the objects in ``slots`` (zero for absent ones)."""
    pt = particles[:, slots, schema.PT].astype(np.float64)
    eta = particles[:, slots, schema.ETA].astype(np.float64)
    phi = particles[:, slots, schema.PHI].astype(np.float64)
    return np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=-1)


def shape_variables(particles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sphericity, aplanarity) per event from the visible objects' momentum tensor."""
    p = _momenta(particles, _VISIBLE)
    norm = (p**2).sum(axis=(1, 2))
    tensor = np.einsum("nka,nkb->nab", p, p)
    safe = np.where(norm > 0, norm, 1.0)
    lam = np.linalg.eigvalsh(tensor / safe[:, None, None])  # ascending: l3, l2, l1
    n_obj = schema.present(particles)[:, _VISIBLE].sum(axis=1)
    ok = (n_obj >= 2) & (norm > 0)
    sph = np.where(ok, 1.5 * (lam[:, 0] + lam[:, 1]), 0.0)
    apl = np.where(ok, 1.5 * lam[:, 0], 0.0)
    return np.clip(sph, 0.0, 1.0), np.clip(apl, 0.0, 0.5)


def _leading_leptons(particles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) slot indices of the two leading leptons by pT and (N, 2) whether each exists."""
    pt = particles[:, schema.LEPTON_SLOTS, schema.PT]
    order = np.argsort(-pt, axis=1, kind="stable")[:, :2]
    exists = np.take_along_axis(pt, order, axis=1) > 0
    return order + schema.LEPTON_SLOTS.start, exists


def dilepton_mass(particles: np.ndarray) -> np.ndarray:
    """Invariant mass of the two leading leptons (massless), 0 with fewer than two."""
    slots, exists = _leading_leptons(particles)
    rows = np.arange(len(particles))[:, None]
    obj = particles[rows, slots]  # (N, 2, 4)
    pt, eta, phi = obj[..., schema.PT], obj[..., schema.ETA], obj[..., schema.PHI]
    m2 = 2 * pt[:, 0] * pt[:, 1] * (np.cosh(eta[:, 0] - eta[:, 1]) - np.cos(phi[:, 0] - phi[:, 1]))
    return np.where(exists.all(axis=1), np.sqrt(np.clip(m2, 0.0, None)), 0.0)


def lepton_met_mt(particles: np.ndarray) -> np.ndarray:
    """Transverse mass of the leading lepton and MET, 0 without a lepton."""
    slots, exists = _leading_leptons(particles)
    lead = particles[np.arange(len(particles)), slots[:, 0]]
    met = particles[:, schema.MET.first_slot]
    dphi = lead[:, schema.PHI] - met[:, schema.PHI]
    mt2 = 2 * lead[:, schema.PT] * met[:, schema.PT] * (1 - np.cos(dphi))
    return np.where(exists[:, 0], np.sqrt(np.clip(mt2, 0.0, None)), 0.0)


def hlt_features(particles: np.ndarray) -> np.ndarray:
    """(N, 64) float32 HLT vector of (N, 19, 4) L1-layout events, columns named by :data:`FEATURE_NAMES`."""
    particles = np.asarray(particles)
    if particles.ndim != 3 or particles.shape[1:] != (schema.N_OBJECTS, schema.N_FEATURES):
        raise ValueError(f"particles must have shape (N, 19, 4), got {particles.shape}")
    present = schema.present(particles)
    sph, apl = shape_variables(particles)
    event = np.stack(
        [
            schema.ht(particles).astype(np.float64),
            present[:, schema.EGAMMA.slots].sum(axis=1),
            present[:, schema.MUON.slots].sum(axis=1),
            present[:, schema.JET.slots].sum(axis=1),
            sph,
            apl,
            dilepton_mass(particles),
            lepton_met_mt(particles),
        ],
        axis=1,
    )
    kin = schema.kinematics(particles)[:, KIN_COLUMNS]
    return np.concatenate([kin, event], axis=1).astype(np.float32)
