"""The ADC2021 L1 event layout: one definition used by every stage.

An event is 19 objects x 4 features ``[pT, eta, phi, class]`` (dataset ``Particles``, shape (N, 19, 4)):

======  ==========  =====  ==================  =========================
slots   object      class  acceptance          L1 threshold
======  ==========  =====  ==================  =========================
0       MET         1      eta = 0             (none)
1-4     e/gamma     2      abs(eta) < 3.0      pT > 3 GeV
5-8     muons       3      abs(eta) < 2.1      pT > 3 GeV
9-18    jets        4      abs(eta) < 4.0      pT > 15 GeV
======  ==========  =====  ==================  =========================

Absent objects are zero-padded (pT = eta = phi = class = 0), pT-ordered (descending) within each type.
Every event passes the pre-filter: at least one electron or muon with pT > 23 GeV.

The model input is the 57 numbers ``[pT, eta, phi]`` of the 19 slots, flattened slot-major
(``x[3*slot + feature]``); :func:`flat_feature_names` names them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_OBJECTS = 19
N_FEATURES = 4  # pT, eta, phi, class
N_INPUTS = N_OBJECTS * 3  # the model input: pT, eta, phi per slot

PT, ETA, PHI, CLASS = 0, 1, 2, 3
FEATURE_NAMES = ("Pt", "Eta", "Phi", "Class")
KINEMATIC_NAMES = ("pT", "eta", "phi")

DATASET_PARTICLES = "Particles"
DATASET_CLASSES = "Particles_Classes"
DATASET_NAMES = "Particles_Names"
CLASS_LABELS = ("MET_class_1", "Four_Ele_class_2", "Four_Mu_class_3", "Ten_Jet_class_4")

PADDING_CLASS = 0
MET_CLASS, EGAMMA_CLASS, MUON_CLASS, JET_CLASS = 1, 2, 3, 4

#: Lepton pre-filter: at least one e or mu above this pT (GeV).
LEPTON_TRIGGER_PT = 23.0


@dataclass(frozen=True)
class ObjectType:
    """One object type of the layout: which slots it owns and its L1 acceptance."""

    name: str  # short name used in feature names ("met", "e", "mu", "jet")
    label: str  # human label
    code: int  # class code in the file
    first_slot: int
    n_slots: int
    eta_max: float  # |eta| acceptance (MET: 0)
    pt_min: float  # L1 threshold in GeV (MET: 0)

    @property
    def slots(self) -> slice:
        return slice(self.first_slot, self.first_slot + self.n_slots)


MET = ObjectType("met", "MET", MET_CLASS, 0, 1, 0.0, 0.0)
EGAMMA = ObjectType("e", "e/gamma", EGAMMA_CLASS, 1, 4, 3.0, 3.0)
MUON = ObjectType("mu", "muon", MUON_CLASS, 5, 4, 2.1, 3.0)
JET = ObjectType("jet", "jet", JET_CLASS, 9, 10, 4.0, 15.0)
OBJECT_TYPES = (MET, EGAMMA, MUON, JET)

#: Class code expected in each slot when the object is present.
SLOT_CLASS = np.array([t.code for t in OBJECT_TYPES for _ in range(t.n_slots)], dtype=np.int64)
#: |eta| acceptance of each slot.
SLOT_ETA_MAX = np.array([t.eta_max for t in OBJECT_TYPES for _ in range(t.n_slots)], dtype=np.float64)
#: L1 pT threshold of each slot.
SLOT_PT_MIN = np.array([t.pt_min for t in OBJECT_TYPES for _ in range(t.n_slots)], dtype=np.float64)
LEPTON_SLOTS = slice(EGAMMA.first_slot, MUON.first_slot + MUON.n_slots)

#: The four benchmark signals of ADC2021 and the background file names.
SIGNAL_NAMES = ("Ato4l", "leptoquark", "hToTauTau", "hChToTauNu")
BACKGROUND_SPLITS = ("train", "val", "test")


def slot_names() -> list[str]:
    """Physics names of the 19 slots: met, e1..e4, mu1..mu4, jet1..jet10."""
    names = []
    for t in OBJECT_TYPES:
        if t.n_slots == 1:
            names.append(t.name)
        else:
            names.extend(f"{t.name}{i + 1}" for i in range(t.n_slots))
    return names


def flat_feature_names() -> list[str]:
    """Physics names of the 57 model inputs, in input order: ``MET_pt``, ``MET_eta``, ``MET_phi``,
    ``e1_pt``, ..., ``mu1_eta``, ..., ``jet3_phi``, ... (what explanations and the service report)."""
    slots = ["MET" if s == "met" else s for s in slot_names()]
    return [f"{s}_{k}" for s in slots for k in ("pt", "eta", "phi")]


def kinematics(particles: np.ndarray) -> np.ndarray:
    """The (N, 57) model input ``[pT, eta, phi]`` per slot from (N, 19, 4) particles."""
    return np.ascontiguousarray(particles[:, :, :3].reshape(len(particles), N_INPUTS))


def present(particles: np.ndarray) -> np.ndarray:
    """(N, 19) boolean mask of real (non-padded) objects."""
    return particles[:, :, CLASS] != PADDING_CLASS


def input_mask(particles: np.ndarray) -> np.ndarray:
    """(N, 57) boolean mask of the model inputs that carry information.

    An input is live when its object is present; MET's eta is always 0 by construction and is
    never live. Models that mask (the energy models' noise and loss, the reference autoencoder's
    error) use this one definition.
    """
    mask = np.repeat(present(particles), 3, axis=1)
    mask[:, 3 * MET.first_slot + ETA] = False
    return mask


def ht(particles: np.ndarray) -> np.ndarray:
    """Scalar sum of jet pT per event."""
    return particles[:, JET.slots, PT].sum(axis=1)


def met(particles: np.ndarray) -> np.ndarray:
    """Missing transverse energy per event."""
    return particles[:, MET.first_slot, PT]


def leading_lepton_pt(particles: np.ndarray) -> np.ndarray:
    """Largest e/gamma or muon pT per event."""
    return particles[:, LEPTON_SLOTS, PT].max(axis=1)
