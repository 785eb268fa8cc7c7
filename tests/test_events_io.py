"""Reading, writing and validating ADC2021-layout files."""

from __future__ import annotations

import hashlib
import math

import h5py
import numpy as np
import pytest
from conftest import make_particles

from l1ad.events import io, schema, validate


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_round_trip_and_layout(tmp_path, particles):
    path = io.write_events(tmp_path / "ev.h5", particles)
    back = io.read_events(path)
    np.testing.assert_array_equal(back, particles)
    with h5py.File(path) as f:
        assert f["Particles"].shape == (len(particles), 19, 4)
        assert [s.decode() for s in f["Particles_Names"][()]] == list(schema.FEATURE_NAMES)
        assert [s.decode() for s in f["Particles_Classes"][()]] == list(schema.CLASS_LABELS)
    assert io.count_events(path) == len(particles)


def test_same_content_same_bytes(tmp_path, particles):
    a = io.write_events(tmp_path / "a.h5", particles)
    b = io.write_events(tmp_path / "b.h5", particles)
    assert _sha(a) == _sha(b)


def test_foreign_float64_file_with_extra_datasets_loads(tmp_path, particles):
    """A file written by another program, as in the public ADC2021 release (float64, EvtId)."""
    path = tmp_path / "adc2021_like.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("Particles", data=particles.astype(np.float64))
        f.create_dataset(
            "Particles_Classes",
            data=np.array([b"MET_class_1", b"Four_Ele_class_2", b"Four_Mu_class_3", b"Ten_Jet_class_4"]),
        )
        f.create_dataset("Particles_Names", data=np.array([b"Pt", b"Eta", b"Phi", b"Class"]))
        f.create_dataset("EvtId", data=np.arange(len(particles)))
    back = io.read_events(path)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, particles.astype(np.float64).astype(np.float32))


def test_chunked_reading_covers_every_row_once(tmp_path, particles):
    path = io.write_events(tmp_path / "ev.h5", particles)
    starts, blocks = zip(*io.iter_chunks(path, chunk_size=300), strict=True)
    assert starts == tuple(range(0, len(particles), 300))
    assert max(len(b) for b in blocks) == 300
    np.testing.assert_array_equal(np.concatenate(blocks), particles)
    np.testing.assert_array_equal(io.read_events(path, start=100, stop=250), particles[100:250])


def test_event_writer_appends_atomically(tmp_path, particles):
    path = tmp_path / "w.h5"
    with io.EventWriter(path) as w:
        w.append(particles[:500])
        assert not path.exists(), "nothing visible before close"
        w.append(particles[500:])
    np.testing.assert_array_equal(io.read_events(path), particles)


def test_failed_write_leaves_nothing(tmp_path, particles):
    path = tmp_path / "w.h5"
    with pytest.raises(RuntimeError), io.EventWriter(path) as w:
        w.append(particles[:10])
        raise RuntimeError("generator crashed")
    assert list(tmp_path.iterdir()) == []


def test_invalid_write_is_refused_and_leaves_old_file(tmp_path, particles):
    path = io.write_events(tmp_path / "ev.h5", particles)
    before = _sha(path)
    bad = particles.copy()
    bad[5, 0, schema.PT] = np.nan
    with pytest.raises(validate.EventFileError, match="row 5"):
        io.write_events(path, bad)
    assert _sha(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ev.h5"]


CORRUPTIONS = {
    "nonfinite": (lambda p: p.__setitem__((17, 3, schema.ETA), np.inf), "non-finite", 3),
    "negative_pt": (lambda p: p.__setitem__((17, 9, schema.PT), -4.0), "negative pT", 9),
    "phi_range": (lambda p: p.__setitem__((17, 0, schema.PHI), 3.5), "outside \\[-pi, pi\\]", 0),
    "eta_acceptance": (lambda p: p.__setitem__((17, 5, slice(None)), [30.0, 2.5, 0.0, 3]), "acceptance", 5),
    "class_code": (
        lambda p: p.__setitem__((17, 9, slice(None)), [30.0, 0.1, 0.0, 2]),
        "class 2 in a slot of class 4",
        9,
    ),
    "padding": (lambda p: p.__setitem__((17, 18, slice(None)), [0.0, 0.7, 0.0, 0]), "padded slot", 18),
    "met_missing": (lambda p: p.__setitem__((17, 0, schema.CLASS), 0), None, 0),
}


@pytest.mark.parametrize("rule", list(CORRUPTIONS))
def test_each_rule_names_file_dataset_row_slot(tmp_path, rule):
    p = make_particles(40, seed=1)
    corrupt, text, slot = CORRUPTIONS[rule]
    corrupt(p)
    masks = validate.find_problems(p)
    assert np.flatnonzero(masks[rule]).tolist() == [17]
    path = tmp_path / "bad.h5"
    io.write_events(path, p, check=False)
    with pytest.raises(validate.EventFileError) as e:
        io.read_events(path)
    msg = str(e.value)
    assert str(path) in msg and "dataset 'Particles'" in msg and "row 17" in msg and f"slot {slot}" in msg
    if text:
        import re

        assert re.search(text, msg), msg


def test_bad_files(tmp_path):
    with pytest.raises(validate.EventFileError, match="no such file"):
        io.read_events(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(validate.EventFileError, match="not a readable HDF5"):
        io.read_events(tmp_path / "junk.h5")
    with h5py.File(tmp_path / "nop.h5", "w") as f:
        f["Other"] = np.zeros(3)
    with pytest.raises(validate.EventFileError, match="missing dataset 'Particles'"):
        io.read_events(tmp_path / "nop.h5")
    with h5py.File(tmp_path / "shape.h5", "w") as f:
        f["Particles"] = np.zeros((3, 18, 4))
    with pytest.raises(validate.EventFileError, match=r"shape \(3, 18, 4\)"):
        io.read_events(tmp_path / "shape.h5")


def test_repair_wraps_phi_and_zeroes_padding():
    p = make_particles(10, seed=2)
    p[2, 0, schema.PHI] = math.pi + 0.5
    p[3, 18] = [0.0, 1.0, 2.0, 0]
    assert not validate.valid_rows(p)[[2, 3]].any()
    fixed = validate.repair(p)
    assert validate.valid_rows(fixed).all()
    assert fixed[2, 0, schema.PHI] == pytest.approx(-math.pi + 0.5, abs=1e-6)
    assert (fixed[3, 18] == 0).all()
    np.testing.assert_array_equal(np.delete(fixed, [2, 3], axis=0), np.delete(p, [2, 3], axis=0))
