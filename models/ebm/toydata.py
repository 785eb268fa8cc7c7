"""Small synthetic ADC2021-layout events for the EBM tests and benchmarks (not physics).

Each event has MET, 0-4 e/gamma, 0-4 muons (at least one lepton above 23 GeV) and 0-10 jets, with
falling pT spectra above the slot thresholds, flat phi and Gaussian-ish eta in acceptance; absent
slots are zero-padded and objects are pT-ordered within each type, as in :mod:`l1ad.events.schema`.
``anomalous=True`` hardens the spectra (a crude "signal").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from l1ad.events import schema

#: An energy-model config that trains in about a second on a few hundred toy events: what tests and
#: benchmarks of the scoring machinery (service, batch jobs, Dask, export, drift) train, never physics.
TINY_CONFIG = {"hidden": 16, "n_blocks": 1, "n_frequencies": 4, "n_levels": 4, "ms_batch": 8, "batch_size": 128,
               "epochs": 1, "gmm_components": 2, "score_batch": 64}  # fmt: skip


def toy_events(n: int, seed: int = 0, anomalous: bool = False) -> np.ndarray:
    """(n, 19, 4) float32 toy events."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, schema.N_OBJECTS, schema.N_FEATURES), dtype=np.float32)
    scale = 2.0 if anomalous else 1.0
    mult = {
        schema.EGAMMA.name: rng.binomial(4, 0.25, n),
        schema.MUON.name: rng.binomial(4, 0.2, n),
        schema.JET.name: rng.binomial(10, 0.3, n),
    }
    # lepton pre-filter: ensure one lepton; it gets pT > 23 GeV below
    no_lep = (mult["e"] + mult["mu"]) == 0
    mult["mu"][no_lep & (rng.random(n) < 0.5)] = 1
    mult["e"][(mult["e"] + mult["mu"]) == 0] = 1
    met = rng.exponential(20.0 * scale, n)
    out[:, 0, schema.PT] = met
    out[:, 0, schema.PHI] = rng.uniform(-np.pi, np.pi, n)
    out[:, 0, schema.CLASS] = schema.MET_CLASS
    for t in (schema.EGAMMA, schema.MUON, schema.JET):
        k = mult[t.name]
        pt = t.pt_min + rng.exponential(15.0 * scale, (n, t.n_slots))
        if t is not schema.JET:
            pt[:, 0] += 20.0  # leading lepton candidates above the 23 GeV pre-filter
        pt = -np.sort(-pt, axis=1)
        eta = np.clip(rng.normal(0.0, t.eta_max / 2, (n, t.n_slots)), -t.eta_max + 1e-3, t.eta_max - 1e-3)
        phi = rng.uniform(-np.pi, np.pi, (n, t.n_slots))
        present = np.arange(t.n_slots)[None, :] < k[:, None]
        sl = t.slots
        out[:, sl, schema.PT] = np.where(present, pt, 0.0)
        out[:, sl, schema.ETA] = np.where(present, eta, 0.0)
        out[:, sl, schema.PHI] = np.where(present, phi, 0.0)
        out[:, sl, schema.CLASS] = np.where(present, t.code, 0)
    # the pre-filter: leading lepton above 23 GeV (lift the leading muon/electron where needed)
    low = schema.leading_lepton_pt(out) <= schema.LEPTON_TRIGGER_PT
    lead = np.where(
        out[:, schema.EGAMMA.first_slot, schema.PT] > 0, schema.EGAMMA.first_slot, schema.MUON.first_slot
    )
    out[np.nonzero(low)[0], lead[low], schema.PT] = schema.LEPTON_TRIGGER_PT + 1.0
    return out


def write_toy_h5(path: str | Path, n: int, seed: int = 0) -> Path:
    """Write toy background events as the ``Particles`` dataset of an ADC2021-layout HDF5 file."""
    import h5py

    path = Path(path)
    with h5py.File(path, "w") as f:
        f.create_dataset(schema.DATASET_PARTICLES, data=toy_events(n, seed))
    return path
