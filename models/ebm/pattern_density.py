"""A density score that is one across object multiplicities: ``pattern_density``.

Denoising score matching constrains only the gradient of the energy over an event's live inputs, so
``E(x)`` carries an arbitrary offset (and scale) for every *pattern* of present objects: the raw
energy ranks events of different multiplicities on that offset. This module turns the energy into a
negative log-density that is comparable across patterns::

    -log p(x) = -log P(pattern) - log p(x_live | pattern)

* ``P(pattern)`` is counted on background (validation split), with add-1/2 smoothing, so a pattern
  background never shows (four leptons, say) is rare rather than impossible.
* ``p(x_live | pattern)`` keeps the energy's ranking *within* the pattern and puts it on a common
  scale: the event's background tail probability ``t = P(E' >= E | pattern)`` is mapped to the density
  of the pattern's Gaussian (its live inputs' background covariance ``Sigma``, ``d`` live inputs) at
  the point with the same tail, ``r^2 = chi2.isf(t, d)``::

      -log p(x_live | pattern) = d/2 log(2 pi) + 1/2 log det Sigma + r^2 / 2

  This is exact when the conditional density is Gaussian, and a calibrated density-shaped scale
  otherwise (the ranking inside a pattern is always the energy's).
* Beyond the largest background energy of a pattern the tail is extrapolated exponentially (the mean
  excess of the pattern's top energies), so the score stays strictly monotone in the trigger region
  instead of tying at the last calibration point.
* Patterns with fewer than ``min_events`` background events share one pooled calibration (energy
  quantiles, pooled covariance determinant per live input) but keep their own ``P(pattern)`` and
  ``d``.

The calibration is fitted next to the GMM at training time and stored as ``pattern.json``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.core.files import atomic_write_text

logger = logging.getLogger(__name__)

PATTERN_FILE = "pattern.json"
N_QUANTILES = 513  # stored energy quantiles per pattern (the tail keeps its own top events)
N_TOP = 32  # highest background energies kept exactly per pattern (tail and its extrapolation)
POOLED = "pooled"


def pattern_keys(mask: np.ndarray) -> np.ndarray:
    """(N, n_inputs) live-input mask -> (N,) hex strings naming each event's pattern."""
    packed = np.packbits(np.asarray(mask, dtype=bool), axis=1)
    return np.array([row.tobytes().hex() for row in packed])


def _logdet(x: np.ndarray) -> float:
    """log det of the sample covariance (float64), regularized so a degenerate input stays finite."""
    if x.shape[1] == 0:
        return 0.0
    cov = np.atleast_2d(np.cov(x, rowvar=False)) + 1e-6 * np.eye(x.shape[1])
    return float(np.linalg.slogdet(cov)[1])


def _tail_model(energy: np.ndarray) -> dict[str, Any]:
    e = np.sort(np.asarray(energy, dtype=np.float64))
    top = e[-min(N_TOP, len(e)) :]
    excess = float(np.mean(top - top[0])) if len(top) > 1 else 0.0
    scale = max(excess, 1e-6 * max(1.0, abs(float(top[-1]))))
    return {
        "n": int(len(e)),
        "quantiles": np.quantile(e, np.linspace(0.0, 1.0, N_QUANTILES)).tolist(),
        "top": top.tolist(),
        "tail_scale": scale,
    }


