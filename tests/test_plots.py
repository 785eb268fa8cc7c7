"""Plots: each function writes a valid PNG atomically and returns its path."""

from __future__ import annotations

import numpy as np
import pytest

from l1ad.evaluation import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def scores() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "bkg": rng.normal(size=5000),
        "sigA": rng.normal(2.0, 1.0, 300),
        "sigB": rng.normal(1.0, 1.5, 300),
    }


def _assert_png(path, expected):
    assert path == expected
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert [f.name for f in path.parent.iterdir()] == [path.name]  # temp file renamed, nothing left


def test_roc_curves(scores, tmp_path):
    out = tmp_path / "roc.png"
    curves = {"float": (scores["bkg"], scores["sigA"]), "quantized": (scores["bkg"], scores["sigA"] * 0.9)}
    _assert_png(plots.plot_roc_curves(curves, out, signal="sigA"), out)


def test_score_histograms(scores, tmp_path):
    out = tmp_path / "nested" / "hist.png"
    path = plots.plot_score_histograms(scores["bkg"], {"sigA": scores["sigA"], "sigB": scores["sigB"]}, out)
    _assert_png(path, out)


def test_float_vs_quantized_histogram(scores, tmp_path):
    out = tmp_path / "scatter.png"
    q = np.round(scores["bkg"] * 8) / 8
    _assert_png(plots.plot_float_vs_quantized(scores["bkg"], q, out), out)


def test_tpr_ratio_handles_missing(tmp_path):
    out = tmp_path / "ratio.png"
    path = plots.plot_tpr_ratio({"a": 0.5, "b": None, "c": 0.0}, {"a": 0.45, "b": 0.1, "c": 0.0}, out)
    _assert_png(path, out)


def test_invalid_scores_raise_and_leave_no_file(tmp_path):
    out = tmp_path / "bad.png"
    with pytest.raises(ValueError, match="NaN"):
        plots.plot_score_histograms(np.array([1.0, np.nan]), {"s": np.array([1.0])}, out)
    assert not out.exists()


def test_loss_curve_draws_the_history(tmp_path, monkeypatch):
    history = [{"epoch": e, "train_dsm": 10.0 - e, "val_dsm": 10.5 - e, "train_l2": 99.0} for e in (1, 2, 3)]
    out = tmp_path / "loss.png"
    _assert_png(plots.plot_loss_curve(history, out, title="ebm/float", best_epoch=3), out)
    drawn = {}
    real_save = plots._save

    def capture(fig, path):
        drawn.update(
            {ln.get_label(): (list(ln.get_xdata()), list(ln.get_ydata())) for ln in fig.axes[0].lines}
        )
        return real_save(fig, path)

    monkeypatch.setattr(plots, "_save", capture)
    plots.plot_loss_curve(history, tmp_path / "again.png", best_epoch=2)
    assert drawn["training (train_dsm)"] == ([1, 2, 3], [9.0, 8.0, 7.0])
    assert drawn["validation (val_dsm)"] == ([1, 2, 3], [9.5, 8.5, 7.5])
    assert "kept: epoch 2" in drawn
    with pytest.raises(ValueError, match="no training history"):
        plots.plot_loss_curve([], tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()


def test_roc_panels_per_group(scores, tmp_path, monkeypatch):
    curves = {
        lbl: (scores["bkg"], scores["sigA"] * (1 + 0.1 * i)) for i, lbl in enumerate(("l1", "hlt", "cut"))
    }
    drawn = {}
    real_save = plots._save

    def capture(fig, path):
        drawn.update({ax.get_title(): [ln.get_label().split(" (")[0] for ln in ax.lines[:-2]] for ax in fig.axes
                      if ax.get_title()})  # fmt: skip
        drawn["scales"] = [(ax.get_xscale(), ax.get_yscale()) for ax in fig.axes if ax.get_title()]
        return real_save(fig, path)

    monkeypatch.setattr(plots, "_save", capture)
    groups = {"L1": ["l1"], "HLT": ["hlt"], "baselines": ["cut"], "empty": []}
    plots.plot_roc_curves(curves, tmp_path / "roc.png", signal="sigA", groups=groups)
    assert (
        drawn["sigA: L1"] == ["l1"] and drawn["sigA: HLT"] == ["hlt"] and drawn["sigA: baselines"] == ["cut"]
    )
    assert "sigA: empty" not in drawn and drawn["scales"] == [("log", "log")] * 3
    with pytest.raises(ValueError, match="without curves"):
        plots.plot_roc_curves(curves, tmp_path / "bad.png", groups={"L1": ["nope"]})
