"""The output-drift check: the monitored flag rate against the threshold's calibration.

The service flags ``score > threshold``, the threshold calibrated on a finite background sample:
``k_cal`` of its ``n_cal`` events lie above it (recovered exactly from the rate-table row by
:func:`calibration_counts`). The calibration's own count fluctuates (5 kHz of 40 MHz on 8000 events
is one event), so the monitored count ``k_w`` of ``n_w`` events is compared with the *calibration
count*, not with the target rate taken as exact: under no drift both are draws at one flag
probability, and given ``k_w + k_cal`` the monitored count is ``Binomial(k_w + k_cal, n_w / (n_w +
n_cal))`` -- the conditional two-sample binomial test, exact (:func:`scipy.stats.binomtest`,
two-sided). Strictly, the threshold is the calibration's ``(k_cal + 1)``-th highest score, so
``k_cal`` is fixed and the true rate random, and ``k_w`` is beta-binomial; the conditional test stays
valid under that exact null: P(p < alpha) is 0.4-1.0 alpha for ``k_cal`` of 1-125 and windows of
10k-1M events (``tests/test_drift.py`` sums it exactly). A binomial test against the calibrated rate
taken as exact (the earlier check) had P(p < alpha) up to 0.8 there and, with the 3x rule and 10
expected flags, alerted up to 25% of the time.

An alert needs all of: the ratio ``(k_w / n_w) / (k_cal / n_cal)`` -- observed over the *achieved*
calibration rate -- beyond ``factor`` (default 3, the rollback rule) up or down; the window
*resolving* a factor-``factor`` change in that direction (:func:`resolves`: the first count beyond
the factor would give p < alpha); the calibration resolving it both ways for an endless window
(``k_cal`` at least :func:`min_calibration_count`, 9 for a factor 3 at alpha = 0.005: with fewer no
window can tell a factor-``factor`` change from the calibration's own noise, and the check says "not
tested"); and p < alpha. This replaces a fixed "10 expected flags" guard: it weighs both samples'
statistics.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import asdict, dataclass
from typing import Any

from l1ad.serving.drift import DEFAULT_ALPHA

logger = logging.getLogger(__name__)

DEFAULT_FLAG_FACTOR = 3.0
#: The resolvability limit: a window this many times the calibration's size.
LIMIT_WINDOW_FACTOR = 10**6


def calibration_counts(threshold: Any, input_rate_khz: float) -> tuple[int, int] | None:
    """``(k_cal, n_cal)``: the calibration events above ``threshold`` (a
    :class:`~l1ad.serving.thresholds.RateThreshold`) and in all, recovered exactly from its row.

    :func:`l1ad.evaluation.metrics.thresholds_for_rates` writes ``achieved = p R`` and
    ``err = sqrt(p (1 - p) / n) R`` with ``p = k / n`` and ``R`` the input rate, so ``n = p (1 - p) /
    (err / R)^2`` and ``k = p n``. None when the row lacks them or ``p`` is 0 (``err = 0`` carries no
    ``n``), or when the rounded counts do not reproduce the row to 1e-9.
    """
    a, e = threshold.achieved_rate_khz, threshold.achieved_rate_err_khz
    if a is None or e is None or not (e > 0 and input_rate_khz > 0):
        return None
    p, s = a / input_rate_khz, e / input_rate_khz
    if not 0.0 < p < 1.0:
        return None
    n = round(p * (1.0 - p) / s**2)
    k = round(p * n)
    if not 0 < k < n:
        return None
    q = k / n
    if not (math.isclose(q, p, rel_tol=1e-9) and math.isclose(math.sqrt(q * (1 - q) / n), s, rel_tol=1e-9)):
        return None
    return k, n


def flag_p_value(k_w: int, n_w: int, k_cal: int, n_cal: int) -> float:
    """Two-sided exact p-value of "the window's flag probability equals the calibration's": given
    ``k_w + k_cal``, ``k_w ~ Binomial(k_w + k_cal, n_w / (n_w + n_cal))``."""
    from scipy.stats import binomtest

    total = int(k_w) + int(k_cal)
    if total == 0:
        return 1.0
    return float(binomtest(int(k_w), total, n_w / (n_w + n_cal)).pvalue)


@functools.lru_cache(maxsize=4096)
def resolves(n_w: int, k_cal: int, n_cal: int, factor: float, alpha: float) -> tuple[bool, bool]:
    """``(up, down)``: would a window of ``n_w`` events alert at the smallest count above ``factor``
    times the calibration rate, and at the largest count below it divided by ``factor``?"""
    e = n_w * k_cal / n_cal
    up, down = math.floor(factor * e) + 1, math.ceil(e / factor) - 1
    return (flag_p_value(up, n_w, k_cal, n_cal) < alpha,
            down >= 0 and flag_p_value(down, n_w, k_cal, n_cal) < alpha)  # fmt: skip


def _resolves_in_the_limit(k_cal: int, factor: float, alpha: float) -> bool:
    """Both directions resolved by an (almost) endless window, where only ``k_cal`` is uncertain."""
    n_cal = 10**6
    return all(resolves(n_cal * LIMIT_WINDOW_FACTOR, k_cal, n_cal, factor, alpha))


@functools.lru_cache(maxsize=256)
def min_calibration_count(factor: float, alpha: float) -> int:
    """The fewest calibration events above threshold with which any window can resolve a
    factor-``factor`` change both ways (9 for a factor 3 at alpha = 0.005, 8 at 0.01)."""
    k = 1
    while not _resolves_in_the_limit(k, factor, alpha):
        k += 1
    return k


@functools.lru_cache(maxsize=1024)
def flag_window_events(k_cal: int, n_cal: int, factor: float, alpha: float, lo: int, hi: int) -> int | None:
    """The shortest window in ``[lo, hi]`` (on a 10% grid) that resolves a factor-``factor`` change
    both ways; None when none does (too few calibration events above threshold, or ``hi`` too short)."""
    if k_cal < min_calibration_count(factor, alpha):
        return None
    n = max(1, int(lo))
    while n <= hi:
        if all(resolves(n, k_cal, n_cal, factor, alpha)):
            return n
        n = max(n + 1, math.ceil(n * 1.1))
    return None


@dataclass(frozen=True)
class FlagRate:
    """The flag-rate check of one window against its threshold's calibration (module docstring)."""

    n_events: int
    n_flagged: int
    k_calibration: int  # calibration events above the threshold
    n_calibration: int  # calibration events in all
    factor: float
    alpha: float
    p: float
    resolves_up: bool
    resolves_down: bool
    min_calibration_count: int

    @property
    def calibration_fraction(self) -> float:
        return self.k_calibration / self.n_calibration

    @property
    def expected(self) -> float:
        """Flags expected in the window at the calibration's achieved rate."""
        return self.n_events * self.calibration_fraction

    @property
    def ratio(self) -> float | None:
        return self.n_flagged / self.expected if self.expected > 0 else None

    @property
    def enough(self) -> bool:
        """Whether a factor-``factor`` change would be found both ways ("ok" means something)."""
        return self.resolves_up and self.resolves_down

    @property
    def alert(self) -> bool:
        r = self.ratio
        if r is None or not self.p < self.alpha or self.k_calibration < self.min_calibration_count:
            return False
        return bool((r > self.factor and self.resolves_up) or (r < 1.0 / self.factor and self.resolves_down))

    @property
    def verdict(self) -> str:
        if self.alert:
            return "ALERT"
        if self.enough:
            return "ok"
        if self.k_calibration < self.min_calibration_count:
            return (f"not tested (the calibration has {self.k_calibration} of {self.n_calibration} events "
                    f"above threshold; a factor-{self.factor:g} change needs at least {self.min_calibration_count})")  # fmt: skip
        return f"not tested (the window is too short: {self.expected:.3g} flags expected)"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "calibration_fraction": self.calibration_fraction, "expected": self.expected,
                "ratio": self.ratio, "enough": self.enough, "alert": self.alert, "verdict": self.verdict}  # fmt: skip


def flag_rate_test(n_events: int, n_flagged: int, k_calibration: int, n_calibration: int,
                   factor: float = DEFAULT_FLAG_FACTOR, alpha: float = DEFAULT_ALPHA) -> FlagRate:  # fmt: skip
    """The flag-rate check of ``n_flagged`` of ``n_events`` against ``k_calibration`` of
    ``n_calibration`` calibration events above the threshold (module docstring)."""
    if factor <= 1.0:
        raise ValueError(f"the flag-rate factor must exceed 1, got {factor}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if not 0 < k_calibration < n_calibration:
        raise ValueError(f"the calibration count must lie in (0, {n_calibration}), got {k_calibration}")
    if not 0 <= n_flagged <= n_events:
        raise ValueError(f"{n_flagged} flagged of {n_events} events")
    up, down = (
        (False, False) if n_events == 0 else resolves(n_events, k_calibration, n_calibration, factor, alpha)
    )
    p = flag_p_value(n_flagged, n_events, k_calibration, n_calibration) if n_events else 1.0
    return FlagRate(n_events, n_flagged, k_calibration, n_calibration, factor, alpha, p, up, down,
                    min_calibration_count(factor, alpha))  # fmt: skip
