"""Input and output drift statistics: a window of events against the training reference, and the flag rate.

**Input drift.** A :class:`Summary` holds what the tests need of an event sample: per physics input
(:func:`~l1ad.events.schema.flat_feature_names`, pT/eta/phi of the 19 slots, less ``MET_eta`` which is
0 by construction) the sorted values of the *present* objects only, plus ``HT`` of the events with at
least one jet; per slot the number of events with the object present; per type the multiplicity
histogram (``n_e``, ``n_mu``, ``n_jet``). :func:`compare` runs one test per statistic:

* ``ks`` -- two-sample Kolmogorov-Smirnov on present objects only (zero padding is not a value: a
  padded zero would turn an occupancy change into a pT "shift" and pile ties at 0). Skipped, and
  reported as such, when either sample has fewer than :data:`MIN_PRESENT` present objects. The
  distance is exact (:func:`ks_test`, from the pre-sorted reference); the p-value is Smirnov's
  asymptotic one, as :func:`scipy.stats.ks_2samp` with ``method="asymp"`` computes it.
* ``occupancy`` -- per slot, the fraction of events with the object present: two-proportion z-test
  (pooled), skipped when an expected cell of the 2x2 table is below :data:`MIN_EXPECTED_CELL`.
* ``chi2`` -- per type, the multiplicity histograms as a 2 x K contingency table, chi-square test
  (no continuity correction) after merging the upper bins until every expected cell reaches
  :data:`MIN_EXPECTED_CELL`. Discrete counts never go through KS (ties make it conservative).

Multiple testing: **Holm-Bonferroni** over all tests that ran (:func:`holm`). It controls the
family-wise error rate at ``alpha`` under *any* dependence between the tests -- and ours are strongly
dependent (``jet3_occupancy``, ``n_jet`` and ``HT`` share events). Benjamini-Hochberg controls the false
discovery rate, and the family-wise rate only under independence or positive regression dependence;
the alarm here is "any corrected p < alpha", a family-wise statement, so Holm is the right one.
Under no drift the alarm fires exactly when Bonferroni's would (``min p < alpha / m``); Holm only
names more of the drifted features once one is found.

The output (flag-rate) check is :mod:`l1ad.serving.drift_flags`. Where one verdict covers both
(``l1ad monitor``, :mod:`l1ad.serving.drift_files`), each family runs at ``alpha / 2``.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from l1ad.events import schema
from l1ad.events.twosample import multiplicities

logger = logging.getLogger(__name__)

DEFAULT_ALPHA = 0.01
#: KS runs only when both samples have at least this many present objects of the feature.
MIN_PRESENT = 20
#: Proportion and chi-square tests need every expected cell at least this large.
MIN_EXPECTED_CELL = 5.0
MULTIPLICITY_TYPES = (schema.EGAMMA, schema.MUON, schema.JET)


def ks_features() -> list[tuple[str, int, int]]:
    """``(name, slot, kinematic index)`` of every per-slot KS feature (``MET_eta`` is always 0: left out)."""
    names = schema.flat_feature_names()
    return [(names[3 * s + k], s, k) for s in range(schema.N_OBJECTS) for k in range(3)
            if not (s == schema.MET.first_slot and k == schema.ETA)]  # fmt: skip


@dataclass(frozen=True)
class Summary:
    """What the drift tests need of one event sample (see the module docstring)."""

    n_events: int
    values: dict[str, np.ndarray]  # feature -> sorted float32 values of present objects
    present: np.ndarray  # (19,) events with each slot present
    multiplicity: dict[str, np.ndarray]  # "n_e" -> events with k objects, k = 0 .. n_slots
    source: str = ""

    @classmethod
    def of(cls, particles: np.ndarray, source: str = "") -> Summary:
        """The summary of (N, 19, 4) ``particles``."""
        p = np.asarray(particles, dtype=np.float32)
        pres = schema.present(p)
        values = {name: np.sort(p[pres[:, s], s, k]) for name, s, k in ks_features()}
        has_jet = pres[:, schema.JET.slots].any(axis=1)
        values["HT"] = np.sort(schema.ht(p[has_jet]).astype(np.float32))
        mult = multiplicities(p)
        multiplicity = {f"n_{t.name}": np.bincount(mult[t.name], minlength=t.n_slots + 1)[: t.n_slots + 1]
                        for t in MULTIPLICITY_TYPES}  # fmt: skip
        return cls(len(p), values, pres.sum(axis=0), multiplicity, source)

    @classmethod
    def combine(cls, parts: list[Summary], source: str = "") -> Summary:
        """The summary of disjoint samples together (the chunks of one file, read one at a time so
        that only the present objects' values stay in memory): counts add, values merge."""
        if not parts:
            raise ValueError("no summaries to combine")
        values = {name: np.sort(np.concatenate([s.values[name] for s in parts])) for name in parts[0].values}
        multiplicity = {
            name: np.sum([s.multiplicity[name] for s in parts], axis=0) for name in parts[0].multiplicity
        }
        return cls(sum(s.n_events for s in parts), values, np.sum([s.present for s in parts], axis=0),
                   multiplicity, source)  # fmt: skip


@dataclass(frozen=True)
class FeatureTest:
    feature: str
    test: str  # ks | occupancy | chi2
    statistic: float | None  # KS distance, z, or chi-square
    p: float | None
    p_corrected: float | None = None
    n_window: int = 0  # present objects (ks) or events (occupancy, chi2) in the window
    n_reference: int = 0
    skipped: str | None = None  # why the test did not run


@dataclass(frozen=True)
class InputDrift:
    """All tests of one window, Holm-corrected."""

    alpha: float
    n_window: int
    n_reference: int
    tests: tuple[FeatureTest, ...]
    correction: str = "holm"

    @property
    def ran(self) -> list[FeatureTest]:
        return [t for t in self.tests if t.skipped is None]

    @property
    def drifted(self) -> list[FeatureTest]:
        """Tests with corrected p < alpha, smallest corrected p first."""
        hits = [t for t in self.ran if t.p_corrected is not None and t.p_corrected < self.alpha]
        return sorted(hits, key=lambda t: (t.p_corrected, t.p))

    @property
    def drift(self) -> bool:
        return bool(self.drifted)

    @property
    def min_corrected_p(self) -> float:
        return min((t.p_corrected for t in self.ran), default=1.0)

    def to_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "correction": self.correction, "n_window": self.n_window,
                "n_reference": self.n_reference, "drift": self.drift, "n_tests": len(self.ran),
                "n_skipped": len(self.tests) - len(self.ran), "min_corrected_p": self.min_corrected_p,
                "drifted": [t.feature for t in self.drifted], "tests": [asdict(t) for t in self.tests]}  # fmt: skip


