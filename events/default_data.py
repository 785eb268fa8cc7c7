"""The embedded default data set: generated background splits and the four benchmark signals.

``generate_dataset`` writes ``background_{train,val,test}.h5`` and ``signal_<name>.h5`` into a
directory, chunk by chunk (flat memory), each chunk seeded from ``SeedSequence([seed, file, chunk])``
so that the same seed gives the same bytes whatever else runs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from l1ad.core.files import atomic_write_text
from l1ad.events import schema
from l1ad.events.io import EventWriter

log = logging.getLogger(__name__)

#: Background split fractions (train : val : test = 5 : 1 : 5), so the default 2.2M events give
#: 1M training, 200k validation and 1M test events (1e-5 working points resolved).
SPLITS = {"train": 5 / 11, "val": 1 / 11, "test": 5 / 11}
DEFAULT_N_BACKGROUND = 2_200_000
DEFAULT_N_SIGNAL = 100_000
CHUNK = 250_000
#: Seed-stream index of the trigger-calibration background (:func:`calibration_background`): distinct from
#: the background files (0, 1, 2) and the signals (10 + j), so it shares no event with any of them.
CALIBRATION_STREAM = 100


def split_sizes(n_background: int) -> dict[str, int]:
    sizes = {k: int(n_background * f) for k, f in SPLITS.items()}
    sizes["train"] += n_background - sum(sizes.values())
    return sizes


def _chunk_seed(seed: int, file_index: int, chunk_index: int) -> int:
    return int(np.random.SeedSequence([seed, file_index, chunk_index]).generate_state(1)[0])


def _write(path: Path, n: int, make, seed: int, file_index: int) -> dict:
    t0 = time.perf_counter()
    with EventWriter(path) as w:
        for c, lo in enumerate(range(0, n, CHUNK)):
            w.append(make(min(CHUNK, n - lo), _chunk_seed(seed, file_index, c)))
    dt = time.perf_counter() - t0
    log.info("%-28s %9d events  %6.1f s  (%.0f events/s incl. writing)", path.name, n, dt, n / max(dt, 1e-9))
    return {"file": path.name, "n_events": n}


def calibration_background(n: int, seed: int = 1, chunk: int = CHUNK) -> Iterator[np.ndarray]:
    """``n`` background events ``(k, 19, 4)`` in chunks, independent of every file of the data set.

    Trigger thresholds are calibrated on this validation background (never on the test background the
    emulated rates are then checked with); it is generated on the fly, chunk ``c`` seeded from
    ``SeedSequence([seed, CALIBRATION_STREAM, c])`` exactly as the files are, so nothing is written.
    """
    from l1ad.events.generator import generate_background

    if n < 1 or chunk < 1:
        raise ValueError(f"n and chunk must be positive, got n={n}, chunk={chunk}")
    for c, lo in enumerate(range(0, n, chunk)):
        yield generate_background(min(chunk, n - lo), _chunk_seed(seed, CALIBRATION_STREAM, c))


def generate_dataset(
    out_dir: str | Path,
    n_background: int = DEFAULT_N_BACKGROUND,
    n_signal: int = DEFAULT_N_SIGNAL,
    seed: int = 1,
    signals: tuple[str, ...] = schema.SIGNAL_NAMES,
) -> dict:
    """Generate the default files into ``out_dir``; returns (and writes) ``dataset.json``."""
    from l1ad.events.generator import generate_background, generate_signal

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for i, (split, n) in enumerate(split_sizes(n_background).items()):
        files.append(_write(out / f"background_{split}.h5", n, generate_background, seed, i))
    for j, name in enumerate(signals):
        files.append(
            _write(
                out / f"signal_{name}.h5",
                n_signal,
                lambda k, s, name=name: generate_signal(name, k, s),
                seed,
                10 + j,
            )
        )
    manifest = {"generator": "l1ad fast generator", "seed": seed, "files": files}
    atomic_write_text(out / "dataset.json", json.dumps(manifest, indent=1))
    write_summary(out)
    return manifest


def write_summary(data_dir: Path, plot_events: int = 200_000) -> None:
    """``summary.json`` (counts, occupancy, ranges per file) and ``distributions.png`` of a data dir."""
    from l1ad.events.io import read_events
    from l1ad.events.summary import plot_distributions, summarize_file

    files = sorted(data_dir.glob("*.h5"))
    summary = {p.name: summarize_file(p) for p in files}
    atomic_write_text(data_dir / "summary.json", json.dumps(summary, indent=1))
    samples = {
        p.stem.removeprefix("signal_"): read_events(p, stop=plot_events)
        for p in files
        if p.stem != "background_train" and p.stem != "background_val"
    }
    plot_distributions(samples, data_dir / "distributions.png")
    log.info("wrote %s and %s", data_dir / "summary.json", data_dir / "distributions.png")


def dataset_paths(data_dir: str | Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """(background splits, signals) of a generated directory; raises if a file is missing."""
    d = Path(data_dir)
    bkg = {s: d / f"background_{s}.h5" for s in schema.BACKGROUND_SPLITS}
    sig = {n: d / f"signal_{n}.h5" for n in schema.SIGNAL_NAMES}
    missing = [str(p) for p in [*bkg.values(), *sig.values()] if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"{d}: missing generated files {missing} (run `l1ad data generate --out {d}`)"
        )
    return bkg, sig
