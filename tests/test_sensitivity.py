"""On the default (generated) data, the deployed QAT model sees A->4l better than the HT cut.

Since the fast generator makes non-prompt and fake leptons (three-lepton background events exist, as in
Pythia), A->4l is no longer trivially separated and IsolationForest has the higher AUROC on it (0.78 vs
0.74 for ae_compact/hgq in `make run`; the L1-model issue owns that gap), so this test no longer claims a
win over IsolationForest. At this test's size (5k signal events) the TPR at 1e-4 rests on a handful of
background events and is not asserted either.
"""

from __future__ import annotations

import json

import pytest

from l1ad.cli.main import main


@pytest.mark.slow
def test_qat_model_beats_baselines_on_ato4l(tmp_path):
    model = "ae_compact"  # the default L1 model
    data = tmp_path / "data"
    assert (
        main(
            [
                "data",
                "generate",
                "--out",
                str(data),
                "--n-background",
                "110000",
                "--n-signal",
                "5000",
                "--seed",
                "11",
            ]
        )
        == 0
    )
    run = tmp_path / "run"
    train = ["--background", str(data / "background_train.h5"), "--out", str(run), "--seed", "2"]
    assert main(["train", "--model", "iforest", *train]) == 0
    config = tmp_path / "fast.yaml"
    config.write_text("learning_rate: 0.003\nepochs: 20\n")  # the default run trains longer on 300k events
    assert main(["train", "--model", model, "--quantization", "hgq", "--config", str(config), *train]) == 0
    signal = f"Ato4l={data / 'signal_Ato4l.h5'}"
    assert (
        main(["evaluate", str(run), "--background", str(data / "background_test.h5"), "--signal", signal])
        == 0
    )
    table = json.loads((run / "evaluation.json").read_text())["models"]
    qat = table[f"{model}/hgq"]["Ato4l"]
    b = table["ht"]["Ato4l"]
    # AUROC better than the HT cut by more than three combined standard errors
    assert qat["auroc"] - b["auroc"] > 3 * (qat["auroc_err"] ** 2 + b["auroc_err"] ** 2) ** 0.5, (qat, b)
    assert qat["auroc"] > 0.6, qat
