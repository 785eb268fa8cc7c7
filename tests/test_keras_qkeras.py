"""QKeras-style (HGQ2 shim) models, tested in a subprocess.

Importing ``qkeras.qlayers`` rewrites HGQ2's native layer classes process-wide, so everything here runs
in a fresh interpreter (``sys.executable``) and the pytest process never imports the shim.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent(
    r"""
    import importlib.util, sys
    from pathlib import Path
    import h5py, numpy as np

    spec = importlib.util.spec_from_file_location("tkm", sys.argv[1])
    tkm = importlib.util.module_from_spec(spec); spec.loader.exec_module(tkm)  # also calls fast_graphs()
    from l1ad.events import encoding, schema
    from l1ad.models.keras import storage as keras_io
    from l1ad.models.keras.configs import MODEL_NAMES
    from l1ad.models.keras.score import score
    from l1ad.models.keras.train import train_model
    import l1ad.quantization.hgq_style as hgq_style

    tmp = Path(sys.argv[2])
    bg = tmp / "bg.h5"
    with h5py.File(bg, "w") as f:
        f[schema.DATASET_PARTICLES] = tkm.synthetic_particles(tkm.N_EVENTS)
    x = np.concatenate([encoding.encode(tkm.outside_range()), encoding.encode(tkm.synthetic_particles(400, 12))])
    for name in MODEL_NAMES:
        d = train_model(name, "qkeras", bg, tmp, config={"batch_size": 256, "bits": 6}, epochs=1,
                        teacher_scores=tkm.teacher() if name == "student" else None)
        meta = keras_io.read_meta(d)
        assert meta["quantization"] == "qkeras" and meta["config"]["bits"] == 6
        tkm._check_reload_bit_identical(d, tmp)
        s = score(d, tkm.synthetic_particles(50, 4))
        assert s.shape == (50,) and np.all(np.isfinite(s))
        model = keras_io.load_model(d)
        np.testing.assert_array_equal(np.asarray(model.get_layer("input_quantizer")(x)), x)
        print("ok", name)
    assert hgq_style.qkeras_imported()
    try:
        hgq_style.check_native_ok()
        raise AssertionError("native HGQ2 must be refused after the shim was imported")
    except RuntimeError:
        print("native refused")

    import hls4ml
    model = keras_io.load_model(tmp / "ae_compact-qkeras")
    cfg = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vitis")
    cfg["Model"]["Strategy"] = "Latency"
    hm = hls4ml.converters.convert_from_keras_model(model, hls_config=cfg, output_dir=str(tmp / "hls"),
                                                    backend="Vitis", io_type="io_parallel")
    hm.compile()
    ref = model.predict(x, verbose=0)
    out = hm.predict(x).reshape(ref.shape)
    print("mismatches", int(np.sum(out != ref)))
    np.testing.assert_array_equal(out, ref)
    print("hls4ml bit-exact")
    """
)


_STATE: dict = {}


def start_background() -> subprocess.Popen:
    """Start the subprocess once, when the test is selected (``conftest.py`` calls this after
    collection so that it runs beside the in-process tests on the 2 cores); never at import."""
    if "proc" not in _STATE:
        _STATE["tmp"] = tempfile.TemporaryDirectory(prefix="l1ad_qkeras_test_")
        # (The C simulation needs g++, which .ci/run installs: no silent skip.)
        _STATE["proc"] = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(Path(__file__).with_name("test_keras_models.py")), _STATE["tmp"].name],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    return _STATE["proc"]


@pytest.mark.slow
def test_qkeras_style_in_subprocess():
    proc = start_background()
    try:
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
        _STATE["tmp"].cleanup()
    assert proc.returncode == 0, stdout[-3000:] + stderr[-6000:]
    for name in ("ae_ref", "ae_compact", "vae", "student"):
        assert f"ok {name}" in stdout
    assert "native refused" in stdout
    assert "mismatches 0" in stdout and "hls4ml bit-exact" in stdout
