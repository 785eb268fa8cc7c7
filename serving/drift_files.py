"""Drift of an event file (``l1ad monitor``): its events against the reference, and its flag rate.

:func:`monitor_file` reads the first ``max_events`` events (default :data:`MAX_EVENTS`, one million)
of an HDF5/Parquet file or URL (:func:`~l1ad.events.sources.open_source`) chunk by chunk: each chunk
is scored with the run's model (:class:`~l1ad.serving.offline.OfflineScorer`: the served score and
threshold) and reduced to its :class:`~l1ad.serving.drift.Summary` before the next is read, so memory
holds the present objects' values (3 float32 per present object and HT: 64 bytes per generator
event, at most 228), never the file: measured, the process grows by about 120 MB per million monitored
events (the values and their merge) over its ~400 MB of model and reference. The first events, not a
sample: a file is usually in time order, the first N are one period, read without touching the rest;
the report says how many of how many were used.

One verdict, one false-alarm rate: the file drifts when the Holm-corrected input tests
(:func:`~l1ad.serving.drift.compare`) find drift *or* the flag-rate check
(:func:`~l1ad.serving.drift_flags.flag_rate_test`, against the threshold's calibration counts) alerts.
Each family runs at ``alpha / 2`` (Bonferroni across the two), so under no drift the exit status 1
comes with probability at most ``alpha`` (a flag test inside the Holm family would not do: its alert
also needs the factor rule). :class:`FileDrift` holds both results and the overall ``alpha``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from l1ad.events.sources import open_source
from l1ad.serving import drift, drift_flags
from l1ad.serving.drift_reference import REFERENCE_EVENTS, REFERENCE_SEED, load_reference
from l1ad.serving.offline import OfflineScorer, ScorerSpec

logger = logging.getLogger(__name__)

SCORE_CHUNK = 65_536
MAX_EVENTS = 1_000_000


@dataclass(frozen=True)
class FileDrift:
    path: str
    alpha: float  # overall: inputs and output at alpha / 2 each
    n_file: int  # events in the file (the first window.n_events were monitored)
    inputs: drift.InputDrift
    output: drift_flags.FlagRate | None  # None: no threshold, or its calibration counts are unknown
    window: drift.Summary
    reference: drift.Summary
    scorer: dict[str, Any]
    output_note: str = ""  # why the output was not checked

    @property
    def drift(self) -> bool:
        return self.inputs.drift or (self.output is not None and self.output.alert)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.path, "n_file_events": self.n_file, "n_monitored_events": self.window.n_events,
                "reference": self.reference.source, "alpha": self.alpha,
                "alpha_per_family": self.alpha / 2, "drift": self.drift, "input": self.inputs.to_dict(),
                "output": None if self.output is None else self.output.to_dict(),
                "output_note": self.output_note, "model": self.scorer}  # fmt: skip


def monitor_file(path: str | Path, run_dir: str | Path, *, reference: str | Path | None = None,
                 model: str | None = None, rate_khz: float | None = None, max_events: int | None = MAX_EVENTS,
                 alpha: float = drift.DEFAULT_ALPHA, factor: float = drift_flags.DEFAULT_FLAG_FACTOR,
                 reference_events: int = REFERENCE_EVENTS, seed: int = REFERENCE_SEED) -> FileDrift:  # fmt: skip
    """The input- and output-drift checks of the first ``max_events`` events (None: all) of ``path``,
    each at ``alpha / 2`` (module docstring)."""
    from l1ad.evaluation.metrics import LHC_COLLISION_RATE_MHZ

    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if max_events is not None and max_events < 1:
        raise ValueError(f"--max-events must be positive, got {max_events}")
    src = open_source(path)
    n = src.n_events if max_events is None else min(int(max_events), src.n_events)
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
            parts.append(drift.Summary.of(block))
            del block
        meta, threshold = scorer.metadata(), scorer.threshold
    finally:
        scorer.close()
    used = f"first {n} of {src.n_events} events" if n < src.n_events else f"all {n} events"
    win = drift.Summary.combine(parts, f"{path} ({used})")
    del parts
    inputs = drift.compare(win, ref, alpha / 2)
    output, note = None, ""
    if threshold is None:
        note = "the run has no calibrated threshold"
    else:
        counts = drift_flags.calibration_counts(threshold, LHC_COLLISION_RATE_MHZ * 1e3)
        if counts is None:
            note = "the rate table row does not give the calibration's counts (achieved rate and its error)"
        else:
            output = drift_flags.flag_rate_test(n, n_flagged, *counts, factor=factor, alpha=alpha / 2)
    return FileDrift(str(path), alpha, src.n_events, inputs, output, win, ref, meta, note)


def format_report(res: FileDrift) -> str:
    """The human report of ``l1ad monitor``: summary lines and the table of the drifted features."""
    inp = res.inputs
    skipped = len(inp.tests) - len(inp.ran)
    lines = [
        f"monitored: {res.window.source}" + (" (--max-events)" if res.window.n_events < res.n_file else ""),
        f"reference: {res.reference.source}",
        f"alpha = {res.alpha:g} overall: {res.alpha / 2:g} for the input tests and {res.alpha / 2:g} for "
        "the flag rate (Bonferroni)",
        f"input drift: {len(inp.drifted)} of {len(inp.ran)} tests below {inp.alpha:g} after Holm "
        f"correction (min corrected p {inp.min_corrected_p:.3g}; {skipped} skipped: too few objects)",
    ]
    if inp.drifted:
        lines.append(drift.format_table(inp))
    out, m = res.output, res.scorer
    if out is None:
        lines.append(f"output drift: not checked ({res.output_note})")
    else:
        ratio = "-" if out.ratio is None else f"{out.ratio:.3g}"
        lines.append(f"output drift: {m['model']} {m['score']} at {m['rate_khz']:g} kHz: {out.n_flagged} of "
                     f"{out.n_events} flagged, {out.expected:.3g} expected from the calibration's "
                     f"{out.k_calibration} of {out.n_calibration}, ratio {ratio} (limit {out.factor:g}x), "
                     f"p {out.p:.3g}: {out.verdict}")  # fmt: skip
    kinds = [k for k, hit in (("input", inp.drift), ("output", out is not None and out.alert)) if hit]
    lines.append(f"DRIFT ({', '.join(kinds)})" if kinds else "no drift")
    return "\n".join(lines)
