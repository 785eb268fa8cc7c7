"""Drift of an event file (``l1ad monitor``): its events against the reference, and its flag rate.

:func:`monitor_file` reads the first ``window`` events of an HDF5/Parquet file or URL
(:func:`~l1ad.events.sources.open_source`), runs the input-drift tests against the reference
(:func:`~l1ad.serving.drift_reference.load_reference`), scores the same events with the run's model
(:class:`~l1ad.serving.offline.OfflineScorer`: the served score and threshold, chunk by chunk) and
checks the flag rate against ``rate_khz / 40 MHz``. :class:`FileDrift` holds both results.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.events.sources import open_source
from l1ad.serving import drift
from l1ad.serving.drift_reference import REFERENCE_EVENTS, REFERENCE_SEED, load_reference
from l1ad.serving.offline import OfflineScorer, ScorerSpec

logger = logging.getLogger(__name__)

SCORE_CHUNK = 65_536


@dataclass(frozen=True)
class FileDrift:
    path: str
    inputs: drift.InputDrift
    output: drift.FlagRate | None  # None: the run has no threshold to check
    window: drift.Summary
    reference: drift.Summary
    scorer: dict[str, Any]

    @property
    def drift(self) -> bool:
        return self.inputs.drift or (self.output is not None and self.output.alert)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.path, "reference": self.reference.source, "drift": self.drift,
                "input": self.inputs.to_dict(), "output": None if self.output is None else self.output.to_dict(),
                "model": self.scorer}  # fmt: skip


def monitor_file(path: str | Path, run_dir: str | Path, *, reference: str | Path | None = None,
                 model: str | None = None, rate_khz: float | None = None, window: int | None = None,
                 alpha: float = drift.DEFAULT_ALPHA, factor: float = drift.DEFAULT_FLAG_FACTOR,
                 min_expected: float = drift.DEFAULT_FLAG_MIN_EXPECTED,
                 reference_events: int = REFERENCE_EVENTS, seed: int = REFERENCE_SEED) -> FileDrift:  # fmt: skip
    """The input- and output-drift checks of the first ``window`` events (default: all) of ``path``."""
    from l1ad.evaluation.metrics import LHC_COLLISION_RATE_MHZ

    src = open_source(path)
    n = src.n_events if window is None else min(int(window), src.n_events)
    if n == 0:
        raise ValueError(f"{path}: no events to monitor")
    ref = load_reference(run_dir, model, reference, reference_events, seed)
    scorer = OfflineScorer(ScorerSpec(str(run_dir), model, None, rate_khz))
    try:
        parts, n_flagged = [], 0
        for lo, hi in src.slices(SCORE_CHUNK):
            if lo >= n:
                break
            block = src.read(lo, min(hi, n))
            n_flagged += int(scorer(block)[1].sum())
            parts.append(block)
        meta = scorer.metadata()
    finally:
        scorer.close()
    win = drift.Summary.of(np.concatenate(parts), f"{path} ({n} events)")
    inputs = drift.compare(win, ref, alpha)
    output = None
    if meta["rate_khz"] is not None:
        frac = meta["rate_khz"] / (LHC_COLLISION_RATE_MHZ * 1e3)
        output = drift.flag_rate_test(n, n_flagged, frac, factor, alpha, min_expected)
    return FileDrift(str(path), inputs, output, win, ref, meta)


def format_report(res: FileDrift) -> str:
    """The human report of ``l1ad monitor``: summary lines and the table of the drifted features."""
    inp = res.inputs
    skipped = len(inp.tests) - len(inp.ran)
    lines = [
        f"monitored: {res.window.source}",
        f"reference: {res.reference.source}",
        f"input drift: {len(inp.drifted)} of {len(inp.ran)} tests below alpha = {inp.alpha:g} after Holm "
        f"correction (min corrected p {inp.min_corrected_p:.3g}; {skipped} skipped: too few objects)",
    ]
    if inp.drifted:
        lines.append(drift.format_table(inp))
    out = res.output
    if out is None:
        lines.append("output drift: not checked (the run has no calibrated threshold)")
    else:
        m = res.scorer
        verdict = ("ALERT" if out.alert else "ok") if out.enough else (
            f"not tested (expected {out.expected:.3g} < {out.min_expected:g} flags)")  # fmt: skip
        ratio = "-" if out.ratio is None else f"{out.ratio:.3g}"
        lines.append(f"output drift: {m['model']} {m['score']} at {m['rate_khz']:g} kHz: {out.n_flagged} of "
                     f"{out.n_events} flagged, {out.expected:.3g} expected, ratio {ratio} (limit {out.factor:g}x), "
                     f"p {out.p:.3g}: {verdict}")  # fmt: skip
    kinds = [k for k, hit in (("input", inp.drift), ("output", out is not None and out.alert)) if hit]
    lines.append(f"DRIFT ({', '.join(kinds)})" if kinds else "no drift")
    return "\n".join(lines)
