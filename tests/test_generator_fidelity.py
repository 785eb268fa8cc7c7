"""The fast generator against the independent Pythia sample, with the fidelity tolerances declared in advance.

``tests/data/pythia_validation`` (``scripts/make_pythia_reference.py --set validation``: seed 4099, MPI
and 20 pileup events on, never used while tuning; 10k background events in the ADC2021 mixture plus 1k
per signal). Per process, and for the background mixture, the fast generator (10x the events, seed 11)
must hold:

* the fixed two-sample classifier (:func:`l1ad.events.twosample.classifier_test`: 200-iteration
  boosted trees on all 57 inputs, held-out AUC): ``AUC < CLASSIFIER_AUC_MAX`` = 0.75;
* per-type multiplicities (e/gamma, muons, e + mu, jets), every bin holding >= 1% of either sample:
  pull below 3 (both samples' binomial errors). The issue's "and within 10% relative" is printed by
  ``l1ad data compare --classifier`` but not asserted: on 1k-10k Pythia events it is not testable
  (a 2% bin of 1,000 events has a 22% statistical error);
* leading-lepton pT, leading-jet pT and eta, MET and HT: KS distance < ``KS_MAX`` and
  ``W1 / std(Pythia) < W1_REL_MAX``.

Before this fidelity work (fast generator of 3246f89, the old MPI-off samples) the classifier AUCs were
0.74-0.97; on this sample they are 0.58-0.68 (mixture 0.644 +- 0.007), README's fidelity block
(``scripts/fidelity_table.py``). The multiplicity pulls do not all hold yet: ``MULTIPLICITY_GAPS``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from l1ad.events import schema
from l1ad.events.compare import ks_distance, wasserstein
from l1ad.events.generator import PROCESSES, generate_background, generate_process
from l1ad.events.io import read_events
from l1ad.events.twosample import background_mixture, classifier_test, multiplicity_table

VALIDATION = Path(__file__).parent / "data" / "pythia_validation"
SEED, FAST_FACTOR = 11, 10
CLASSIFIER_AUC_MAX = 0.75
KS_MAX, W1_REL_MAX = 0.15, 0.30
MIN_BIN, MAX_PULL = 0.01, 3.0


#: Below this many Pythia events a process is not tested on its own (ttbar: 30 events, 0.3% of the
#: mixture; it is tested inside the mixture and holds its 300 events of the tuning sample).
MIN_EVENTS = 100
#: Known gaps, measured on this sample (strict: the test fails once the gap is closed, so the mark goes).
#: The classifier and the kinematic tolerances hold everywhere; these multiplicity bins do not:
MULTIPLICITY_GAPS = {
    "W": "fast has 9% more events with a muon (mu = 1: 0.444 vs 0.407, pull 5.5) and more 7-8 jet events",
    "QCD": "two-muon events 0.309 vs 0.265 (pull 5.5); 9-10 jet events 2-3x Pythia's",
    "Ato4l": "one-lepton events 0.092 vs 0.135 (pull -3.9); no-jet events 0.008 vs 0.029",
    "mixture": "the W and QCD muon excess: mu = 2 0.124 vs 0.106 (pull 5.7)",
}


@functools.cache
def _samples(process: str) -> tuple[np.ndarray, np.ndarray]:
    """(fast, Pythia) events of one process, or of the background mixture (``"mixture"``)."""
    if process == "mixture":
        ref = background_mixture(VALIDATION)
        return generate_background(FAST_FACTOR * len(ref), SEED), ref
    ref = read_events(VALIDATION / f"{process}.h5")
    if len(ref) < MIN_EVENTS:
        pytest.skip(f"{process}: {len(ref)} Pythia events in the validation sample (< {MIN_EVENTS})")
    return generate_process(process, FAST_FACTOR * len(ref), SEED), ref


def _with_gaps(processes):
    return [
        pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=MULTIPLICITY_GAPS[p]))
        if p in MULTIPLICITY_GAPS
        else p
        for p in processes
    ]


def _leading_jet_eta(ev: np.ndarray) -> np.ndarray:
    return ev[ev[:, schema.JET.first_slot, schema.CLASS] > 0, schema.JET.first_slot, schema.ETA]


OBSERVABLES = {
    "lead lepton pT": schema.leading_lepton_pt,
    "lead jet pT": lambda ev: ev[:, schema.JET.first_slot, schema.PT],
    "lead jet eta": _leading_jet_eta,
    "MET": schema.met,
    "HT": schema.ht,
}


def test_validation_sample_is_independent_and_big_enough():
    import json

    meta = json.loads((VALIDATION / "reference.json").read_text())
    assert meta["mpi"] is True and meta["set"] == "validation" and meta["seed"] == 4099
    assert meta["seed"] not in (2021, 2026, SEED)  # not a seed used while tuning
    for p in PROCESSES:
        assert len(read_events(VALIDATION / f"{p}.h5")) == meta["processes"][p]["events"] >= 30


@pytest.mark.parametrize("process", [*PROCESSES, "mixture"])
def test_classifier_cannot_tell_fast_from_pythia(process):
    fast, ref = _samples(process)
    c = classifier_test(fast, ref, seed=SEED)
    assert c["auc"] < CLASSIFIER_AUC_MAX, f"{process}: AUC {c['auc']:.3f} +- {c['auc_error']:.3f}"


@pytest.mark.parametrize("process", _with_gaps([*PROCESSES, "mixture"]))
def test_multiplicities_agree(process):
    fast, ref = _samples(process)
    bad = []
    for t, rows in multiplicity_table(fast, ref).items():
        for r in rows:
            if max(r["a"], r["b"]) < MIN_BIN:
                continue
            if abs(r["pull"]) >= MAX_PULL:
                bad.append(f"{t}={r['k']}: fast {r['a']:.4f} pythia {r['b']:.4f} pull {r['pull']:+.1f}")
    assert not bad, f"{process}: {bad}"


@pytest.mark.parametrize("process", [*PROCESSES, "mixture"])
def test_kinematic_distributions_agree(process):
    fast, ref = _samples(process)
    bad = []
    for name, f in OBSERVABLES.items():
        a, b = f(fast), f(ref)
        ks, w1 = ks_distance(a, b), wasserstein(a, b) / max(float(np.std(b)), 1e-9)
        if ks >= KS_MAX or w1 >= W1_REL_MAX:
            bad.append(f"{name}: KS {ks:.3f} W1/std {w1:.3f}")
    assert not bad, f"{process}: {bad}"
