"""The float references ae_ref_log / ae_ref_hlt: the ADC2021 AE on a standardized representation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from l1ad.events import representations
from l1ad.events.encoding import Standardizer
from l1ad.models import registry
from l1ad.models.ebm.toydata import toy_events, write_toy_h5
from l1ad.models.keras import storage as keras_io
from l1ad.models.keras.configs import check_name, load_config
from l1ad.models.keras.model_inputs import STANDARDIZER_FILE, model_inputs
from l1ad.models.keras.score import score
from l1ad.models.keras.train import train_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    data = write_toy_h5(tmp_path_factory.mktemp("data") / "bkg.h5", 1500, seed=0)
    out = tmp_path_factory.mktemp("run")
    cfg = {"batch_size": 256, "patience": 3}
    return {
        n: train_model(n, "float", data, out, config=cfg, epochs=2, seed=1)
        for n in ("ae_ref_log", "ae_ref_hlt")
    }


@pytest.mark.parametrize("name,rep,n", [("ae_ref_log", "l1_log", 57), ("ae_ref_hlt", "hlt", 64)])
def test_trained_on_the_standardized_representation(trained, name, rep, n) -> None:
    d = trained[name]
    std = Standardizer.load(d / STANDARDIZER_FILE)
    assert std.representation == rep and len(std.mean) == n
    model = keras_io.load_model(d)
    assert model.input_shape == (None, n) and model.output_shape == (None, n)
    meta = json.loads((d / "meta.json").read_text())
    assert meta["config"]["inputs"] == rep and meta["input_encoding"] == {"representation": rep}
    assert registry.open_model(d).label == f"{name}/float"


def test_log_inputs_are_log_pt_standardized(trained) -> None:
    std = Standardizer.load(trained["ae_ref_log"] / STANDARDIZER_FILE)
    ev = toy_events(20, seed=4)
    inputs = model_inputs(ev, std)
    pt = ev[:, 9, 0].astype(np.float64)  # leading jet pT (input 27)
    live = ev[:, 9, 3] != 0
    expected = (np.log1p(pt) - std.mean[27]) / std.std[27]
    np.testing.assert_allclose(inputs.x[live, 27], expected[live], rtol=1e-6)
    assert np.all(inputs.x[~inputs.mask] == 0.0) and np.all(inputs.weights == 1.0)


def test_score_is_the_masked_mse_over_live_inputs(trained) -> None:
    d = trained["ae_ref_hlt"]
    ev = toy_events(200, seed=6)
    s = score(d, ev)
    std = Standardizer.load(d / STANDARDIZER_FILE)
    x = std.transform(ev).astype(np.float64)
    m = std.mask(ev)
    r = np.asarray(keras_io.load_model(d).predict(x.astype(np.float32), verbose=0), dtype=np.float64)
    by_hand = np.array([np.mean((x[i] - r[i])[m[i]] ** 2) for i in range(len(ev))])
    np.testing.assert_allclose(s, by_hand, rtol=1e-12)
    assert np.all(np.isfinite(s)) and np.unique(s).size == len(ev)


def test_no_quantized_style_and_no_firmware(trained) -> None:
    for quant in ("hgq", "qkeras"):
        with pytest.raises(ValueError, match="float only"):
            check_name("ae_ref_log", quant)
        with pytest.raises(ValueError, match="comes in quantization float"):
            registry.check("ae_ref_hlt", quant)
    with pytest.raises(ValueError, match="has no hls4ml firmware"):
        registry.firmware_model(trained["ae_ref_log"])
    with pytest.raises(ValueError, match="inputs must be one of"):
        load_config("ae_ref_log", {"inputs": "log"})
    assert representations.get(load_config("ae_ref_hlt").inputs).n_inputs == 64
