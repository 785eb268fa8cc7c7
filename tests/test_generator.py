"""Physics and format checks of the vectorized L1 event generator (l1ad.events.generator).

Each test states the physics it asserts and its tolerance; samples are 20k-30k events so the file runs
in a few seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from l1ad.events import schema
from l1ad.events.generator import (
    BACKGROUND_FRACTIONS,
    BACKGROUND_PROCESSES,
    PROCESSES,
    generate_background,
    generate_process,
    generate_signal,
    mixture_counts,
)
from l1ad.events.generator.kinematics import invariant_mass, transverse_mass

SEED = 7
N = 30_000


@pytest.fixture(scope="module")
def samples() -> dict[str, np.ndarray]:
    return {p: generate_process(p, N if p in ("W", "Z", "QCD") else 20_000, SEED) for p in PROCESSES}


def _present(x: np.ndarray, t: schema.ObjectType) -> np.ndarray:
    return x[:, t.slots, schema.CLASS] > 0


def _leading_leptons(x: np.ndarray, k: int) -> np.ndarray:
    """(N, k, 4) leading k leptons (e or mu, pT-ordered), zero-padded."""
    lep = x[:, schema.LEPTON_SLOTS]
    order = np.argsort(-lep[:, :, schema.PT], axis=1, kind="stable")[:, :k]
    return np.take_along_axis(lep, order[:, :, None], axis=1)


def _mass(objs: np.ndarray) -> np.ndarray:
    return invariant_mass(objs[..., 0].astype(float), objs[..., 1].astype(float), objs[..., 2].astype(float))


def _mt_lead_lepton_met(x: np.ndarray) -> np.ndarray:
    lead = _leading_leptons(x, 1)[:, 0]
    return transverse_mass(lead[:, 0], lead[:, 2], x[:, 0, schema.PT], x[:, 0, schema.PHI])


# ----------------------------------------------------------------------------------------- format
@pytest.mark.parametrize("process", [*PROCESSES, "mixture"])
def test_event_format(samples, process):
    """Layout, classes, zero padding, pT ordering, acceptance, thresholds, pre-filter, phi range."""
    x = generate_background(5000, SEED) if process == "mixture" else samples[process]
    assert x.dtype == np.float32 and x.shape[1:] == (schema.N_OBJECTS, schema.N_FEATURES)
    assert np.isfinite(x).all()
    # MET slot: always present, eta = 0, class 1.
    assert (x[:, 0, schema.CLASS] == schema.MET_CLASS).all() and (x[:, 0, schema.ETA] == 0).all()
    assert (x[:, 0, schema.PT] >= 0).all()
    cls = x[:, :, schema.CLASS]
    present = cls != 0
    # classes consistent with slots; padding exactly zero in all four features
    assert (cls[present] == np.broadcast_to(schema.SLOT_CLASS, cls.shape)[present]).all()
    assert (x[~present] == 0).all()
    # thresholds and acceptance (strict, as stored in float32)
    pt_min = np.broadcast_to(schema.SLOT_PT_MIN, cls.shape)[present]
    eta_max = np.broadcast_to(schema.SLOT_ETA_MAX, cls.shape)[present]
    objs = x[present]
    is_met = objs[:, schema.CLASS] == schema.MET_CLASS
    assert (objs[~is_met, schema.PT] > pt_min[~is_met]).all()
    assert (np.abs(objs[~is_met, schema.ETA]) < eta_max[~is_met]).all()
    assert (np.abs(x[..., schema.PHI]) <= np.pi).all()
    for t in (schema.EGAMMA, schema.MUON, schema.JET):
        pt = x[:, t.slots, schema.PT]
        assert (np.diff(pt, axis=1) <= 0).all(), f"{t.name} not pT-descending"
        p = _present(x, t)
        assert (p[:, :-1] >= p[:, 1:]).all(), f"{t.name}: gap before a present object"
    # pre-filter: a lepton above 23 GeV in every event
    assert (schema.leading_lepton_pt(x) > schema.LEPTON_TRIGGER_PT).all()


def test_slot_occupancy(samples):
    """W: one lepton mostly, plus non-prompt and fake ones (the Pythia reference: 80% / 17% / 2% with
    1 / 2 / >= 3); ttbar: busier than W; Ato4l: >= 2 leptons."""
    w, tt = samples["W"], samples["ttbar"]
    n_lep_w = (w[:, schema.LEPTON_SLOTS, schema.CLASS] > 0).sum(axis=1)
    assert 0.7 < np.mean(n_lep_w == 1) < 0.9
    assert 0.1 < np.mean(n_lep_w == 2) < 0.3
    assert 0.005 < np.mean(n_lep_w >= 3) < 0.05
    occupancy = (w[:, :, schema.CLASS] > 0).mean(axis=0)
    assert occupancy[0] == 1.0
    n_jet_w, n_jet_tt = _present(w, schema.JET).sum(1), _present(tt, schema.JET).sum(1)
    assert np.mean(n_jet_tt) > np.mean(n_jet_w) + 2
    n_lep_a = (samples["Ato4l"][:, schema.LEPTON_SLOTS, schema.CLASS] > 0).sum(axis=1)
    assert np.mean(n_lep_a >= 2) > 0.9


# ----------------------------------------------------------------------------------------- physics
def test_z_dilepton_mass_peak(samples):
    """Same-flavour dilepton mass: median and mode within 91 +- 3 GeV, most events have the pair."""
    z = samples["Z"]
    masses = []
    for t in (schema.EGAMMA, schema.MUON):
        two = _present(z, t).sum(axis=1) >= 2
        masses.append(_mass(z[two][:, t.first_slot : t.first_slot + 2]))
    m = np.concatenate(masses)
    assert len(m) > 0.6 * len(z)
    assert abs(np.median(m) - 91.19) < 3.0
    hist, edges = np.histogram(m, bins=np.arange(60.0, 122.0, 2.0))
    assert 88.0 <= edges[np.argmax(hist)] <= 94.0
    assert np.mean(np.abs(m - 91.19) < 10.0) > 0.7


def test_w_transverse_mass_edge_and_jacobian_peak(samples):
    """mT(lepton, MET) has its edge at m_W, smeared by the L1 MET resolution (~20 GeV per component
    with 20 pileup events): median 60-80 GeV, 90th percentile 85-110, about a tenth beyond 100 GeV
    (Pythia emulation, MPI on: 70.1 / 99.9 / 10%); the lepton pT has its Jacobian peak at ~m_W/2:
    mode and median in 30-45 GeV."""
    w = samples["W"]
    mt = _mt_lead_lepton_met(w)
    assert 60.0 < np.median(mt) < 80.0
    assert 85.0 < np.percentile(mt, 90) < 110.0
    assert 0.04 < np.mean(mt > 100.0) < 0.16
    lep_pt = schema.leading_lepton_pt(w)
    hist, edges = np.histogram(lep_pt, bins=np.arange(23.0, 81.0, 2.0))
    assert 30.0 <= edges[np.argmax(hist)] + 1.0 <= 45.0
    assert 30.0 < np.median(lep_pt) < 45.0
    assert 25.0 < np.median(schema.met(w)) < 50.0  # the neutrino


def test_ttbar_jets_and_met(samples):
    """ttbar: at least 2 jets in > 90% of events (b jets, W -> qq'), median >= 4; genuine MET."""
    tt = samples["ttbar"]
    n_jets = _present(tt, schema.JET).sum(axis=1)
    assert np.mean(n_jets >= 2) > 0.9
    assert np.median(n_jets) >= 4
    assert np.median(schema.met(tt)) > 30.0
    assert np.median(schema.ht(tt)) > 150.0


def test_qcd_steeply_falling_and_balanced(samples):
    """QCD: leading-jet pT density falls like pT^-n with 2.5 < n < 6 on 40-300 GeV; the leading jet
    pair is back-to-back; MET is smaller than in W (the neutrinos of the two semileptonic b decays are
    softer than the W's): median below 0.8 of W's (Pythia emulation: 0.67)."""
    q = samples["QCD"]
    j1 = q[:, schema.JET.first_slot, schema.PT]
    edges = np.geomspace(40.0, 300.0, 9)
    hist, _ = np.histogram(j1, bins=edges)
    assert (np.diff(hist) < 0).all()
    centers = np.sqrt(edges[1:] * edges[:-1])
    slope = np.polyfit(np.log(centers), np.log(hist / np.diff(edges)), 1)[0]
    assert -6.0 < slope < -2.5, slope
    two = (q[:, 9, schema.PT] > 40) & (q[:, 10, schema.PT] > 40)
    dphi = np.abs(np.angle(np.exp(1j * (q[two, 9, schema.PHI] - q[two, 10, schema.PHI]))))
    assert np.median(dphi) > 2.5
    assert np.median(schema.met(q)) < 0.8 * np.median(schema.met(samples["W"]))


def test_ato4l_four_lepton_mass_peak(samples):
    """A -> 4l: the 4-lepton mass of events with 4 leptons peaks at m_A = 50 GeV (median within 3 GeV,
    70% within +-5 GeV: the rest pair a fake or non-prompt lepton from a jet with three real ones)."""
    a = samples["Ato4l"]
    four = (a[:, schema.LEPTON_SLOTS, schema.CLASS] > 0).sum(axis=1) == 4
    assert four.mean() > 0.2
    m4 = _mass(_leading_leptons(a[four], 4))
    assert abs(np.median(m4) - 50.0) < 3.0
    assert np.mean(np.abs(m4 - 50.0) < 5.0) > 0.7


def test_tau_signal_visible_masses(samples):
    """Tau final states: visible masses lie below the resonance mass (the neutrinos escape), except
    where a fake e/gamma or non-prompt muon from a jet takes one of the two lepton places (~10%)."""
    h = samples["hToTauTau"]
    two = (h[:, schema.LEPTON_SLOTS, schema.CLASS] > 0).sum(axis=1) >= 2
    assert two.mean() > 0.1  # both taus leptonic
    m_ll = _mass(_leading_leptons(h[two], 2))
    assert np.percentile(m_ll, 85) < 60.0 and np.median(m_ll) < 45.0
    hc = samples["hChToTauNu"]
    mt = _mt_lead_lepton_met(hc)  # edge at 60 GeV, smeared by the MET resolution (Pythia: 44.6 / 74.6)
    assert np.percentile(mt, 90) < 85.0 and 30.0 < np.median(mt) < 55.0
    lq = samples["leptoquark"]
    has_jet = lq[:, schema.JET.first_slot, schema.CLASS] > 0
    pair = np.concatenate([_leading_leptons(lq[has_jet], 1), lq[has_jet, schema.JET.first_slot][:, None]], 1)
    # LQ pairs (b tau b tau): lepton + leading jet mass median 50-110 GeV, >= 4 jets and HT > 120 GeV
    # in the median (Pythia emulation: 78.5 GeV, 5 jets, 178 GeV)
    assert 50.0 < np.median(_mass(pair)) < 110.0
    assert np.median(_present(lq, schema.JET).sum(axis=1)) >= 4 and np.median(schema.ht(lq)) > 120.0


def test_signals_differ_from_background(samples):
    """Signals are distinguishable: A -> 4l has many more leptons, tau signals softer leptons than W."""
    n_lep = {p: (samples[p][:, schema.LEPTON_SLOTS, schema.CLASS] > 0).sum(axis=1).mean() for p in PROCESSES}
    assert n_lep["Ato4l"] > 2.5 > n_lep["W"]
    assert np.median(schema.leading_lepton_pt(samples["hToTauTau"])) < np.median(
        schema.leading_lepton_pt(samples["W"])
    )


# ----------------------------------------------------------------------------------------- mixture, seeds
def test_mixture_fractions_and_labels():
    n = 20_000
    x, labels = generate_background(n, SEED, return_labels=True)
    assert labels.dtype == np.int8 and x.shape == (n, schema.N_OBJECTS, schema.N_FEATURES)
    assert BACKGROUND_PROCESSES == ("W", "QCD", "Z", "ttbar")
    np.testing.assert_array_equal(np.bincount(labels, minlength=4), [11840, 6760, 1340, 60])
    # largest remainder: exact total, each count within 1 of n * fraction
    for m in (1, 7, 999, 1001, 12345):
        counts = mixture_counts(m)
        assert counts.sum() == m
        assert (np.abs(counts - m * np.asarray(BACKGROUND_FRACTIONS)) < 1.0).all()
    # shuffled: the labels are not in blocks
    assert (np.diff(labels[:1000]) != 0).sum() > 100
    # the W rows are exactly generate_process("W", ...) with the same seed, reordered
    w = generate_process("W", 11840, SEED).reshape(11840, -1)
    mixed_w = x[labels == 0].reshape(11840, -1)
    np.testing.assert_array_equal(w[np.lexsort(w.T)], mixed_w[np.lexsort(mixed_w.T)])


def test_determinism_and_seeds():
    a = generate_background(3000, 11)
    b = generate_background(3000, 11)
    assert a.tobytes() == b.tobytes()
    assert generate_background(3000, 12).tobytes() != a.tobytes()
    s1, s2 = generate_signal("Ato4l", 2000, 5), generate_signal("Ato4l", 2000, 5)
    assert s1.tobytes() == s2.tobytes()
    assert generate_signal("Ato4l", 2000, 6).tobytes() != s1.tobytes()
    # processes use independent streams: same seed, different processes share no events
    assert not np.array_equal(generate_process("W", 100, 11), generate_process("Z", 100, 11))


def test_errors_and_empty():
    with pytest.raises(ValueError):
        generate_process("Wprime", 10, 1)
    with pytest.raises(ValueError):
        generate_signal("W", 10, 1)
    assert generate_process("W", 0, 1).shape == (0, schema.N_OBJECTS, schema.N_FEATURES)


def test_two_body_decay_conserves_four_momentum():
    """Kinematics: boosted daughters sum to the parent and keep their masses."""
    from l1ad.events.generator.kinematics import resonance, two_body

    rng = np.random.default_rng(0)
    m = np.full(1000, 80.4, dtype=np.float32)  # the generator works in float32
    parent = resonance(rng, m, 8.0, 2.0)
    d1, d2 = two_body(rng, parent, m, 0.0, 4.8)
    assert d1.e.dtype == np.float32
    for a, b in zip(d1 + d2, parent, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(parent.mass, 80.4, rtol=1e-3)
    # daughter masses, to float32 precision of E^2 (massless objects are what the detector uses)
    for d, m0 in ((d1, 0.0), (d2, 4.8)):
        e, px, py, pz = (c.astype(np.float64) for c in d)
        assert (np.abs(e**2 - px**2 - py**2 - pz**2 - m0**2) < 1e-5 * e**2 + 1e-3).all()


# ----------------------------------------------------------------------------------------- calorimeter
def test_calorimeter_deposit_joins_the_nearest_jet_or_makes_one():
    """An e/gamma deposit within dR 0.4 of a jet adds its pT to it (the harder sets the axis); a lone
    one becomes a jet of its own; an absent one (pT = 0) adds nothing."""
    from l1ad.events.generator.detector import calo_deposit

    f = np.float32
    jets = (np.array([[50.0, 10.0]], f), np.array([[0.5, -1.0]], f), np.array([[1.0, 2.0]], f))
    obj = (np.array([[30.0, 20.0, 0.0, 25.0]], f), np.array([[0.6, 2.5, 0.0, -1.1]], f),
           np.array([[1.1, -1.0, 0.0, 2.05]], f))  # fmt: skip
    pt, eta, phi, em = calo_deposit(obj, jets)
    np.testing.assert_array_equal(pt[0, :2], [80.0, 35.0])  # merged into jet 0 and jet 1
    np.testing.assert_array_equal(
        eta[0, :2], np.array([0.5, -1.1], f)
    )  # jet 0 keeps its axis; the 25 GeV e is harder
    np.testing.assert_array_equal(em[0, :2], [False, True])
    np.testing.assert_array_equal(pt[0, 2:], [0.0, 20.0, 0.0, 0.0])  # one new jet, the rest empty
    assert eta[0, 3] == f(2.5) and em[0, 3]
    assert pt.sum() == f(50 + 10 + 30 + 20 + 25)  # nothing lost, nothing doubled


def test_every_triggering_electron_is_also_a_jet(samples):
    """L1 jets are clustered from all calorimeter towers, so an e/gamma above 23 GeV has a jet within
    dR 0.2 of it, of about its pT. The Pythia emulation (MPI off, seed 2026): 99.8% matched, jet/e pT
    quantiles (16, 50, 84%) = 0.86 / 1.00 / 1.16. Before the fast generator modelled it: 0.6%."""
    w = samples["W"]
    e = w[w[:, schema.EGAMMA.first_slot, schema.PT] > schema.LEPTON_TRIGGER_PT]
    jets, lead = e[:, schema.JET.slots], e[:, schema.EGAMMA.first_slot]
    dphi = np.angle(np.exp(1j * (jets[:, :, schema.PHI] - lead[:, None, schema.PHI])))
    dr = np.where(
        jets[:, :, schema.PT] > 0, np.hypot(jets[:, :, schema.ETA] - lead[:, None, schema.ETA], dphi), 9
    )
    near = dr.min(axis=1) < 0.2
    assert near.mean() > 0.97
    ratio = jets[np.arange(len(e)), dr.argmin(axis=1), schema.PT][near] / lead[near, schema.PT]
    q16, q50, q84 = np.quantile(ratio, [0.16, 0.5, 0.84])
    assert 0.95 < q50 < 1.06 and 0.8 < q16 < 0.9 and 1.1 < q84 < 1.25, (q16, q50, q84)


def test_jet_axes_lean_to_tower_centres(samples):
    """Jets are built from 0.087 x 2pi/72 towers: their phi, folded into one tower, peaks at its centre
    (Pythia emulation, leading jets 25-50 GeV: 20% in the central tenth against 5% in each edge one);
    e/gamma clusters are not binned and stay flat."""
    w = samples["W"]
    for sl, lo, hi in ((schema.JET.first_slot, 1.8, 5.0), (schema.EGAMMA.first_slot, 0.8, 1.25)):
        sel = (w[:, sl, schema.PT] > 25) & (w[:, sl, schema.PT] < 50)
        frac = ((w[sel, sl, schema.PHI] + np.pi) / (2 * np.pi / 72)) % 1.0
        h = np.histogram(frac, 10, (0.0, 1.0))[0]
        assert lo < h[4:6].mean() / h[[0, 9]].mean() < hi, h
