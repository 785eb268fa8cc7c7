"""Pythia 8 engine: settings, determinism, resumable chunks and the CLI (needs the ``pythia`` extra).

Without pythia8mc/fastjet these tests skip with the reason; the missing-extra error is tested always.
"""

from __future__ import annotations

import builtins
import json

import numpy as np
import pytest

from l1ad.events import schema
from l1ad.events.pythia import processes as cards


@pytest.fixture
def pythia():
    pytest.importorskip("fastjet", reason="the optional extra 'pythia' (fastjet) is not installed")
    return pytest.importorskip("pythia8mc", reason="the optional extra 'pythia' (pythia8mc) is not installed")


def test_missing_extra_names_it(monkeypatch):
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name in ("pythia8mc", "fastjet"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    from l1ad.events.pythia import require_pythia

    with pytest.raises(ImportError, match=r"pip install 'l1ad\[pythia\]'"):
        require_pythia()


def test_settings_are_complete_and_checked():
    s = cards.settings("Ato4l", 5, mpi=False)
    assert "HiggsA3:coup2Z = 1" in s and "PartonLevel:MPI = off" in s and "Random:seed = 5" in s
    assert "PartonLevel:MPI = on" in cards.settings("minbias", 5, mpi=False)
    with pytest.raises(ValueError, match="unknown Pythia process"):
        cards.settings("nope", 1, True)
    with pytest.raises(ValueError, match="seed"):
        cards.settings("W", 0, True)


@pytest.mark.parametrize("process", cards.PROCESSES)
def test_every_process_initializes(pythia, process):
    py = cards.make_pythia(process, 3, mpi=False)
    assert py.next()


def test_chunks_are_deterministic_valid_and_resumable(pythia, tmp_path, caplog):
    from l1ad.events.io import read_events
    from l1ad.events.pythia import run
    from l1ad.events.validate import validate

    kw = {"mpi": False, "chunk_size": 10, "pool_size": 20}
    rep = run.generate_processes({"W": 15, "Z": 5}, tmp_path / "a", 4, **kw)
    assert rep["W"]["events"] == 15 and rep["W"]["generated"] >= 15 and rep["W"]["events_per_s"] > 0
    w = read_events(tmp_path / "a" / "W.h5")
    validate(w)
    assert w.shape == (15, 19, 4)
    assert (schema.leading_lepton_pt(w) > schema.LEPTON_TRIGGER_PT).all()
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert sorted(manifest["chunks"]) == ["W_0", "W_1", "Z_0"]
    # same seed in another directory: identical events; a rerun skips every finished chunk
    run.generate_processes({"W": 15}, tmp_path / "b", 4, **kw)
    np.testing.assert_array_equal(read_events(tmp_path / "b" / "W.h5"), w)
    caplog.set_level("INFO")
    run.generate_processes({"W": 15, "Z": 5}, tmp_path / "a", 4, **kw)
    assert "0 chunks to run (3 already done)" in caplog.text
    with pytest.raises(ValueError, match="config"):
        run.generate_processes({"W": 15}, tmp_path / "a", 5, **kw)


def test_cli_generate_pythia(pythia, tmp_path):
    from l1ad.cli.main import main
    from l1ad.events.io import count_events

    out = tmp_path / "d"
    args = ["data", "generate", "--engine", "pythia", "--no-mpi", "--out", str(out)]
    assert main([*args, "--n-background", "22", "--n-signal", "3", "--chunk-size", "50"]) == 0
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["background_counts"] == {"W": 13, "QCD": 7, "Z": 2}
    assert count_events(out / "background_train.h5") == 10 and count_events(out / "signal_Ato4l.h5") == 3
    assert (out / "summary.json").exists()


def test_tower_binning_equals_numpy_histogram2d():
    """The emulation's fast 2-D binning is bin for bin ``np.histogram2d`` (edges, outside, last edge)."""
    from l1ad.events.pythia import detector as det

    rng = np.random.default_rng(5)
    n = 20_000
    eta = np.concatenate([rng.uniform(-5.5, 5.5, n), det._ETA_EDGES[[0, 7, -1]], [5.2, -5.01]])
    phi = np.concatenate([rng.uniform(-np.pi, np.pi, n), det._PHI_EDGES[[0, 3, -1]], [0.0, 1.0]])
    w = rng.exponential(2.0, len(eta))
    ref, _, _ = np.histogram2d(eta, phi, bins=(det._ETA_EDGES, det._PHI_EDGES), weights=w)
    np.testing.assert_array_equal(det._bin2d(eta, phi, det._ETA_EDGES, det._PHI_EDGES, w), ref)
    rho_ref, _, _ = np.histogram2d(
        eta, phi, bins=(det.RHO_ETA_BINS, det.RHO_PHI_BINS), range=((-4.0, 4.0), (-np.pi, np.pi)), weights=w
    )
    np.testing.assert_array_equal(det._bin2d(eta, phi, det._RHO_ETA_EDGES, det._RHO_PHI_EDGES, w), rho_ref)


def test_pileup_overlay_rotates_and_mirrors_a_pool_event():
    """Each pileup draw is the pool event rotated in phi (and mirrored along the beam half the time):
    pT and |eta| per particle are unchanged, phi moves by the angle, eta flips sign with ``flip``.
    A one-event pool still gives uniformly distributed azimuths (before the fix every draw of a pool
    event put its jets at the same phi)."""
    from l1ad.events.pythia.detector import kinematics, overlay, pileup_draws

    rng = np.random.default_rng(3)
    ev = np.c_[np.full(50, 211.0), rng.normal(0, 3, (50, 3)), np.zeros(50)]
    ev[:, 4] = np.linalg.norm(ev[:, 1:4], axis=1) + 0.2
    pt, eta, phi = kinematics(ev)
    for angle, flip in ((0.7, False), (-2.9, True)):
        pt2, eta2, phi2 = kinematics(overlay(ev, angle, flip))
        np.testing.assert_allclose(pt2, pt, rtol=1e-12)
        np.testing.assert_allclose(eta2, -eta if flip else eta, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(np.angle(np.exp(1j * (phi2 - phi - angle))), 0.0, atol=1e-9)
        np.testing.assert_array_equal(overlay(ev, angle, flip)[:, 4], ev[:, 4])
    idx, angles, flips = pileup_draws(np.random.default_rng(1), 1, 20_000)
    assert (idx == 0).all() and 0.45 < flips.mean() < 0.55
    counts = np.histogram(angles, 12, (-np.pi, np.pi))[0]
    assert np.abs(counts - 20_000 / 12).max() < 5 * np.sqrt(20_000 / 12)
    a, b = pileup_draws(np.random.default_rng(5), 400, 30), pileup_draws(np.random.default_rng(5), 400, 30)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
