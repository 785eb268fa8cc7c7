"""Input representations of the full-precision (HLT/offline) models: one definition of each.

The L1 models always see the 57 hardware-encoded inputs (:mod:`l1ad.events.encoding`). A
full-precision model chooses how an event is written before it is standardized:

=============  ========  ==================================================================================
name           inputs    values
=============  ========  ==================================================================================
``l1``         57        ``[pT, eta, phi]`` per slot (:func:`l1ad.events.schema.kinematics`), GeV and rad
``l1_log``     57        the same with every pT replaced by ``log(1 + pT / GeV)``
``hlt``        64        the HLT vector (:mod:`l1ad.events.hlt_features`): 56 object kinematics and 8
                         event-level features (HT, multiplicities, sphericity, aplanarity, m_ll, mT)
``hlt_log``    64        the HLT vector with every GeV-valued feature (pT, HT, m_ll, mT) as ``log(1 + v)``
=============  ========  ==================================================================================

Each representation also says which of its inputs are *live* for an event (:meth:`Representation.mask`):
the density models noise, score and calibrate only live inputs, and the pattern of live inputs names
the event's pattern of present objects. For the object kinematics an input is live when its object is
present (MET's eta is never live and is not in the HLT vector). The event-level features are live
only where they are defined by the event's objects, so the live pattern is still a function of which
objects are present:

* ``HT`` needs a jet, ``sphericity`` / ``aplanarity`` two visible objects, ``m_ll`` two leptons,
  ``mT_lep_met`` one lepton (each is 0 otherwise, a value that carries no density);
* the multiplicities ``n_e``, ``n_mu``, ``n_jet`` are never live: they are the event's pattern itself,
  which the models see through their presence flags (:attr:`Representation.flag_columns`) and the
  pattern calibration counts (``P(pattern)``); a density over integer counts would be a sum of deltas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from l1ad.events import hlt_features, schema

REPRESENTATIONS = ("l1", "l1_log", "hlt", "hlt_log")
#: HLT event features in GeV (log-compressed in ``hlt_log``)
_GEV_EVENT_FEATURES = ("HT", "m_ll", "mT_lep_met")
_NEVER_LIVE = ("n_e", "n_mu", "n_jet")


@dataclass(frozen=True)
class Representation:
    """How a full-precision model writes an event: names, values and live mask of its inputs."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in REPRESENTATIONS:
            raise ValueError(f"unknown input representation {self.name!r}; choose one of {REPRESENTATIONS}")

    @property
    def hlt(self) -> bool:
        return self.name.startswith("hlt")

    @property
    def log(self) -> bool:
        return self.name.endswith("_log")

    @property
    def names(self) -> tuple[str, ...]:
        """Physics names of the inputs, in input order (what explanations report)."""
        return hlt_features.FEATURE_NAMES if self.hlt else tuple(schema.flat_feature_names())

    @property
    def n_inputs(self) -> int:
        return len(self.names)

    @property
    def gev_columns(self) -> np.ndarray:
        """Indices of the GeV-valued inputs (the ones ``*_log`` compresses)."""
        return np.array(
            [i for i, n in enumerate(self.names) if n.endswith("_pt") or n in _GEV_EVENT_FEATURES]
        )

    @property
    def flag_columns(self) -> np.ndarray:
        """Per object slot (19), the input whose live bit says the object is present (its pT)."""
        names = self.names
        return np.array([names.index(f"{'MET' if s == 'met' else s}_pt") for s in schema.slot_names()])

    def values(self, particles: np.ndarray) -> np.ndarray:
        """(N, 19, 4) particles -> (N, n_inputs) float64 input values (0 where not live)."""
        return self.values_and_mask(particles)[0]

    def values_and_mask(self, particles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`values` and :meth:`mask` of the same events, the mask computed once."""
        particles = np.asarray(particles)
        if particles.ndim != 3 or particles.shape[1:] != (schema.N_OBJECTS, schema.N_FEATURES):
            raise ValueError(f"particles must have shape (N, 19, 4), got {particles.shape}")
        x = (hlt_features.hlt_features(particles) if self.hlt else schema.kinematics(particles)).astype(
            np.float64
        )
        if self.log:
            cols = self.gev_columns
            x[:, cols] = np.log1p(np.maximum(x[:, cols], 0.0))
        mask = self.mask(particles)
        return np.where(mask, x, 0.0), mask

    def mask(self, particles: np.ndarray) -> np.ndarray:
        """(N, n_inputs) boolean: the inputs that carry information for each event (module docstring)."""
        live = schema.input_mask(particles)
        if not self.hlt:
            return live
        names = self.names
        kin = hlt_features.KIN_COLUMNS
        present = schema.present(particles)
        n_jet = present[:, schema.JET.slots].sum(axis=1)
        n_lep = present[:, schema.LEPTON_SLOTS].sum(axis=1)
        n_vis = present[:, schema.EGAMMA.first_slot :].sum(axis=1)
        event = {
            "HT": n_jet >= 1,
            "sphericity": n_vis >= 2,
            "aplanarity": n_vis >= 2,
            "m_ll": n_lep >= 2,
            "mT_lep_met": n_lep >= 1,
        }
        out = np.zeros((len(particles), len(names)), dtype=bool)
        out[:, : len(kin)] = live[:, kin]
        for j, n in enumerate(names[len(kin) :], start=len(kin)):
            out[:, j] = False if n in _NEVER_LIVE else event[n]
        return out


def get(name: str | None) -> Representation:
    """The representation ``name`` (``None``: ``l1``, what models trained before this option used)."""
    return Representation(name or "l1")
