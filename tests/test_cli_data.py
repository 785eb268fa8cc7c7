"""``l1ad data``: inspect, validate and generate from the command line."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from conftest import make_particles

from l1ad.cli.main import main
from l1ad.events import io, schema


def test_inspect_reports_counts_and_occupancy(tmp_path, capsys, particles):
    path = io.write_events(tmp_path / "ev.h5", particles)
    assert main(["data", "inspect", str(path), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["n_events"] == len(particles) and s["valid"]
    assert s["occupancy"]["met"] == 1.0
    assert s["occupancy"]["e1"] == np.mean(particles[:, 1, schema.CLASS] != 0)
    assert s["objects"]["jet"]["objects"] == int((particles[:, 9:, schema.CLASS] != 0).sum())
    assert s["objects"]["mu"]["eta"]["max"] <= 2.1
    assert main(["data", "inspect", str(path)]) == 0
    assert "2000 events, valid" in capsys.readouterr().out


def test_inspect_exits_nonzero_on_invalid_file(tmp_path, capsys):
    p = make_particles(50, seed=3)
    p[11, 2, schema.PT] = -1.0
    path = io.write_events(tmp_path / "bad.h5", p, check=False)
    assert main(["data", "inspect", str(path), "--json"]) == 1
    s = json.loads(capsys.readouterr().out)
    assert not s["valid"] and s["invalid_rows_by_rule"]["negative_pt"] == 1
    (tmp_path / "junk.h5").write_bytes(b"junk")
    assert main(["data", "inspect", str(tmp_path / "junk.h5")]) == 1
    assert "not a readable HDF5" in capsys.readouterr().out


@pytest.mark.allow_error_logs
def test_validate_drop_invalid_reports_and_keeps_the_rest(tmp_path, capsys):
    p = make_particles(300, seed=4)
    p[[5, 77], 9] = [40.0, 4.5, 0.0, schema.JET_CLASS]  # beyond jet acceptance
    p[100, 0, schema.PHI] = 4.0  # repairable
    src = io.write_events(tmp_path / "src.h5", p, check=False)
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    assert main(["data", "validate", str(src)]) == 2  # clear error, non-zero exit
    assert main(["data", "validate", str(src), "--drop-invalid", "--out", str(tmp_path / "clean.h5")]) == 0
    assert "kept 297 events, dropped 3 invalid rows" in capsys.readouterr().out
    np.testing.assert_array_equal(io.read_events(tmp_path / "clean.h5"), np.delete(p, [5, 77, 100], axis=0))
    assert main(["data", "validate", str(src), "--repair", "--out", str(tmp_path / "fixed.h5")]) == 0
    assert "kept 298 events, dropped 2 invalid rows" in capsys.readouterr().out
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before, "the input is never modified"


def test_generate_is_deterministic_and_complete(tmp_path):
    args = ["--n-background", "11000", "--n-signal", "500"]
    for d, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        assert main(["data", "generate", "--out", str(tmp_path / d), "--seed", seed, *args]) == 0
    names = sorted(p.name for p in (tmp_path / "a").glob("*.h5"))
    assert names == sorted(
        [f"background_{s}.h5" for s in schema.BACKGROUND_SPLITS]
        + [f"signal_{n}.h5" for n in schema.SIGNAL_NAMES]
    )
    sha = {d: {n: hashlib.sha256((tmp_path / d / n).read_bytes()).hexdigest() for n in names} for d in "abc"}
    assert sha["a"] == sha["b"], "same seed, same bytes"
    assert all(sha["a"][n] != sha["c"][n] for n in names), "another seed, other events"
    assert [io.count_events(tmp_path / "a" / f"background_{s}.h5") for s in ("train", "val", "test")] == [
        5000,
        1000,
        5000,
    ]
    assert io.count_events(tmp_path / "a" / "signal_Ato4l.h5") == 500
    manifest = json.loads((tmp_path / "a" / "dataset.json").read_text())
    assert manifest["seed"] == 5 and sum(f["n_events"] for f in manifest["files"]) == 13000
