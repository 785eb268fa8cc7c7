"""Trigger thresholds of a served score, by rate: the evaluation's rate table, or a recalibration.

``evaluation.json["rates"][label]`` (written by ``l1ad evaluate``) holds, per target rate, the
threshold that passes that rate of the evaluation's background when the background arrives at the
LHC bunch-crossing rate (zero-bias-like L1 input, 40 MHz): an event is flagged when
``score > threshold``, exactly as the rate table counts it. For the HLT the input is the L1 accept
stream: ``--input-rate-khz R --calibration FILE`` recalibrates on background FILE (events as they
reach the HLT) at false-positive rate ``rate / R``. Every response states the input rate used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.evaluation.metrics import LHC_COLLISION_RATE_MHZ, thresholds_for_rates


@dataclass(frozen=True)
class RateThreshold:
    rate_khz: float
    value: float
    achieved_rate_khz: float | None = None
    achieved_rate_err_khz: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rate_khz": self.rate_khz,
            "value": self.value,
            "achieved_rate_khz": self.achieved_rate_khz,
            "achieved_rate_err_khz": self.achieved_rate_err_khz,
        }


@dataclass(frozen=True)
class ThresholdTable:
    """Resolved thresholds of one score, and what they were calibrated on."""

    thresholds: tuple[RateThreshold, ...]
    input_rate_khz: float
    calibration: str

    def get(self, rate_khz: float) -> RateThreshold:
        for t in self.thresholds:
            if abs(t.rate_khz - rate_khz) < 1e-9 * max(1.0, rate_khz):
                return t
        known = ", ".join(f"{t.rate_khz:g}" for t in self.thresholds) or "none"
        raise KeyError(f"no threshold for {rate_khz:g} kHz (calibrated rates: {known} kHz)")

    def resolve(self, rate_khz: float | None) -> RateThreshold | None:
        """The threshold at ``rate_khz`` (default: the lowest calibrated rate; None when there is none);
        KeyError naming the calibrated rates for an uncalibrated one."""
        rate = self.default_rate_khz if rate_khz is None else rate_khz
        return None if rate is None else self.get(rate)

    @property
    def default_rate_khz(self) -> float | None:
        """The lowest calibrated rate (the tightest trigger)."""
        return min((t.rate_khz for t in self.thresholds), default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_rate_khz": self.input_rate_khz,
            "calibration": self.calibration,
            "thresholds": [t.to_dict() for t in self.thresholds],
        }


def from_rows(rows: list[dict[str, Any]], input_rate_khz: float, calibration: str) -> ThresholdTable:
    resolved = [
        r
        for r in rows
        if r.get("resolved", r.get("threshold") is not None) and r.get("threshold") is not None
    ]
    ts = tuple(
        RateThreshold(
            float(r["target_rate_khz"]),
            float(r["threshold"]),
            r.get("achieved_rate_khz"),
            r.get("achieved_rate_err_khz"),
        )  # fmt: skip
        for r in sorted(resolved, key=lambda r: r["target_rate_khz"])
    )
    return ThresholdTable(ts, input_rate_khz, calibration)


def from_evaluation(run_dir: Path, label: str) -> ThresholdTable:
    """The rate table of ``label`` in ``run_dir/evaluation.json`` (empty when there is none)."""
    path = Path(run_dir) / "evaluation.json"
    if not path.is_file():
        return ThresholdTable((), LHC_COLLISION_RATE_MHZ * 1e3, f"{path} missing: no thresholds")
    doc = json.loads(path.read_text())
    rows = (doc.get("rates") or {}).get(label) or []
    bkg = doc.get("background_file", "?")
    return from_rows(
        rows, LHC_COLLISION_RATE_MHZ * 1e3, f"{path}: rate table on {bkg} (zero-bias L1 input at 40 MHz)"
    )


def recalibrate(
    scores: np.ndarray, rates_khz: tuple[float, ...], input_rate_khz: float, source: str
) -> ThresholdTable:
    """Thresholds passing ``rates_khz`` of background ``scores`` arriving at ``input_rate_khz``."""
    rows = thresholds_for_rates(scores, rates_khz, collision_rate_mhz=input_rate_khz / 1e3)
    return from_rows(
        rows, input_rate_khz, f"recalibrated on {source} ({len(scores)} events at {input_rate_khz:g} kHz)"
    )


def flags(scores: np.ndarray, threshold: RateThreshold | None) -> np.ndarray:
    """``score > threshold`` (all False without a threshold)."""
    if threshold is None:
        return np.zeros(len(scores), dtype=bool)
    return np.asarray(scores) > threshold.value