def fit(energy: np.ndarray, x: np.ndarray, mask: np.ndarray, min_events: int = 100) -> dict[str, Any]:
    """Fit the calibration on background energies (N,), standardized inputs (N, D) and masks (N, D)."""
    energy = np.asarray(energy, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    keys = pattern_keys(mask)
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    n = len(energy)
    patterns: dict[str, Any] = {}
    pooled_rows = np.zeros(n, dtype=bool)
    logdet_per_input: list[float] = []
    for i, (key, count) in enumerate(zip(uniq, counts, strict=True)):
        rows = inverse == i
        entry: dict[str, Any] = {"count": int(count)}
        if count >= min_events:
            live = mask[np.argmax(rows)]
            entry["logdet"] = _logdet(x[rows][:, live])
            entry |= _tail_model(energy[rows])
            if live.any():
                logdet_per_input.append(entry["logdet"] / int(live.sum()))
        else:
            pooled_rows |= rows
        patterns[str(key)] = entry
    pool = energy[pooled_rows] if pooled_rows.sum() >= 2 else energy
    calib = {
        "n_events": n,
        "n_patterns": len(uniq),
        "min_events": min_events,
        "patterns": patterns,
        POOLED: _tail_model(pool) | {"logdet_per_input": float(np.mean(logdet_per_input or [0.0]))},
    }
    logger.info(
        "pattern calibration: %d events, %d patterns (%d calibrated on their own)",
        n, len(uniq), sum("quantiles" in p for p in patterns.values()),
    )  # fmt: skip
    return calib


def _log_tail(model: dict[str, Any], energy: np.ndarray) -> np.ndarray:
    """log of the background tail probability P(E' >= E) of one calibration: continuous and non-increasing in E,
    strictly decreasing from the kept top events on (so the trigger region never ties)."""
    n, q, top = model["n"], np.asarray(model["quantiles"]), np.asarray(model["top"])
    m = len(top)
    bulk = np.maximum((1.0 - np.interp(energy, q, np.linspace(0.0, 1.0, len(q)))) * n, m)
    # the top events exactly: m - i events at or above top[i], linear in between
    in_top = np.interp(energy, top, m - np.arange(m, dtype=np.float64)) if m > 1 else np.ones_like(energy)
    with np.errstate(divide="ignore"):
        log_count = np.where(energy < top[0], np.log(bulk), np.where(energy <= top[-1], np.log(in_top), 0.0))
    beyond = energy > top[-1]
    log_count = np.where(beyond, -(energy - top[-1]) / model["tail_scale"], log_count)
    return log_count - np.log(n + 1.0)


#: below this log tail probability, chi2.isf underflows; the chi2 tail is exp(-r^2/2) there
_LOG_T_FLOOR = -600.0


def _r2(log_t: np.ndarray, d: int) -> np.ndarray:
    """``chi2.isf(exp(log_t), d)``, continued linearly (r^2 = r^2_floor + 2 (floor - log t)) below
    :data:`_LOG_T_FLOOR`, so the score never ties however far out an event is."""
    from scipy.stats import chi2

    if d == 0:
        return np.zeros_like(log_t)
    clipped = np.clip(log_t, _LOG_T_FLOOR, 0.0)
    r2 = chi2.isf(np.exp(clipped), d)
    return r2 + 2.0 * (clipped - np.minimum(log_t, clipped))


def _calibrations(calib: dict[str, Any], mask: np.ndarray):
    """``(rows, d, log P(pattern), tail model, log det Sigma)`` per pattern present in ``mask``."""
    keys = pattern_keys(mask)
    n_total = calib["n_events"]
    n_kinds = calib["n_patterns"] + 1  # the smoothing's room for patterns never seen
    uniq, inverse = np.unique(keys, return_inverse=True)
    for i, key in enumerate(uniq):
        rows = inverse == i
        d = int(mask[np.argmax(rows)].sum())
        entry = calib["patterns"].get(key, {"count": 0})
        log_p = float(np.log((entry["count"] + 0.5) / (n_total + 0.5 * n_kinds)))
        if "quantiles" in entry:
            yield rows, d, log_p, entry, entry["logdet"]
        else:
            yield rows, d, log_p, calib[POOLED], calib[POOLED]["logdet_per_input"] * d


def terms(calib: dict[str, Any], energy: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log P(pattern), log t)`` per event: the pattern's probability and the event's background
    tail probability within its pattern (the two ingredients of :func:`score`)."""
    energy = np.asarray(energy, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    log_p, log_t = np.empty(len(energy)), np.empty(len(energy))
    for rows, _, lp, model, _ in _calibrations(calib, mask):
        log_p[rows] = lp
        log_t[rows] = _log_tail(model, energy[rows])
    return log_p, log_t


def score(calib: dict[str, Any], energy: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``-log p(x)`` per event, (N,) float64 (higher = more anomalous)."""
    energy = np.asarray(energy, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    out = np.empty(len(energy))
    for rows, d, log_p, model, logdet in _calibrations(calib, mask):
        r2 = _r2(_log_tail(model, energy[rows]), d)
        out[rows] = -log_p + 0.5 * d * np.log(2 * np.pi) + 0.5 * logdet + 0.5 * r2
    return out


def save(calib: dict[str, Any], path: str | Path) -> Path:
    return atomic_write_text(path, json.dumps(calib, sort_keys=True))


def load(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
