"""EBM training end to end on tiny toy data: artifacts, determinism, resume, round trip, scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from l1ad.models.ebm.scores import (
    ALL_SCORES,
    GMM_FILE,
    MODEL_FILE,
    SCORE_NAMES,
    STANDARDIZER_FILE,
    load_model,
    score,
)
from l1ad.models.ebm.toydata import toy_events, write_toy_h5
from l1ad.models.ebm.train import train_model
from l1ad.models.sidecar import META_FILE

TINY = {
    "hidden": 16,
    "n_blocks": 1,
    "n_frequencies": 4,
    "n_levels": 4,
    "ms_batch": 8,
    "batch_size": 128,
    "epochs": 2,
    "val_fraction": 0.25,
    "gmm_components": 2,
    "energy_quadrature": 3,
    "score_batch": 100,
}


@pytest.fixture(scope="module")
def background(tmp_path_factory) -> str:
    return str(write_toy_h5(tmp_path_factory.mktemp("data") / "bkg.h5", 600, seed=0))


@pytest.fixture(scope="module")
def trained(background, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("runs")
    return {name: train_model(name, background, out / "a", config=TINY, seed=3) for name in ("ebm", "score")}


@pytest.fixture(scope="module")
def events() -> np.ndarray:
    return toy_events(150, seed=11)


def test_artifacts_and_meta(trained, background) -> None:
    d = trained["ebm"]
    assert d.name == "ebm-float"
    for f in (MODEL_FILE, STANDARDIZER_FILE, GMM_FILE, META_FILE, "checkpoint.pt"):
        assert (d / f).is_file()
    assert not [p for p in d.iterdir() if p.name.startswith(".")]  # temp files renamed
    meta = json.loads((d / META_FILE).read_text())
    assert meta["model"] == "ebm" and meta["quantization"] == "float" and meta["framework"] == "torch"
    assert meta["seed"] == 3 and meta["n_train"] == 450 and meta["versions"]["torch"] == torch.__version__
    assert len(meta["data_sha256"]) == 64 and meta["config"]["hidden"] == 16
    assert meta["metrics"]["epochs_run"] == 2 and np.isfinite(meta["metrics"]["best_val_dsm"])
    assert "teacher" not in meta  # the student's teacher is defined in l1ad.models.distill


@pytest.mark.parametrize("name", ["ebm", "score"])
def test_scores_shapes(trained, events, name) -> None:
    s = score(trained[name], events)
    assert set(s) == set(SCORE_NAMES)
    for v in s.values():
        assert v.dtype == np.float64 and v.shape == (len(events),) and np.all(np.isfinite(v))


def _hand_model(c: float = 2.0, d: float = 0.5):
    """An energy network with one hidden unit reading the leading-jet pT only:
    ``E(x, sigma) = (c * silu(x_j) + d) / sigma`` with ``x_j = (pT_jet1 - 40) / 10`` (j = 27)."""
    from sklearn.mixture import GaussianMixture

    from l1ad.events.encoding import Standardizer
    from l1ad.models.ebm.config import load_config
    from l1ad.models.ebm.networks import build_network
    from l1ad.models.ebm.scores import LoadedEBM

    cfg = load_config({"hidden": 1, "n_blocks": 1, "n_frequencies": 2, "n_levels": 3, "sigma_min": 0.1,
                       "sigma_max": 0.4, "score_norm_levels": 2})  # fmt: skip
    net = build_network("ebm", cfg)
    with torch.no_grad():
        for prm in net.parameters():
            prm.zero_()
        net.trunk.in_proj.weight[0, 27] = 1.0  # slot 9 (leading jet) pT
        net.trunk.out.weight[0, 0] = c
        net.trunk.out.bias[0] = d
    mean, std = [0.0] * 57, [1.0] * 57
    mean[27], std[27] = 40.0, 10.0
    gm = GaussianMixture(1, covariance_type="full")
    gm.weights_, gm.means_ = np.ones(1), np.zeros((1, 3))
    gm.covariances_ = gm.precisions_cholesky_ = np.eye(3)[None]
    gmm = {"gmm": gm, "mean": np.zeros(3), "std": np.ones(3)}
    return LoadedEBM("ebm", net.eval(), cfg, Standardizer(tuple(mean), tuple(std)), gmm), cfg


def test_scores_hand_computed() -> None:
    """energy, score_norm and multiscale_gmm of a hand-set network, against values computed by hand."""
    from l1ad.events import schema
    from l1ad.models.ebm.dsm import sigmas_for

    model, cfg = _hand_model(c=2.0, d=0.5)
    p = np.zeros((2, schema.N_OBJECTS, schema.N_FEATURES), dtype=np.float32)
    p[:, 0] = [30.0, 0.0, 0.1, schema.MET_CLASS]
    p[0, 9] = [60.0, 0.2, 0.3, schema.JET_CLASS]  # x_j = +2
    p[1, 9] = [30.0, -0.2, 0.3, schema.JET_CLASS]  # x_j = -1
    s = score(model, p)

    def silu(z):
        return z / (1.0 + np.exp(-z))

    def dsilu(z):
        sig = 1.0 / (1.0 + np.exp(-z))
        return sig * (1.0 + z * (1.0 - sig))

    sigmas = sigmas_for(cfg)
    np.testing.assert_allclose(sigmas, [0.4, 0.2, 0.1])
    xj = np.array([2.0, -1.0])
    np.testing.assert_allclose(s["energy"], (2.0 * silu(xj) + 0.5) / 0.1, rtol=1e-6)
    # the score is -dE/dx_j = -c silu'(x_j) / sigma; sigma * |score| = c |silu'(x_j)| at every level
    np.testing.assert_allclose(s["score_norm"], 2.0 * np.abs(dsilu(xj)), rtol=1e-5)
    # unit Gaussian GMM on the per-level energies: 0.5 |f|^2 + (3/2) log(2 pi)
    feats = (2.0 * silu(xj)[:, None] + 0.5) / sigmas[None, :]
    np.testing.assert_allclose(
        s["multiscale_gmm"], 0.5 * (feats**2).sum(1) + 1.5 * np.log(2 * np.pi), rtol=1e-5
    )


def test_determinism_same_seed(trained, background, tmp_path, events) -> None:
    again = train_model("ebm", background, tmp_path, config=TINY, seed=3)
    # same seed, same bytes (the zip archive inside model.pt must not carry the temporary file's name)
    assert (again / MODEL_FILE).read_bytes() == (trained["ebm"] / MODEL_FILE).read_bytes()
    a = torch.load(trained["ebm"] / MODEL_FILE, weights_only=True)
    b = torch.load(again / MODEL_FILE, weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    sa, sb = score(trained["ebm"], events), score(again, events)
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k])
    other = train_model("ebm", background, tmp_path / "other", config=TINY, seed=4)
    c = torch.load(other / MODEL_FILE, weights_only=True)
    assert not torch.equal(a["trunk.in_proj.weight"], c["trunk.in_proj.weight"])


def test_resume_continues_bitwise(trained, background, tmp_path) -> None:
    train_model("ebm", background, tmp_path, config=TINY, seed=3, epochs=1)
    resumed = train_model("ebm", background, tmp_path, config=TINY, seed=3, resume=True)
    a = torch.load(trained["ebm"] / MODEL_FILE, weights_only=True)
    b = torch.load(resumed / MODEL_FILE, weights_only=True)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    with pytest.raises(ValueError, match="checkpoint"):
        train_model("ebm", background, tmp_path, config={**TINY, "hidden": 8}, seed=3, resume=True)


def test_save_load_round_trip(trained, events, tmp_path) -> None:
    model = load_model(trained["ebm"])
    copy = tmp_path / "ebm-float"
    copy.mkdir()
    for f in (STANDARDIZER_FILE, GMM_FILE, META_FILE):
        (copy / f).write_bytes((trained["ebm"] / f).read_bytes())
    torch.save(model.net.state_dict(), copy / MODEL_FILE)
    s1, s2, s3 = score(model, events), score(copy, events), score(trained["ebm"], events)
    for k in s1:
        np.testing.assert_array_equal(s1[k], s2[k])
        np.testing.assert_array_equal(s1[k], s3[k])


def test_batching_does_not_change_scores(trained, events) -> None:
    model = load_model(trained["ebm"])
    full = score(model, events)
    # an event scores the same bits alone, in a small group and inside a full batch (a served event
    # must equal the evaluation's): batches are padded past the small-matrix kernels
    for sl in (slice(0, 1), slice(3, 4), slice(5, 12), slice(40, 140)):
        part = score(model, events[sl])
        for k in full:
            np.testing.assert_array_equal(part[k], full[k][sl], err_msg=f"{k} {sl}")
    # each score alone (the cheaper path: score_norm skips the per-level features and the GMM)
    # gives the same bits as all of them together
    for name in SCORE_NAMES:
        np.testing.assert_array_equal(score(model, events, (name,))[name], full[name], err_msg=name)
    bare = load_model(trained["ebm"])
    bare.gmm_source = None
    np.testing.assert_array_equal(score(bare, events, ("score_norm",))["score_norm"], full["score_norm"])
    with pytest.raises(ValueError, match="gmm.pkl"):
        score(bare, events, ("multiscale_gmm",))


def test_bad_inputs(trained, background, tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown EBM model"):
        train_model("vae", background, tmp_path)
    with pytest.raises(ValueError, match="unknown EBM config key"):
        train_model("ebm", background, tmp_path, config={"hiddn": 3})
    with pytest.raises(ValueError, match="shape"):
        score(trained["ebm"], np.zeros((3, 57)))


def test_pattern_density_is_the_calibrated_energy(trained, events) -> None:
    """Training writes the per-pattern calibration; the score is that calibration of the model's own
    energy, offered by the registry, and a model without the file does not offer it."""
    from l1ad.events import schema
    from l1ad.models import registry
    from l1ad.models.ebm import pattern_density

    d = trained["ebm"]
    assert (d / pattern_density.PATTERN_FILE).is_file()
    both = score(d, events, ("energy", "pattern_density"))
    calib = pattern_density.load(d / pattern_density.PATTERN_FILE)
    np.testing.assert_array_equal(
        both["pattern_density"], pattern_density.score(calib, both["energy"], schema.input_mask(events))
    )
    np.testing.assert_array_equal(score(d, events, ("pattern_density",))["pattern_density"],
                                  both["pattern_density"])  # fmt: skip
    # pattern_tail from the same calibration; the full path (all scores) gives the same bits
    log_p, log_t = pattern_density.terms(calib, both["energy"], schema.input_mask(events))
    every = score(d, events, ALL_SCORES)
    np.testing.assert_array_equal(every["pattern_tail"], -log_p - log_t)
    np.testing.assert_array_equal(every["pattern_density"], both["pattern_density"])
    loaded = registry.load(registry.find(d.parent, "ebm/float"))
    assert {"ebm/float:pattern_density", "ebm/float:pattern_tail"} <= set(loaded.score_labels)
    bare = load_model(d)
    bare.pattern_source = None
    assert "pattern_density" not in bare.score_names
    with pytest.raises(ValueError, match="pattern.json"):
        score(bare, events, ("pattern_density",))
