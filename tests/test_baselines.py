"""Baselines: cut variables on a hand-built event array and a seeded, persistent IsolationForest."""

from __future__ import annotations

import numpy as np
import pytest

from l1ad.events import schema
from l1ad.models import baselines


def _hand_events() -> np.ndarray:
    p = np.zeros((2, schema.N_OBJECTS, schema.N_FEATURES), dtype=np.float32)
    # event 0: MET 50, e 30, mu 40, jets 100 + 60
    p[0, 0] = [50.0, 0.0, 1.0, schema.MET_CLASS]
    p[0, 1] = [30.0, 0.5, -1.0, schema.EGAMMA_CLASS]
    p[0, 5] = [40.0, -1.0, 2.0, schema.MUON_CLASS]
    p[0, 9] = [100.0, 1.5, 0.3, schema.JET_CLASS]
    p[0, 10] = [60.0, -2.5, -0.3, schema.JET_CLASS]
    # event 1: MET 10, electrons 25 + 5, no muons, no jets
    p[1, 0] = [10.0, 0.0, -2.0, schema.MET_CLASS]
    p[1, 1] = [25.0, 0.1, 0.2, schema.EGAMMA_CLASS]
    p[1, 2] = [5.0, 0.3, 0.4, schema.EGAMMA_CLASS]
    return p


def _normal_events(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = np.zeros((n, schema.N_OBJECTS, schema.N_FEATURES), dtype=np.float32)
    p[:, :, schema.PT] = rng.uniform(20.0, 40.0, (n, schema.N_OBJECTS))
    p[:, :, schema.ETA] = rng.uniform(-1.0, 1.0, (n, schema.N_OBJECTS))
    p[:, :, schema.PHI] = rng.uniform(-np.pi, np.pi, (n, schema.N_OBJECTS))
    p[:, :, schema.CLASS] = schema.SLOT_CLASS
    return p


@pytest.mark.parametrize(
    ("name", "expected"),
    [("ht", [160.0, 0.0]), ("met", [50.0, 10.0]), ("lead_lepton_pt", [40.0, 25.0])],
)
def test_cut_baselines_by_hand(name, expected):
    scores = baselines.baseline_scores(name, _hand_events())
    np.testing.assert_array_equal(scores, expected)
    assert scores.dtype == np.float64


def test_cut_baseline_rejects_bad_shape():
    with pytest.raises(ValueError, match=r"\(N, 19, 4\)"):
        baselines.ht_score(np.zeros((3, 57)))


def test_registry_and_errors():
    assert set(baselines.BASELINES) == {"ht", "met", "lead_lepton_pt", "iforest"}
    with pytest.raises(ValueError, match="unknown baseline"):
        baselines.baseline_scores("mass", _hand_events())
    with pytest.raises(ValueError, match="fitted"):
        baselines.baseline_scores("iforest", _hand_events())
    with pytest.raises(RuntimeError, match="before fit"):
        baselines.IsolationForestBaseline().score(_hand_events())


@pytest.fixture(scope="module")
def train() -> np.ndarray:
    return _normal_events(2000, seed=0)


def test_iforest_deterministic_for_seed(train):
    test = _normal_events(300, seed=1)
    a = baselines.IsolationForestBaseline(seed=7, n_estimators=30).fit(train).score(test)
    b = baselines.IsolationForestBaseline(seed=7, n_estimators=30).fit(train).score(test)
    c = baselines.IsolationForestBaseline(seed=8, n_estimators=30).fit(train).score(test)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_iforest_subsample_is_seeded(train):
    test = _normal_events(100, seed=2)
    a = baselines.IsolationForestBaseline(seed=1, n_estimators=20, max_fit_events=500).fit(train)
    b = baselines.IsolationForestBaseline(seed=1, n_estimators=20, max_fit_events=500).fit(train)
    np.testing.assert_array_equal(a.score(test), b.score(test))
    assert a.model.n_features_in_ == schema.N_INPUTS


def test_iforest_scores_outlier_higher(train):
    model = baselines.IsolationForestBaseline(seed=0, n_estimators=50).fit(train)
    normal = _normal_events(200, seed=3)
    outlier = normal[:1].copy()
    outlier[0, :, schema.PT] = 5000.0
    outlier[0, :, schema.ETA] = 3.9
    scores = baselines.baseline_scores("iforest", np.concatenate([normal, outlier]), fitted=model)
    assert scores[-1] > scores[:-1].max()


def test_iforest_save_load_round_trip(train, tmp_path):
    model = baselines.IsolationForestBaseline(seed=5, n_estimators=20).fit(train)
    path = model.save(tmp_path / "sub" / "iforest.joblib")
    assert path == tmp_path / "sub" / "iforest.joblib"
    assert [f.name for f in path.parent.iterdir()] == ["iforest.joblib"]  # no temp file left behind
    loaded = baselines.IsolationForestBaseline.load(path)
    test = _normal_events(100, seed=4)
    np.testing.assert_array_equal(loaded.score(test), model.score(test))


def test_load_rejects_other_objects(tmp_path):
    import joblib

    path = tmp_path / "other.joblib"
    joblib.dump({"not": "a model"}, path)
    with pytest.raises(TypeError, match="IsolationForestBaseline"):
        baselines.IsolationForestBaseline.load(path)
