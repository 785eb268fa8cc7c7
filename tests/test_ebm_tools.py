"""EBM explain, Langevin sampling and TorchScript export on a tiny trained model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from l1ad.events import schema
from l1ad.models.ebm.explain import explain_event, plot_attribution
from l1ad.models.ebm.export import benchmark_latency, check_equal, export_torchscript, scoring_module
from l1ad.models.ebm.networks import model_energy, model_score
from l1ad.models.ebm.sampling import (
    annealed_langevin,
    compare_with_background,
    sample_like,
    summary_quantities,
)
from l1ad.models.ebm.scores import load_model, prepare
from l1ad.models.ebm.scores import score as ebm_score
from l1ad.models.ebm.toydata import toy_events, write_toy_h5
from l1ad.models.ebm.train import train_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = {"hidden": 16, "n_blocks": 1, "n_frequencies": 4, "n_levels": 4, "ms_batch": 8, "batch_size": 128}
TINY |= {"epochs": 1, "gmm_components": 2, "energy_quadrature": 3}


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    data = write_toy_h5(tmp_path_factory.mktemp("data") / "bkg.h5", 500, seed=1)
    out = tmp_path_factory.mktemp("runs")
    return {n: load_model(train_model(n, data, out, config=TINY, seed=0)) for n in ("ebm", "score")}


@pytest.fixture(scope="module")
def events() -> np.ndarray:
    return toy_events(200, seed=7)


def test_explain_names_and_order(models, events, tmp_path) -> None:
    names = schema.flat_feature_names()
    row = events[0]
    expl = explain_event(models["ebm"], row, top_k=8)
    assert len(expl) == 8 and all(n in names for n, _ in expl)
    mags = [abs(v) for _, v in expl]
    assert mags == sorted(mags, reverse=True)
    full = dict(explain_event(models["ebm"], row, top_k=57))
    assert list(full) != [] and set(full) == set(names)
    absent = [names[i] for i in np.nonzero(~schema.input_mask(row[None])[0])[0]]
    assert absent and all(full[n] == 0.0 for n in absent)
    path = plot_attribution(expl, tmp_path / "attr.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in tmp_path.iterdir()] == ["attr.png"]


def test_langevin_finite_shape_and_mask(models, events) -> None:
    model = models["ebm"]
    _, mask = prepare(events, model.standardizer)
    x = annealed_langevin(model.net, mask, model.sigmas, n_steps=3, seed=0)
    assert x.shape == (len(events), schema.N_INPUTS) and torch.isfinite(x).all()
    assert torch.all(x[mask == 0] == 0) and torch.any(x[mask > 0] != 0)
    torch.testing.assert_close(
        x, annealed_langevin(model.net, mask, model.sigmas, n_steps=3, seed=0), rtol=0, atol=0
    )
    samples = sample_like(model, events, n_steps=3)
    assert samples.shape == events.shape and np.isfinite(samples).all()
    np.testing.assert_array_equal(schema.present(samples), schema.present(events))
    np.testing.assert_array_equal(samples[:, :, schema.CLASS], events[:, :, schema.CLASS])
    assert np.all(samples[:, :, schema.PT] >= 0)


def test_compare_with_background(models, events, tmp_path) -> None:
    stats = compare_with_background(models["score"], events, tmp_path / "cmp.png", n_steps=2)
    assert stats["finite"]
    for q in summary_quantities(events):
        assert 0.0 <= stats[q]["ks_statistic"] <= 1.0 and 0.0 <= stats[q]["ks_p_value"] <= 1.0
    assert 0.0 <= stats["c2st"]["auc"] <= 1.0 and 0.0 <= stats["c2st"]["p_value"] <= 1.0
    assert (tmp_path / "cmp.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("name", ["ebm", "score"])
def test_torchscript_equals_eager(models, events, tmp_path, name) -> None:
    model = models[name]
    x, mask = prepare(events, model.standardizer)
    scripted = export_torchscript(model, tmp_path / "scoring.ts")
    loaded = torch.jit.load(str(tmp_path / "scoring.ts"))
    assert check_equal(scoring_module(model), loaded, x, mask) == 0.0
    energy, score = scripted(x, mask)
    # and against the plain eager network functions used for scoring
    torch.testing.assert_close(score, model_score(model.net, x, model.sigma_min, mask), rtol=0, atol=0)
    if name == "ebm":
        torch.testing.assert_close(energy, model_energy(model.net, x, model.sigma_min, mask), rtol=0, atol=0)
    np.testing.assert_allclose(
        energy.double().numpy(), ebm_score(model, events)["energy"], rtol=1e-5, atol=1e-5
    )
    lat = benchmark_latency(scripted, x, mask, (1, 16), n_repeat=5, warmup=2)
    assert lat[1]["ms_per_event"] > 0 and lat[16]["ms_per_batch"] > 0
    assert lat[1]["p99_ms_per_batch"] >= lat[1]["p90_ms_per_batch"] >= lat[1]["ms_per_batch"]
