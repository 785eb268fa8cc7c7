"""End to end: ``l1ad pipeline --profile quick`` runs every stage on small data, as ``make run`` does."""

from __future__ import annotations

import json

import pytest

from l1ad.cli.main import main


@pytest.mark.slow
def test_quick_pipeline_end_to_end(tmp_path):
    run = tmp_path / "run"
    assert main(["pipeline", "--profile", "quick", "--out", str(run), "--seed", "3"]) == 0

    data = json.loads((run / "data" / "dataset.json").read_text())
    assert data["seed"] == 3 and (run / "data" / "distributions.png").exists()

    ev = json.loads((run / "evaluation.json").read_text())
    expected = {
        "ae_ref/float", "ae_ref/hgq", "ae_compact/float", "ae_compact/hgq", "ae_compact/qkeras",
        "vae/float", "vae/hgq", "student/hgq", "ebm/float", "ebm/float:score_norm",
        "ebm/float:multiscale_gmm", "iforest", "ht", "met", "lead_lepton_pt",
    }  # fmt: skip
    assert set(ev["models"]) == expected
    for label, per_signal in ev["models"].items():
        assert set(per_signal) == {"Ato4l", "leptoquark", "hToTauTau", "hChToTauNu"}, label
        for m in per_signal.values():
            assert 0.0 <= m["auroc"] <= 1.0 and m["auroc_err"] > 0
    assert set(ev["float_vs_quantized"]) >= {"ae_compact/hgq", "ae_compact/qkeras", "ae_ref/hgq", "vae/hgq"}
    student = json.loads((run / "student-hgq" / "meta.json").read_text())
    assert student["model"] == "student"

    project = run / "firmware" / "ae_compact_vu13p"
    meta = json.loads((project / "metadata.json").read_text())
    assert meta["part"] == "xcvu13p-flga2577-2-e"
    emulation = json.loads((project / "emulation.json").read_text())
    assert emulation["n_events"] == 20000 and emulation["n_mismatch"] == 0, emulation
    report = json.loads((project / "report.json").read_text())
    assert report["sources"], "the report names where its numbers come from"
    assert (run / "plots" / "roc_Ato4l.png").exists()
