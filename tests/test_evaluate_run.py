"""``l1ad train --model iforest`` and ``l1ad evaluate`` on small files: table shape and content."""

from __future__ import annotations

import json

import pytest
from conftest import make_particles

from l1ad.cli.main import main
from l1ad.events import io, schema


def _signal(n: int, seed: int):
    """Background-like events with a hard extra muon and large MET: an obvious anomaly."""
    p = make_particles(n, seed=seed)
    p[:, 0, schema.PT] += 150.0
    p[:, 5] = [120.0, 0.2, 1.0, schema.MUON_CLASS]
    return p


def test_evaluate_writes_table_json_and_plots(tmp_path):
    train = io.write_events(tmp_path / "bkg_train.h5", make_particles(3000, seed=1))
    test = io.write_events(tmp_path / "bkg_test.h5", make_particles(20000, seed=2))
    sig = io.write_events(tmp_path / "sig.h5", _signal(2000, seed=3))
    run = tmp_path / "run"
    assert (
        main(["train", "--model", "iforest", "--background", str(train), "--out", str(run), "--seed", "3"])
        == 0
    )
    meta = json.loads((run / "iforest" / "meta.json").read_text())
    assert meta["framework"] == "sklearn" and meta["n_train"] == 3000 and len(meta["data_sha256"]) == 64

    assert main(["evaluate", str(run), "--background", str(test), "--signal", f"hardmu={sig}"]) == 0
    result = json.loads((run / "evaluation.json").read_text())
    assert result["n_background"] == 20000
    assert set(result["models"]) == {"iforest", "ht", "met", "lead_lepton_pt"}
    m = result["models"]["met"]["hardmu"]
    for key in (
        "auroc",
        "auroc_err",
        "auprc",
        "tpr_at_fpr_1e-4",
        "tpr_at_fpr_1e-5",
        "eff_at_rejection_0.9999",
    ):
        assert key in m
    assert m["auroc"] > 0.95  # +150 GeV MET is an easy cut
    assert m["tpr_at_fpr_1e-5"] is None, "1e-5 is not resolved by 20k background events"
    assert result["models"]["iforest"]["hardmu"]["auroc"] > 0.65  # better than chance
    rates = result["rates"]["met"]
    assert [r["target_rate_khz"] for r in rates] == [1.0, 5.0, 10.0, 50.0]
    assert not rates[0]["resolved"] and rates[3]["resolved"]  # 50 kHz = 1.25e-3 of 40 MHz: resolved
    md = (run / "evaluation.md").read_text()
    assert "## hardmu" in md and "| met |" in md
    assert (run / "plots" / "roc_hardmu.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "plots" / "scores_iforest.png").exists()


@pytest.mark.allow_error_logs
def test_evaluate_refuses_a_run_dir_without_models(tmp_path, caplog):
    test = io.write_events(tmp_path / "bkg.h5", make_particles(100, seed=1))
    (tmp_path / "empty").mkdir()
    assert (
        main(["evaluate", str(tmp_path / "empty"), "--background", str(test), "--signal", f"s={test}"]) == 2
    )
    assert "no trained models" in caplog.text
    caplog.clear()


def test_roc_groups_l1_hlt_baselines() -> None:
    from pathlib import Path

    from l1ad.evaluation.evaluate import roc_groups
    from l1ad.models.registry import TrainedModel

    models = [TrainedModel(Path("a"), "ae_compact", "hgq", "keras"), TrainedModel(Path("b"), "ae_compact", "float", "keras"),
              TrainedModel(Path("c"), "ebm", "float", "torch"), TrainedModel(Path("d"), "iforest", "float", "sklearn")]  # fmt: skip
    labels = ["ae_compact/hgq", "ae_compact/float", "ebm/float", "ebm/float:score_norm", "iforest", "ht"]
    assert roc_groups(models, labels) == {
        "L1 (quantized)": ["ae_compact/hgq"],
        "HLT (full precision)": ["ae_compact/float", "ebm/float", "ebm/float:score_norm"],
        "baselines": ["iforest", "ht"],
    }
