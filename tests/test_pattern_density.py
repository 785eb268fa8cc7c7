"""The energy model's ``pattern_density`` score is a density across object multiplicities.

A toy whose true density is known: patterns of live inputs with known probabilities, Gaussian
features with a per-pattern covariance, and an "energy" that knows each pattern's ranking only up to
an arbitrary monotone map per pattern (what denoising score matching leaves free). The calibrated
score must follow the true log-density across all events and within each pattern; the raw energy
must not (so the test can tell the two apart).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from l1ad.models.ebm import pattern_density

D = 57
PATTERNS = ((3, 0.40), (8, 0.30), (14, 0.15), (26, 0.10), (41, 0.05))  # (live inputs, probability)


def _toy(n: int, seed: int):
    rng = np.random.default_rng(seed)
    probs = np.array([p for _, p in PATTERNS])
    kind = rng.choice(len(PATTERNS), n, p=probs)
    scales = np.random.default_rng(99).uniform(0.5, 2.0, (len(PATTERNS), D))  # fixed per pattern
    x = np.zeros((n, D))
    mask = np.zeros((n, D), dtype=bool)
    true = np.empty(n)  # -log p(x)
    energy = np.empty(n)
    for k, (d, p) in enumerate(PATTERNS):
        rows = kind == k
        s = scales[k, :d]
        z = rng.normal(size=(int(rows.sum()), d))
        x[np.ix_(rows, np.arange(d))] = z * s
        mask[rows, :d] = True
        q = 0.5 * (z**2).sum(axis=1)
        true[rows] = -np.log(p) + 0.5 * d * np.log(2 * np.pi) + np.log(s).sum() + q
        # the pattern's arbitrary offset and a monotone, non-linear distortion of its energy
        energy[rows] = (1.0 + k) * np.sqrt(q + 1.0) + 7.0 * k - 30.0 * (k % 2)
    return x, mask, energy, true, kind


@pytest.fixture(scope="module")
def calib():
    x, mask, energy, _, _ = _toy(60_000, seed=1)
    return pattern_density.fit(energy, x, mask)


def test_follows_true_log_density(calib):
    _, mask, energy, true, kind = _toy(40_000, seed=2)
    score = pattern_density.score(calib, energy, mask)
    assert spearmanr(score, true)[0] >= 0.95
    for k in range(len(PATTERNS)):
        rows = kind == k
        assert spearmanr(score[rows], true[rows])[0] >= 0.95, k
    # the raw energy ranks patterns on their offsets: the test would catch a score that is just E
    assert spearmanr(energy, true)[0] < 0.9


def test_needs_every_term(calib):
    """A plain per-pattern tail-probability score (-log P(pattern) - log t), which ignores how many
    inputs are live and their spread, does not follow the density: the Gaussian mapping is needed."""
    _, mask, energy, true, _ = _toy(40_000, seed=3)
    full = pattern_density.score(calib, energy, mask)
    assert spearmanr(full, true)[0] >= 0.999
    log_p, log_t = pattern_density.terms(calib, energy, mask)
    assert spearmanr(-log_p - log_t, true)[0] < 0.9


def test_tail_is_strictly_monotone_beyond_the_calibration(calib):
    """Energies far past the largest background one keep distinct, increasing scores (no pile-up)."""
    x, mask, energy, _, kind = _toy(2_000, seed=4)
    rows = np.nonzero(kind == 1)[0][:1]
    top = max(calib["patterns"][pattern_density.pattern_keys(mask[rows])[0]]["top"])
    e = top + np.geomspace(1e-3, 1e4, 200)
    s = pattern_density.score(calib, e, np.repeat(mask[rows], len(e), axis=0))
    assert np.all(np.isfinite(s))
    assert np.all(np.diff(s) > 0)


def test_unseen_pattern_is_rarer_than_any_seen_one(calib):
    """A pattern background never showed gets the smoothed P(pattern) and the pooled calibration."""
    _, mask, energy, _, _ = _toy(1_000, seed=5)
    seen = pattern_density.score(calib, energy, mask)
    odd = np.zeros((1, D), dtype=bool)
    odd[0, [0, 5, 9]] = True  # 3 live inputs, but not the toy's first three
    e = np.array([np.median(energy)])
    s = pattern_density.score(calib, e, odd)
    same_d = pattern_density.score(calib, e, mask[mask.sum(axis=1) == 3][:1])
    assert s[0] > same_d[0] + np.log(calib["n_events"] * 0.4) - 1.0
    assert np.isfinite(seen).all()


def test_round_trips_through_json(calib, tmp_path):
    _, mask, energy, _, _ = _toy(500, seed=6)
    path = pattern_density.save(calib, tmp_path / pattern_density.PATTERN_FILE)
    np.testing.assert_array_equal(
        pattern_density.score(pattern_density.load(path), energy, mask),
        pattern_density.score(calib, energy, mask),
    )
