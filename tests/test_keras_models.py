"""Tests of the Keras L1 models: configs, training, persistence, determinism, scoring, hls4ml (HGQ).

Native-HGQ2 and float models run in this process; the QKeras style runs in a subprocess
(tests/test_keras_qkeras.py) because HGQ2's QKeras shim rewrites the native layer classes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

from l1ad.events import encoding, schema
from l1ad.models.keras import storage as keras_io
from l1ad.models.keras.configs import MODEL_NAMES, QUANTIZATIONS, AECompactConfig, load_config
from l1ad.models.keras.score import ae_ref_score, postprocess, score, score_in_subprocess, vae_kl_score
from l1ad.models.keras.train import train_model

N_EVENTS = 1200


def fast_graphs() -> None:
    """Tests only: skip TF's graph optimizer (grappler), which dominates tracing tiny HGQ2 models."""
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})


fast_graphs()


def synthetic_particles(n: int, seed: int = 0) -> np.ndarray:
    """Random but valid ADC2021-layout events (pT-ordered per type, acceptance, lepton trigger)."""
    rng = np.random.default_rng(seed)
    p = np.zeros((n, schema.N_OBJECTS, schema.N_FEATURES), np.float32)
    for t in schema.OBJECT_TYPES:
        pts = t.pt_min + rng.exponential(20.0, (n, t.n_slots))
        pts = -np.sort(-pts, axis=1)
        on = np.ones((n, t.n_slots), bool) if t.code == schema.MET_CLASS else rng.random((n, t.n_slots)) < 0.4
        on = np.cumprod(on, axis=1).astype(bool)  # present objects first
        sl = t.slots
        p[:, sl, schema.PT] = np.where(on, pts, 0)
        p[:, sl, schema.ETA] = np.where(on, rng.uniform(-t.eta_max, t.eta_max, (n, t.n_slots)), 0)
        p[:, sl, schema.PHI] = np.where(on, rng.uniform(-np.pi, np.pi, (n, t.n_slots)), 0)
        p[:, sl, schema.CLASS] = np.where(on, t.code, 0)
    p[:, 1] = np.stack(
        [25 + rng.exponential(10, n), rng.uniform(-2, 2, n), rng.uniform(-3, 3, n), np.full(n, 2)], 1
    )
    return p


