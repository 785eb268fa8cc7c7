"""``l1ad firmware calibrate``: trigger thresholds from the firmware's own scores on validation background.

The thresholds of a project are calibrated on background generated for this purpose
(:func:`l1ad.events.default_data.calibration_background`: independent of the training, validation
and test files), scored by the project's bit-exact fast emulator. The default 10M events put the
1 kHz threshold (a fraction 2.5e-5 of 40 MHz) on 250 background events. The rate table
(:func:`l1ad.evaluation.metrics.thresholds_for_rates`: threshold, achieved rate and its binomial
error per target rate) goes to ``<project>/calibration.json`` and into the project's thresholds header
(:func:`l1ad.hls.trigger_menu.install_thresholds`); ``l1ad firmware emulate`` then checks the fire rate
on the test background against it (:func:`l1ad.emulation.trigger.rate_check`).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.core.files import atomic_write_text
from l1ad.evaluation.evaluate import RATES_KHZ
from l1ad.evaluation.metrics import tail_health, thresholds_for_rates
from l1ad.events.default_data import calibration_background
from l1ad.events.encoding import encode
from l1ad.hls.metadata import read_metadata
from l1ad.hls.trigger_menu import install_thresholds

logger = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
DEFAULT_EVENTS = 10_000_000
#: Background events the lowest-rate threshold should rest on (the issue's requirement).
MIN_EVENTS_ABOVE = 250


def firmware_emulator(project: Path) -> Any:
    """The project's fast bit-exact emulator (``predict(x) -> (N, n_out)``)."""
    from l1ad.emulation.fast import FastEmulator

    return FastEmulator(project)


def calibrate_project(
    project_dir: str | Path,
    n_events: int = DEFAULT_EVENTS,
    seed: int = 1,
    rates_khz: tuple[float, ...] = RATES_KHZ,
    chunk: int = 250_000,
    emulator: Any | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score ``n_events`` calibration events with the firmware, install the thresholds; the record."""
    project = Path(project_dir)
    meta = read_metadata(project)
    emu = emulator if emulator is not None else firmware_emulator(project)
    scores = np.empty(n_events, dtype=np.float64)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_events, unit="ev", desc=f"calibrate {meta['target']}", file=sys.stderr)
    t0, t_emu, done = time.perf_counter(), 0.0, 0
    for particles in calibration_background(n_events, seed, chunk):
        x = encode(particles)
        t1 = time.perf_counter()
        y = np.asarray(emu.predict(x), dtype=np.float64).reshape(len(x), -1)
        t_emu += time.perf_counter() - t1
        scores[done : done + len(x)] = y[:, 0]
        done += len(x)
        if bar is not None:
            bar.update(len(x))
    if bar is not None:
        bar.close()
    rows = thresholds_for_rates(scores, rates_khz)
    for row in rows:
        if row["resolved"]:
            row["n_events_above"] = int(np.sum(scores > row["threshold"]))
    lowest = min(rows, key=lambda r: r["target_rate_khz"])
    if lowest.get("n_events_above", 0) < MIN_EVENTS_ABOVE:
        logger.warning(
            "%s: the %g kHz threshold rests on %s calibration events (< %d): pass more --n-events",
            meta["target"], lowest["target_rate_khz"], lowest.get("n_events_above", 0), MIN_EVENTS_ABOVE,
        )  # fmt: skip
    source = {
        "kind": "calibration",
        "file": CALIBRATION_FILE,
        "background": "l1ad fast generator, calibration stream (independent of the data set files)",
        "n_events": int(n_events),
        "seed": int(seed),
    }
    tail = tail_health(scores, lowest["target_rate_khz"])  # the evaluation's tail check, on 10M events
    record = {
        "target": meta["target"],
        **source,
        "emulator": getattr(emu, "name", type(emu).__name__),
        "emulator_events_per_second": n_events / t_emu if t_emu > 0 else None,
        "seconds": time.perf_counter() - t0,
        "distinct_scores_above_lowest_threshold": tail["distinct_above_threshold"],
        "score_max": tail["max_score"],
        "n_at_score_max": tail["n_at_max"],
        "rates": rows,
    }
    atomic_write_text(project / CALIBRATION_FILE, json.dumps(record, indent=1, sort_keys=True) + "\n")
    install_thresholds(project, rows, source)
    return record


def summary(record: dict[str, Any]) -> str:
    """Human summary of a calibration record."""
    lines = [
        f"{record['target']}: thresholds calibrated on {record['n_events']:,} validation background events "
        f"(seed {record['seed']}, {record['emulator']}, {record['seconds']:.0f} s)"
    ]
    for r in record["rates"]:
        if not r["resolved"]:
            lines.append(f"  {r['target_rate_khz']:g} kHz: unresolved")
            continue
        lines.append(
            f"  {r['target_rate_khz']:g} kHz: score > {r['threshold']:.6g}  "
            f"({r['n_events_above']} events above; calibration rate {r['achieved_rate_khz']:.3f} "
            f"+- {r['achieved_rate_err_khz']:.3f} kHz)"
        )
    return "\n".join(lines)
