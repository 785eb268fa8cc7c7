"""Input representations of the full-precision models, and the energy model on the HLT vector."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from l1ad.events import hlt_features, representations, schema
from l1ad.events.encoding import Standardizer
from l1ad.models.ebm.config import EBMConfig
from l1ad.models.ebm.networks import build_network
from l1ad.models.ebm.scores import ALL_SCORES, STANDARDIZER_FILE, load_model, prepare, score
from l1ad.models.ebm.toydata import toy_events, write_toy_h5
from l1ad.models.ebm.train import train_model
from l1ad.models.registry import discover

TINY = {"hidden": 16, "n_blocks": 1, "n_frequencies": 4, "n_levels": 4, "ms_batch": 8, "batch_size": 128,
        "epochs": 1, "val_fraction": 0.25, "gmm_components": 2, "score_batch": 100}  # fmt: skip


def _event(objects: dict[int, tuple[float, float, float]]) -> np.ndarray:
    """One (1, 19, 4) event: slot -> (pT, eta, phi); MET always present."""
    p = np.zeros((1, schema.N_OBJECTS, schema.N_FEATURES), dtype=np.float32)
    objects = {0: (0.0, 0.0, 0.0), **objects}
    for slot, (pt, eta, phi) in objects.items():
        p[0, slot] = (pt, eta, phi, schema.SLOT_CLASS[slot])
    return p


# MET 50 GeV, one electron (slot 1), one jet (slot 9): m_ll undefined, mT and HT defined
ONE_LEPTON = _event({0: (50.0, 0.0, 0.0), 1: (30.0, 0.5, np.pi / 2), 9: (80.0, -1.0, 3.0)})


def test_l1_is_the_57_kinematics() -> None:
    rep = representations.get(None)
    ev = toy_events(50, seed=1)
    assert rep.name == "l1" and rep.n_inputs == 57 and rep.names == tuple(schema.flat_feature_names())
    np.testing.assert_array_equal(rep.mask(ev), schema.input_mask(ev))
    np.testing.assert_array_equal(rep.values(ev), np.where(schema.input_mask(ev), schema.kinematics(ev), 0.0))
    np.testing.assert_array_equal(rep.flag_columns, np.arange(0, 57, 3))


def test_hlt_live_mask_of_a_hand_made_event() -> None:
    rep = representations.get("hlt")
    assert rep.names == hlt_features.FEATURE_NAMES and rep.n_inputs == 64
    live = dict(zip(rep.names, rep.mask(ONE_LEPTON)[0], strict=True))
    assert live["MET_pt"] and live["MET_phi"] and live["e1_pt"] and live["e1_eta"] and live["jet1_phi"]
    assert not live["e2_pt"] and not live["mu1_pt"] and not live["jet2_eta"]
    assert live["HT"] and live["mT_lep_met"] and live["sphericity"] and live["aplanarity"]
    assert not live["m_ll"]  # one lepton: no pair mass
    assert not (live["n_e"] or live["n_mu"] or live["n_jet"])  # counts are the pattern, not a density
    values = dict(zip(rep.names, rep.values(ONE_LEPTON)[0], strict=True))
    assert values["HT"] == pytest.approx(80.0) and values["mT_lep_met"] == pytest.approx(np.sqrt(2 * 30 * 50))
    assert values["n_e"] == 0.0 and values["m_ll"] == 0.0  # not live: exactly 0
    # presence flags: the pT column of each of the 19 objects
    assert [rep.names[c] for c in rep.flag_columns[:3]] == ["MET_pt", "e1_pt", "e2_pt"]


def test_log_representations_compress_only_gev_inputs() -> None:
    lin, log = representations.get("hlt"), representations.get("hlt_log")
    a, b = lin.values(ONE_LEPTON)[0], log.values(ONE_LEPTON)[0]
    gev = {lin.names[i] for i in lin.gev_columns}
    assert {"MET_pt", "e1_pt", "jet10_pt", "HT", "m_ll", "mT_lep_met"} <= gev
    assert not gev & {"e1_eta", "MET_phi", "sphericity", "n_jet"}
    for i, name in enumerate(lin.names):
        assert b[i] == pytest.approx(np.log1p(a[i]) if name in gev else a[i]), name
    l1log = representations.get("l1_log").values(ONE_LEPTON)[0]
    assert l1log[3] == pytest.approx(np.log1p(30.0)) and l1log[4] == pytest.approx(0.5)  # e1 pT, eta


def test_unknown_representation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown input representation 'hlt64'"):
        representations.get("hlt64")
    with pytest.raises(ValueError, match="EBMConfig.inputs"):
        EBMConfig(inputs="hlt64")


def test_standardizer_round_trip_and_l1_file_format(tmp_path) -> None:
    ev = toy_events(300, seed=2)
    l1 = Standardizer.fit(ev)
    l1.save(tmp_path / "l1.json")
    assert set(json.loads((tmp_path / "l1.json").read_text())) == {"mean", "std"}  # as before the option
    hlt = Standardizer.fit(ev, "hlt")
    hlt.save(tmp_path / "hlt.json")
    back = Standardizer.load(tmp_path / "hlt.json")
    assert back == hlt and back.representation == "hlt" and len(back.mean) == 64
    z = back.transform(ev)
    assert z.shape == (300, 64) and np.all(z[~back.mask(ev)] == 0.0)
    d = json.loads((tmp_path / "hlt.json").read_text())
    d["mean"] = d["mean"][:57]
    (tmp_path / "bad.json").write_text(json.dumps(d))
    with pytest.raises(ValueError, match="need 64 'mean' and 'std' values for representation 'hlt'"):
        Standardizer.load(tmp_path / "bad.json")


def test_l1_network_is_unchanged_by_the_option() -> None:
    """The L1 energy network keeps its parameters and its outputs (make run's teacher stays the same)."""
    ev = toy_events(64, seed=3)
    cfg = EBMConfig(**{k: v for k, v in TINY.items()})
    torch.manual_seed(0)
    a = build_network("ebm", cfg)
    torch.manual_seed(0)
    b = build_network("ebm", cfg.replace(inputs="l1"))
    assert list(a.state_dict()) == list(b.state_dict())
    x, m = prepare(ev, Standardizer.fit(ev))
    sigma = torch.full((64,), 0.1)
    torch.testing.assert_close(a(x, sigma, m), b(x, sigma, m), rtol=0, atol=0)
    hlt = build_network("ebm_hlt", cfg)
    assert hlt.trunk.in_proj.in_features == 64 and hlt.trunk.mask_proj.in_features == 19


@pytest.fixture(scope="module")
def hlt_model(tmp_path_factory):
    data = write_toy_h5(tmp_path_factory.mktemp("data") / "bkg.h5", 500, seed=0)
    return train_model("ebm_hlt", data, tmp_path_factory.mktemp("run"), config=TINY, seed=1)


def test_ebm_hlt_trains_scores_and_is_discovered(hlt_model) -> None:
    model = load_model(hlt_model)
    assert hlt_model.name == "ebm_hlt-float" and model.standardizer.representation == "hlt"
    assert model.config.inputs == "hlt"
    assert json.loads((hlt_model / STANDARDIZER_FILE).read_text())["representation"] == "hlt"
    ev = toy_events(120, seed=5)
    s = score(model, ev, ALL_SCORES)
    assert all(v.shape == (120,) and np.all(np.isfinite(v)) for v in s.values())
    # the energy does not depend on inputs that are not live (a changed count column, say)
    moved = ev.copy()
    x, m = prepare(moved, model.standardizer)
    assert np.all(x.numpy()[:, list(model.standardizer.rep.names).index("n_jet")] == 0.0)
    [found] = [t for t in discover(hlt_model.parent) if t.model == "ebm_hlt"]
    assert found.label == "ebm_hlt/float" and found.framework == "torch"


def test_ebm_hlt_explanations_name_hlt_features(hlt_model) -> None:
    from l1ad.models.ebm.explain import explain_event

    top = explain_event(hlt_model, toy_events(1, seed=8)[0], top_k=64)
    names = {n for n, _ in top}
    assert names == set(hlt_features.FEATURE_NAMES)
    assert dict(top)["n_jet"] == 0.0  # never live: score exactly 0


def test_a_standardizer_of_another_representation_is_refused(hlt_model, tmp_path) -> None:
    import shutil

    bad = tmp_path / "ebm_hlt-float"
    shutil.copytree(hlt_model, bad)
    Standardizer.fit(toy_events(100, seed=1)).save(bad / STANDARDIZER_FILE)
    with pytest.raises(ValueError, match="standardizes representation 'l1', the config's inputs are 'hlt'"):
        load_model(bad)


def test_triton_export_skips_a_model_on_numpy_features(hlt_model) -> None:
    """The raw-event export computes the L1 inputs in torch; the HLT vector is numpy: refused, said why."""
    from l1ad.serving.raw_scoring import RawEventScore
    from l1ad.serving.triton_export import select

    with pytest.raises(ValueError, match="ebm_hlt/float: its inputs \\('hlt'\\) are computed in numpy"):
        select(hlt_model.parent, None)
    with pytest.raises(ValueError, match="only models on the 57 L1 inputs export"):
        RawEventScore(load_model(hlt_model), "energy")
