"""The 64-feature HLT vector: names, layout and hand-computed event-level features."""

from __future__ import annotations

import numpy as np
import pytest

from l1ad.events import hlt_features as hf
from l1ad.events import schema


def _event(objects: list[tuple[int, float, float, float]], met=(0.0, 0.0)) -> np.ndarray:
    ev = np.zeros((1, schema.N_OBJECTS, schema.N_FEATURES), dtype=np.float32)
    ev[0, 0] = [met[0], 0.0, met[1], schema.MET_CLASS]
    for slot, pt, eta, phi in objects:
        ev[0, slot] = [pt, eta, phi, schema.SLOT_CLASS[slot]]
    return ev


def _col(x: np.ndarray, name: str) -> float:
    return float(x[0, hf.FEATURE_NAMES.index(name)])


def test_names_and_layout():
    assert hf.N_FEATURES == 64 and len(set(hf.FEATURE_NAMES)) == 64
    assert "MET_eta" not in hf.FEATURE_NAMES and hf.FEATURE_NAMES[:2] == ("MET_pt", "MET_phi")
    assert hf.FEATURE_NAMES[-8:] == hf.EVENT_FEATURES
    rng = np.random.default_rng(0)
    ev = _event([(1, 30.0, 0.5, 1.0), (5, 60.0, -1.0, 2.0), (9, 80.0, 2.0, -1.0)], met=(20.0, 0.3))
    ev = np.repeat(ev, 3, axis=0)
    ev[:, :, schema.PT] *= rng.uniform(0.5, 2.0, (3, 1)).astype(np.float32)
    x = hf.hlt_features(ev)
    assert x.shape == (3, 64) and x.dtype == np.float32
    kin = schema.kinematics(ev)
    names = schema.flat_feature_names()
    for i, name in enumerate(hf.FEATURE_NAMES[:56]):
        np.testing.assert_array_equal(x[:, i], kin[:, names.index(name)])
    np.testing.assert_array_equal(x[:, hf.FEATURE_NAMES.index("n_e")], 1)
    np.testing.assert_array_equal(x[:, hf.FEATURE_NAMES.index("n_mu")], 1)
    np.testing.assert_array_equal(x[:, hf.FEATURE_NAMES.index("n_jet")], 1)
    np.testing.assert_allclose(x[:, hf.FEATURE_NAMES.index("HT")], ev[:, 9, schema.PT])


def test_dilepton_mass_takes_the_two_leading_leptons_of_either_flavour():
    # mu1 60 and mu2 45 lead; the 30 GeV electron is third
    ev = _event([(1, 30.0, 0.0, 0.0), (5, 60.0, 0.0, 0.0), (6, 45.0, 0.0, np.pi)])
    assert _col(hf.hlt_features(ev), "m_ll") == pytest.approx(2 * np.sqrt(60 * 45), rel=1e-5)
    # back-to-back in eta as well: m^2 = 2 pT1 pT2 (cosh(deta) - cos(dphi))
    ev = _event([(1, 50.0, 1.0, 0.0), (2, 50.0, -1.0, np.pi)])
    m = np.sqrt(2 * 50 * 50 * (np.cosh(2.0) + 1.0))
    assert _col(hf.hlt_features(ev), "m_ll") == pytest.approx(m, rel=1e-5)
    assert _col(hf.hlt_features(_event([(5, 40.0, 0.0, 0.0)])), "m_ll") == 0.0


def test_transverse_mass():
    ev = _event([(1, 40.0, 1.3, 0.0)], met=(40.0, np.pi))
    assert _col(hf.hlt_features(ev), "mT_lep_met") == pytest.approx(80.0, rel=1e-5)
    ev = _event([(1, 40.0, 0.0, 0.5)], met=(40.0, 0.5))
    assert _col(hf.hlt_features(ev), "mT_lep_met") == pytest.approx(0.0, abs=1e-2)


def test_shape_variables():
    # two back-to-back objects on one axis: a pencil, S = A = 0
    pencil = hf.hlt_features(_event([(1, 50.0, 0.0, 0.0), (9, 50.0, 0.0, np.pi)]))
    assert _col(pencil, "sphericity") == pytest.approx(0.0, abs=1e-6)
    # four equal objects at +-x, +-y (eta 0): a disc, eigenvalues (1/2, 1/2, 0): S = 3/4, A = 0
    disc = hf.hlt_features(
        _event(
            [
                (1, 50.0, 0.0, 0.0),
                (5, 50.0, 0.0, np.pi / 2),
                (9, 50.0, 0.0, np.pi),
                (10, 50.0, 0.0, -np.pi / 2),
            ]
        )
    )
    assert _col(disc, "sphericity") == pytest.approx(0.75, abs=1e-5)
    assert _col(disc, "aplanarity") == pytest.approx(0.0, abs=1e-6)
    # +-x, +-y and a forward pair along +-z (pT p sinh eta ~ p): nearly isotropic, A > 0.3
    eta = 3.0
    pz_pt = 50.0 / np.cosh(eta)  # |p| = 50 along (almost) z
    iso = hf.hlt_features(
        _event(
            [
                (1, 50.0, 0.0, 0.0),
                (2, 50.0, 0.0, np.pi / 2),
                (9, 50.0, 0.0, np.pi),
                (10, 50.0, 0.0, -np.pi / 2),
                (11, pz_pt, eta, 0.0),
                (12, pz_pt, -eta, np.pi),
            ]
        )  # fmt: skip
    )
    assert _col(iso, "sphericity") > 0.9 and _col(iso, "aplanarity") > 0.3


def test_bad_shape_names_the_shape():
    with pytest.raises(ValueError, match=r"\(N, 19, 4\)"):
        hf.hlt_features(np.zeros((3, 57)))
