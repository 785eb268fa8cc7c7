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


def test_float_vs_quantized_subsamples(scores, tmp_path):
    out = tmp_path / "scatter.png"
    q = np.round(scores["bkg"] * 8) / 8
    _assert_png(plots.plot_float_vs_quantized(scores["bkg"], q, out, max_points=1000), out)


def test_tpr_ratio_handles_missing(tmp_path):
    out = tmp_path / "ratio.png"
    path = plots.plot_tpr_ratio({"a": 0.5, "b": None, "c": 0.0}, {"a": 0.45, "b": 0.1, "c": 0.0}, out)
    _assert_png(path, out)


def test_invalid_scores_raise_and_leave_no_file(tmp_path):
    out = tmp_path / "bad.png"
    with pytest.raises(ValueError, match="NaN"):
        plots.plot_score_histograms(np.array([1.0, np.nan]), {"s": np.array([1.0])}, out)
    assert not out.exists()