def ks_test(window: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """``(D, p)`` of the two-sample KS test of two *sorted* samples: the exact ``sup |F_w - F_r|``
    from ``len(window)`` binary searches in the reference, and Smirnov's asymptotic two-sided p-value.

    Between two window points ``F_w`` is constant and ``F_r`` rises, so ``F_w - F_r`` peaks at a window
    point and ``F_r - F_w`` just before one: the reference never needs a pass of its own.
    """
    from scipy.stats import kstwo

    n, m = len(window), len(reference)
    if n == 0 or m == 0:
        raise ValueError("KS test of an empty sample")
    i = np.arange(n, dtype=np.float64)
    right = np.searchsorted(reference, window, side="right") / m
    left = np.searchsorted(reference, window, side="left") / m
    d = max(float(np.max((i + 1) / n - right)), float(np.max(left - i / n)), 0.0)
    big, small = max(n, m), min(n, m)
    en = big * small / (big + small)
    return d, float(np.clip(kstwo.sf(d, np.round(en)), 0.0, 1.0))


def proportion_test(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float] | None:
    """``(z, two-sided p)`` of the pooled two-proportion z-test; None when a cell is too small."""
    from scipy.stats import norm

    pool = (k1 + k2) / (n1 + n2)
    if min(n1, n2) * min(pool, 1.0 - pool) < MIN_EXPECTED_CELL:
        return None
    se = np.sqrt(pool * (1.0 - pool) * (1.0 / n1 + 1.0 / n2))
    z = (k1 / n1 - k2 / n2) / se
    return float(z), float(2.0 * norm.sf(abs(z)))


def merge_bins(table: np.ndarray) -> np.ndarray:
    """Merge columns of a 2 x K count table from the top down until every expected cell is at least
    :data:`MIN_EXPECTED_CELL` (a remainder joins the last merged column)."""
    table = np.asarray(table, dtype=np.float64)
    rows, total = table.sum(axis=1), table.sum()
    out: list[np.ndarray] = []
    acc = np.zeros(2)
    for j in range(table.shape[1] - 1, -1, -1):
        acc = acc + table[:, j]
        if rows.min() * acc.sum() / total >= MIN_EXPECTED_CELL:
            out.append(acc)
            acc = np.zeros(2)
    if acc.sum() > 0:
        if out:
            out[-1] = out[-1] + acc
        else:
            out.append(acc)
    return np.stack(out[::-1], axis=1)


def chi2_test(window: np.ndarray, reference: np.ndarray) -> tuple[float, float, int] | None:
    """``(chi2, p, dof)`` of two count histograms after :func:`merge_bins`; None for a single bin."""
    from scipy.stats import chi2_contingency

    merged = merge_bins(np.stack([window, reference]))
    if merged.shape[1] < 2:
        return None
    res = chi2_contingency(merged, correction=False)
    return float(res.statistic), float(res.pvalue), int(res.dof)


def holm(pvalues: list[float] | np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values: ``max_{j <= i} min(1, (m - j + 1) p_(j))`` in sorted order,
    returned in input order (reject a hypothesis when its adjusted p < alpha)."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out


def _run_tests(window: Summary, ref: Summary) -> list[FeatureTest]:
    tests: list[FeatureTest] = []
    for name, ref_values in ref.values.items():
        w = window.values.get(name, np.zeros(0, np.float32))
        if min(len(w), len(ref_values)) < MIN_PRESENT:
            tests.append(FeatureTest(name, "ks", None, None, None, len(w), len(ref_values),
                                     f"fewer than {MIN_PRESENT} present objects"))  # fmt: skip
            continue
        d, p = ks_test(w, ref_values)
        tests.append(FeatureTest(name, "ks", d, p, None, len(w), len(ref_values)))
    for s, slot in enumerate(schema.slot_names()):
        if s == schema.MET.first_slot:
            continue  # MET is always present
        res = proportion_test(int(window.present[s]), window.n_events, int(ref.present[s]), ref.n_events)
        skip = None if res is not None else f"an expected count below {MIN_EXPECTED_CELL:g}"
        z, p = res if res is not None else (None, None)
        tests.append(FeatureTest(f"{slot}_occupancy", "occupancy", z, p, None, window.n_events,
                                 ref.n_events, skip))  # fmt: skip
    for name, ref_counts in ref.multiplicity.items():
        res = chi2_test(window.multiplicity[name], ref_counts)
        skip = None if res is not None else "a single multiplicity bin after merging"
        stat, p = (res[0], res[1]) if res is not None else (None, None)
        tests.append(FeatureTest(name, "chi2", stat, p, None, window.n_events, ref.n_events, skip))
    return tests


def compare(window: Summary, reference: Summary, alpha: float = DEFAULT_ALPHA) -> InputDrift:
    """Every input-drift test of ``window`` against ``reference``, Holm-corrected at ``alpha``."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if window.n_events == 0:
        raise ValueError("drift test of an empty window")
    tests = _run_tests(window, reference)
    ran = [i for i, t in enumerate(tests) if t.skipped is None]
    adj = holm([tests[i].p for i in ran])
    for i, a in zip(ran, adj, strict=True):
        t = tests[i]
        tests[i] = FeatureTest(t.feature, t.test, t.statistic, t.p, float(a), t.n_window, t.n_reference)
    return InputDrift(alpha, window.n_events, reference.n_events, tuple(tests))


def _g(x: float | None, width: int, spec: str) -> str:
    return f"{'-':>{width}}" if x is None else format(x, f"{width}{spec}")


def format_table(result: InputDrift, all_tests: bool = False) -> str:
    """The drifted (or with ``all_tests`` every) test as an aligned text table."""
    rows = result.tests if all_tests else result.drifted
    lines = [f"  {'feature':<16}{'test':<11}{'statistic':>10}{'p':>11}{'corrected p':>13}"]
    for t in rows:
        tail = f"  (skipped: {t.skipped})" if t.skipped else ""
        lines.append(f"  {t.feature:<16}{t.test:<11}{_g(t.statistic, 10, '.4g')}{_g(t.p, 11, '.3g')}"
                     f"{_g(t.p_corrected, 13, '.3g')}{tail}")  # fmt: skip
    return "\n".join(lines)