def outside_range(n: int = 40, seed: int = 7) -> np.ndarray:
    """Events pushed outside the input range (they saturate in the encoding)."""
    p = synthetic_particles(n, seed)
    p[: n // 2, 9, :] = [5000.0, 10.0, 1.0, 4]
    p[n // 2 :, 0, schema.PT] = 3000.0
    p[n // 2 :, 1, schema.ETA] = -10.0
    return p


@pytest.fixture(scope="module")
def background(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "background.h5"
    with h5py.File(path, "w") as f:
        f[schema.DATASET_PARTICLES] = synthetic_particles(N_EVENTS)
    return path


def teacher(n: int = N_EVENTS) -> np.ndarray:
    return np.random.default_rng(3).exponential(1.0, n)


def _train(name, quantization, background, out, epochs=2, **kw):
    cfg = {"batch_size": 256, "patience": 3}
    return train_model(name, quantization, background, out, config=cfg, epochs=epochs,
                       teacher_scores=teacher() if name == "student" else None, **kw)  # fmt: skip


def _check_reload_bit_identical(model_dir, tmp_path):
    x = np.concatenate([encoding.encode(synthetic_particles(300, 5)), encoding.encode(outside_range())])
    model = keras_io.load_model(model_dir)
    before = model.predict(x, verbose=0)
    copy = tmp_path / "copy.keras"
    keras_io.save_keras(model, copy)
    after = keras_io.load_keras(copy, keras_io.read_meta(model_dir)["quantization"]).predict(x, verbose=0)
    np.testing.assert_array_equal(before, after)
    return before


# -- configs ------------------------------------------------------------------------------------


def test_names():
    assert MODEL_NAMES == ("ae_ref", "ae_compact", "vae", "student")
    assert QUANTIZATIONS == ("hgq", "qkeras", "float")


def test_config_defaults_and_overrides(tmp_path):
    assert load_config("ae_compact", None) == AECompactConfig()
    cfg = load_config("ae_compact", {"hidden": [8], "bits": 6})
    assert cfg.hidden == (8,) and cfg.bits == 6
    path = tmp_path / "c.yaml"
    path.write_text("vae:\n  latent: 2\n  kl_weight: 0.5\n")
    assert load_config("vae", path).latent == 2


@pytest.mark.parametrize("bad", [{"nope": 1}, {"beta": 1e-5, "epochs": 3}])
def test_config_unknown_key(bad):
    with pytest.raises(ValueError, match="unknown key"):
        load_config("ae_ref", bad)


def test_config_rejects_bad_values_and_names():
    with pytest.raises(ValueError, match="bits"):
        load_config("student", {"bits": 40})
    with pytest.raises(ValueError, match="unknown model"):
        load_config("bdt", {})


# -- numpy scores -------------------------------------------------------------------------------


def test_ae_ref_score_masks_padding():
    p = synthetic_particles(50)
    x = encoding.encode(p)
    mask = schema.present(p)
    assert np.all(ae_ref_score(x, x, mask) == 0)
    r = x.copy()
    r[~np.repeat(mask, 3, axis=1)] += 5.0  # errors on padded slots are ignored
    assert np.all(ae_ref_score(x, r, mask) == 0)
    r = x.copy()
    r[:, 0] += 1.0  # MET pT error of 1 unit over 3 * n_present inputs
    np.testing.assert_allclose(ae_ref_score(x, r, mask), 1.0 / (3 * mask.sum(axis=1)))


def test_vae_kl_score():
    assert np.allclose(vae_kl_score(np.zeros((3, 2)), np.zeros((3, 2))), 0)
    assert np.allclose(vae_kl_score(np.ones((1, 2)), np.zeros((1, 2))), 1.0)


# -- float style --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_float_train_reload_score(name, background, tmp_path):
    d = _train(name, "float", background, tmp_path)
    assert d == tmp_path / f"{name}-float"
    meta = keras_io.read_meta(d)
    assert meta["model"] == name and meta["framework"] == "keras" and meta["quantization"] == "float"
    assert meta["n_train"] + meta["n_val"] == N_EVENTS and meta["metrics"]["epochs_run"] == 2
    assert len(meta["data_sha256"]) == 64
    out = _check_reload_bit_identical(d, tmp_path)
    p = synthetic_particles(300, 5)
    s = score(d, p)
    assert s.shape == (300,) and s.dtype == np.float64 and np.all(np.isfinite(s))
    np.testing.assert_allclose(
        s, postprocess(name, out[:300], p), rtol=1e-4, atol=1e-6
    )  # batching may reorder float sums
    if name == "vae":
        assert score(d, p, variant="kl").shape == (300,)


def test_float_deterministic_and_resume(background, tmp_path):
    a = _train("ae_compact", "float", background, tmp_path / "a")
    b = _train("ae_compact", "float", background, tmp_path / "b")
    p = synthetic_particles(200, 9)
    np.testing.assert_array_equal(score(a, p), score(b, p))
    wa, wb = keras_io.load_model(a).get_weights(), keras_io.load_model(b).get_weights()
    for u, v in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(u, v)
    # resume: 1 epoch, then continue to 3 from the checkpoint
    c = _train("ae_compact", "float", background, tmp_path / "c", epochs=1)
    c = _train("ae_compact", "float", background, tmp_path / "c", epochs=3, resume=True)
    m = keras_io.read_meta(c)["metrics"]
    assert m["epochs_total"] == 3 and m["epochs_run"] == 2
    state = json.loads((c / "checkpoints" / "state.json").read_text())
    assert len(state["history"]) == 3


def test_score_in_subprocess(background, tmp_path):
    d = _train("student", "float", background, tmp_path, epochs=1)
    p = synthetic_particles(100, 11)
    np.testing.assert_array_equal(score_in_subprocess(d, p), score(d, p))


# -- HGQ style ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hgq_dirs(background, tmp_path_factory):
    out = tmp_path_factory.mktemp("hgq")
    return {name: _train(name, "hgq", background, out, epochs=1) for name in MODEL_NAMES}


@pytest.mark.slow
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_hgq_train_reload_score(name, hgq_dirs, tmp_path):
    d = hgq_dirs[name]
    meta = keras_io.read_meta(d)
    assert meta["metrics"]["ebops"] > 0
    assert meta["input_types"][:3] == ["ap_ufixed<12,5,AP_RND,AP_SAT>"] + ["ap_fixed<8,3,AP_RND,AP_SAT>"] * 2
    out = _check_reload_bit_identical(d, tmp_path)
    assert np.all(np.isfinite(out))
    # the input quantizer is the identity on encoded inputs
    model = keras_io.load_model(d)
    x = encoding.encode(synthetic_particles(100, 2))
    iq = model.get_layer("input_quantizer")
    np.testing.assert_array_equal(np.asarray(iq(x)), x)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_hgq_background_never_saturates_a_learned_range(name, hgq_dirs, background):
    """No top-of-range pile-up: after training no learned SAT datalane clips a background event, and the
    deployed score of held-out background has no ties at its maximum."""
    import keras

    from l1ad.evaluation.metrics import tail_health
    from l1ad.events.io import read_events
    from l1ad.quantization.hgq_ranges import saturating_layers

    d = hgq_dirs[name]
    record = keras_io.read_meta(d)["range_calibration"]
    assert record["events"] == N_EVENTS and record["layers"]
    model = keras_io.load_model(d)
    layers = saturating_layers(model)
    assert {c["layer"] for c in record["layers"]} >= {layer.name for layer in layers}
    x = encoding.encode(read_events(background))
    probe = keras.Model(model.inputs[0], [layer.input for layer in layers])
    outs = probe.predict(x, verbose=0)
    for layer, out in zip(layers, outs if isinstance(outs, list) else [outs], strict=True):
        q = layer.iq.quantizer
        top = np.asarray(keras.ops.convert_to_numpy(q.max)).reshape(1, -1)
        bottom = np.asarray(keras.ops.convert_to_numpy(q.min)).reshape(1, -1)
        assert np.all(out <= top) and np.all(out >= bottom), layer.name
    if name != "ae_ref":  # the others output their score
        held_out = score(d, synthetic_particles(3000, 21))
        assert tail_health(held_out)["n_at_max"] <= 1


@pytest.mark.slow
# Latency strategy for every model type. (The distributed-arithmetic path is tested on small models
# in tests/test_firmware_*.py and by the default DA target: da4ml's retiming of these 1-epoch models,
# whose bit widths HGQ has not shrunk yet, takes many minutes.)
@pytest.mark.parametrize("name,strategy", [(n, "Latency") for n in MODEL_NAMES])
def test_hgq_firmware_bit_exact_every_model(name, strategy, hgq_dirs, tmp_path):
    """Every L1 model type converts with hls4ml and its C-sim equals the QAT model, overflow included."""
    if shutil.which("g++") is None:
        pytest.skip("hls4ml C simulation needs g++")
    from l1ad.emulation.csim import CSim
    from l1ad.hls.build import build_project
    from l1ad.hls.target import FirmwareTarget
    from l1ad.models.keras.score import keras_model_for_firmware

    fw = keras_model_for_firmware(hgq_dirs[name])
    target = FirmwareTarget(
        name=f"t_{name}_{strategy[:3].lower()}", model=str(hgq_dirs[name]), strategy=strategy
    )
    project = build_project(target, tmp_path / "prj", model=fw.model).project_dir
    x = np.concatenate([encoding.encode(outside_range()), encoding.encode(synthetic_particles(500, 12))])
    ref = fw.model.predict(x, verbose=0)
    got = CSim(project, build_dir=tmp_path / "build").predict(x)
    np.testing.assert_array_equal(got.reshape(ref.shape), ref)
    if ref.shape[1] == 1 and name != "student":  # in-model scores: saturated events are anomalous
        assert ref[:20].min() > np.median(ref[40:])


def test_qkeras_refused_after_native(tmp_path):
    """This process used native HGQ2 (or will): importing the shim here must be refused when it did."""
    code = (
        "import sys\n"
        "import l1ad.quantization.hgq_style as h; h.mark_native_used();\n"
        "from l1ad.quantization.qkeras_style import import_shim\n"
        "try:\n    import_shim()\nexcept RuntimeError as e:\n    print('SHIM REFUSED:', e)\n"
        "print('SHIM LOADED' if 'qkeras.qlayers' in sys.modules else 'SHIM NOT LOADED')\n"
        "import qkeras.qlayers\n"
        "try:\n    h.check_native_ok()\nexcept RuntimeError as e:\n    print('NATIVE REFUSED:', e)\n"
        "else:\n    print('NATIVE ALLOWED')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, proc.stderr[-2000:]
    # 1. the shim is refused once native HGQ2 was used, with the reason, and is not imported
    shim = [line for line in lines if line.startswith("SHIM")]
    assert shim[0].startswith("SHIM REFUSED:") and "native HGQ2 models were built or loaded" in shim[0], lines
    assert shim[1] == "SHIM NOT LOADED", lines
    # 2. after the shim is imported anyway, native HGQ2 is refused in turn
    native = [line for line in lines if line.startswith("NATIVE")]
    assert len(native) == 1 and native[0].startswith("NATIVE REFUSED:") and "qkeras.qlayers" in native[0], (
        lines
    )


@pytest.mark.slow
def test_registry_loaded_quantized_model_scores_in_its_own_worker(hgq_dirs):
    """The service's loader: a quantized model is scored in a long-lived worker process, equal to the
    registry's one-shot score (a fresh process per call), and float models score in this process."""
    from l1ad.models import registry

    p = synthetic_particles(300, 21)
    loaded = registry.load(hgq_dirs["ae_compact"])
    try:
        assert loaded.score_labels == ("ae_compact/hgq",)
        assert type(loaded._keras).__name__ == "IsolatedKerasScorer"
        first = loaded.score(p)["ae_compact/hgq"]
        np.testing.assert_array_equal(first, registry.score(hgq_dirs["ae_compact"], p)["ae_compact/hgq"])
        np.testing.assert_array_equal(loaded.score(p[:5])["ae_compact/hgq"], first[:5])
    finally:
        loaded.close()


@pytest.mark.slow
def test_vae_posterior_does_not_collapse(tmp_path):
    """The VAE score is not constant: with the default beta every latent mean varies over background and
    the deployed (quantized) sum(mu**2) takes many values. (beta = 1, the old default, fails both here:
    var(mu) ~ 1e-3 per unit and ~50 distinct scores in 2000 events.)"""
    path = tmp_path / "bkg.h5"
    with h5py.File(path, "w") as f:
        f[schema.DATASET_PARTICLES] = synthetic_particles(3000)
    d = train_model("vae", "hgq", path, tmp_path, config={"batch_size": 64, "patience": 5}, epochs=6, seed=1)
    events = synthetic_particles(2000, 9)
    mu, _ = keras_io.load_model(d, which="aux").predict(encoding.encode(events), verbose=0)
    assert np.all(mu.var(axis=0) > 0.05), mu.var(axis=0)
    s = score(d, events)
    assert np.unique(s).size > 0.5 * s.size
