"""Two-sample tests: the fixed classifier test, its AUC error, and the multiplicity table with pulls."""

from __future__ import annotations

import json

import numpy as np
import pytest

from l1ad.events import schema, twosample
from l1ad.events.generator import generate_process
from l1ad.events.io import write_events


def test_auc_error_matches_the_spread_of_random_scores():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    n = 400
    y = np.r_[np.ones(n), np.zeros(n)]
    aucs = [roc_auc_score(y, rng.normal(size=2 * n)) for _ in range(300)]
    assert twosample.auc_error(0.5, n, n) == pytest.approx(np.std(aucs), rel=0.15)
    assert twosample.auc_error(0.99, n, n) < twosample.auc_error(0.7, n, n)


def test_classifier_cannot_tell_a_sample_from_itself_but_tells_w_from_z():
    w1, w2, z = generate_process("W", 4000, 1), generate_process("W", 4000, 2), generate_process("Z", 4000, 1)
    same = twosample.classifier_test(w1, w2, seed=1)
    assert same["iterations"] == 200 and same["inputs"] == 57 and same["n_per_class"] == 4000
    assert abs(same["auc"] - 0.5) < 3 * same["auc_error"] + 0.01, same
    diff = twosample.classifier_test(w1, z, seed=1)
    assert diff["auc"] > 0.9, diff
    with pytest.raises(ValueError, match="at least 50 events"):
        twosample.classifier_test(w1[:10], z, seed=1)


def _events(n_e: list[int]) -> np.ndarray:
    """Events with MET and ``n_e[i]`` e/gamma objects of 30 GeV (nothing else)."""
    x = np.zeros((len(n_e), schema.N_OBJECTS, schema.N_FEATURES), np.float32)
    x[:, 0, schema.PT], x[:, 0, schema.CLASS] = 10.0, schema.MET.code
    for i, k in enumerate(n_e):
        sl = slice(schema.EGAMMA.first_slot, schema.EGAMMA.first_slot + k)
        x[i, sl, schema.PT], x[i, sl, schema.CLASS] = 30.0, schema.EGAMMA.code
    return x


def test_multiplicity_table_fractions_pulls_and_failing_bins():
    a = _events([0] * 600 + [1] * 400)  # 60% / 40%
    b = _events([0] * 500 + [1] * 495 + [2] * 5)  # 50% / 49.5% / 0.5%
    t = twosample.multiplicity_table(a, b)
    e = {r["k"]: r for r in t["e"]}
    assert e[0]["a"] == pytest.approx(0.6) and e[0]["b"] == pytest.approx(0.5)
    assert e[0]["relative"] == pytest.approx(0.2)
    assert e[0]["pull"] == pytest.approx(0.1 / np.sqrt(0.24 / 1000 + 0.25 / 1000))
    assert not e[2]["tested"] and e[2]["ok"]  # holds < 1% of either sample
    assert twosample.failing_bins(t) == ["e = 0", "e = 1", "lep = 0", "lep = 1"]
    assert twosample.failing_bins(twosample.multiplicity_table(b, b)) == []
    assert "FAIL" in twosample.format_multiplicities(t)


def test_compare_cli_classifier(tmp_path, capsys):
    from l1ad.cli.main import main

    w, z = tmp_path / "w.h5", tmp_path / "z.h5"
    write_events(w, generate_process("W", 3000, 1))
    write_events(z, generate_process("Z", 3000, 1))
    assert main(["data", "compare", "--classifier", str(w), str(z)]) == 1  # Z has two leptons: bins fail
    out = capsys.readouterr().out
    assert "classifier two-sample test: AUC" in out and "lep = 2" in out and "FAIL" in out
    w2 = tmp_path / "w2.h5"
    write_events(w2, generate_process("W", 3000, 2))
    rc = main(["data", "compare", "--classifier", "--json", str(w), str(w2)])
    res = json.loads(capsys.readouterr().out)
    # the 10%-relative rule is for large samples: at 3,000 events a 1% bin fluctuates by ~25%
    assert rc == (1 if res["failing_multiplicity_bins"] else 0)
    assert all(abs(r["pull"]) < 4 for rows in res["multiplicities"].values() for r in rows)
    assert 0.4 < res["classifier"]["auc"] < 0.6


def test_background_mixture_of_a_folder_keeps_the_adc2021_proportions(tmp_path, capsys):
    """A folder of per-process files gives the largest mixture in the ADC2021 proportions (here QCD
    limits it), the leading events of each file in process order; a missing file is named; the CLI
    compares a folder as that mixture."""
    from l1ad.cli.main import main
    from l1ad.events.generator import BACKGROUND_PROCESSES, mixture_counts

    sizes = {"W": 3000, "QCD": 700, "Z": 400, "ttbar": 30}
    parts = {p: generate_process(p, n, 3) for p, n in sizes.items()}
    for p, x in parts.items():
        write_events(tmp_path / f"{p}.h5", x)
    mix = twosample.background_mixture(tmp_path)
    counts = mixture_counts(int(700 / 0.338))
    assert len(mix) == counts.sum() and counts[1] == 700
    lo = 0
    for p, c in zip(BACKGROUND_PROCESSES, counts, strict=True):
        np.testing.assert_array_equal(mix[lo : lo + c], parts[p][:c])
        lo += c
    (tmp_path / "Z.h5").unlink()
    with pytest.raises(FileNotFoundError, match="Z.h5"):
        twosample.background_mixture(tmp_path)
    write_events(tmp_path / "Z.h5", parts["Z"])
    write_events(tmp_path / "fast.h5", generate_process("W", 500, 4))
    assert main(["data", "compare", str(tmp_path / "fast.h5"), str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["occupancy"]["met"]["b"] == 1.0
