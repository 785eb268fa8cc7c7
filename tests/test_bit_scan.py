"""``l1ad scan``: the bit-width scan trains, scores and tabulates every width against the float model."""

from __future__ import annotations

import json

import pytest
from conftest import make_particles

from l1ad.cli.main import main
from l1ad.evaluation.bit_scan import scan_config
from l1ad.events import io, schema


def test_scan_config_keeps_widths_valid():
    assert scan_config(2) == {"bits": 2, "weight_integer": 0, "act_integer": 1}
    assert scan_config(16) == {"bits": 16, "weight_integer": 0, "act_integer": 3}


@pytest.mark.slow
def test_scan_end_to_end(tmp_path):
    train = io.write_events(tmp_path / "train.h5", make_particles(3000, seed=1))
    test = io.write_events(tmp_path / "test.h5", make_particles(3000, seed=2))
    sig = make_particles(500, seed=3)
    sig[:, 5] = [150.0, 0.1, 0.5, schema.MUON_CLASS]
    sig_path = io.write_events(tmp_path / "sig.h5", sig)
    out = tmp_path / "scan"
    argv = [
        "scan",
        "--model",
        "ae_compact",
        "--bits",
        "3",
        "8",
        "--background",
        str(train),
        "--test",
        str(test),
    ]
    assert main([*argv, "--signal", f"hardmu={sig_path}", "--out", str(out), "--epochs", "1"]) == 0
    result = json.loads((out / "scan.json").read_text())
    assert set(result["bits"]) == {"3", "8"} and result["n_background"] == 3000
    for per in [result["float"], *result["bits"].values()]:
        assert 0.0 <= per["hardmu"]["auroc"] <= 1.0
    # a 150 GeV muon lies far outside this background's muon spectrum: the float and the 8-bit models,
    # trained for one epoch, must already rank it above background, well beyond the errors
    for per in (result["float"], result["bits"]["8"]):
        m = per["hardmu"]
        assert m["auroc"] > 0.8 and m["auroc"] - 0.5 > 10 * m["auroc_err"], m
    assert result["bits"]["3"]["hardmu"] != result["bits"]["8"]["hardmu"]  # two trainings, two results
    meta3 = json.loads((out / "bits3" / "ae_compact-qkeras" / "meta.json").read_text())
    assert meta3["config"]["bits"] == 3 and meta3["config"]["act_integer"] == 2
    assert (out / "scan.png").read_bytes()[:4] == b"\x89PNG"
    assert "| 8 |" in (out / "scan.md").read_text()
