"""The reference sample of the drift tests: what "not drifted" means.

Default: a seeded random sample of :data:`REFERENCE_EVENTS` (100,000) events of the rows the run's
model was trained on -- the background file its ``meta.json`` names (``data`` for the torch models,
``background`` for the Keras ones), its first ``n_train + n_val`` rows (``n_train`` alone when the
Keras model had a separate validation file). Those rows are checked against the recorded
``data_sha256`` while they are read, so a regenerated or edited training file is refused instead of
silently becoming the reference. The model learned exactly this distribution, so drift from it is
what makes its scores (and the calibrated flag rate) untrustworthy. 100k events keep the KS tests
sensitive (the reference's own fluctuation is ``sqrt(W / 100k)`` of the window's) at about 20 MB of
sorted float32 values.

``reference=FILE`` overrides it with any HDF5/Parquet event file (no hash check), e.g. a recent
known-good run, or background events on a host without the training data. Either way the sample is
one pass over the file in chunks (:func:`~l1ad.events.sources.open_source`), flat in memory.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from l1ad.events.io import update_data_hash
from l1ad.events.sources import open_source
from l1ad.models.sidecar import read_meta
from l1ad.serving.drift import Summary
from l1ad.serving.state import choose_model

logger = logging.getLogger(__name__)

REFERENCE_EVENTS = 100_000
REFERENCE_SEED = 0
CHUNK = 200_000


def sample_events(path: str | Path, n_max: int = REFERENCE_EVENTS, seed: int = REFERENCE_SEED,
                  rows: int | None = None, sha256: str | None = None) -> np.ndarray:  # fmt: skip
    """A seeded random sample (file order) of at most ``n_max`` of the first ``rows`` events of
    ``path``; with ``sha256``, those rows must hash to it (:func:`l1ad.events.io.data_hash`)."""
    src = open_source(path)
    rows = src.n_events if rows is None else int(rows)
    if rows > src.n_events:
        raise ValueError(f"{path}: the model was trained on {rows} events but the file holds {src.n_events}")
    if rows == 0:
        raise ValueError(f"{path}: no events for a drift reference")
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), 15])))
    take = np.sort(rng.choice(rows, n_max, replace=False)) if rows > n_max else np.arange(rows)
    # data_hash of the rows, fed block by block: the training rows are never all in memory
    h = hashlib.sha256() if sha256 else None
    parts = []
    for lo in range(0, rows, CHUNK):
        hi = min(lo + CHUNK, rows)
        block = src.read(lo, hi)
        if h is not None:
            update_data_hash(h, block)
        sel = take[(take >= lo) & (take < hi)] - lo
        parts.append(block[sel])
    if h is not None and h.hexdigest() != sha256:
        raise ValueError(
            f"{path}: its first {rows} events do not hash to the model's data_sha256 {sha256[:12]}...: "
            "the file changed since training; pass the reference explicitly (--reference / --drift-reference)"
        )
    return np.concatenate(parts)


def training_data(run_dir: str | Path, model: str | None = None) -> tuple[Path, int | None, str | None]:
    """``(file, rows trained on, data_sha256)`` of the model the service would choose in ``run_dir``."""
    trained = choose_model(Path(run_dir), model)
    meta = read_meta(trained.path)
    data = meta.get("data") or meta.get("background")
    if not data:
        raise ValueError(f"{trained.path}/meta.json names no training file ('data' or 'background')")
    n_train, n_val = meta.get("n_train"), meta.get("n_val")
    rows = None
    if n_train is not None:
        rows = int(n_train) + (0 if meta.get("validation") or n_val is None else int(n_val))
    return Path(data), rows, meta.get("data_sha256")


def load_reference(run_dir: str | Path | None = None, model: str | None = None,
                   reference: str | Path | None = None, n_max: int = REFERENCE_EVENTS,
                   seed: int = REFERENCE_SEED) -> Summary:  # fmt: skip
    """The reference :class:`~l1ad.serving.drift.Summary`: of ``reference`` when given, else of the
    training rows of the run's model (see the module docstring)."""
    if reference is not None:
        particles = sample_events(reference, n_max, seed)
        source = f"{reference} ({len(particles)} events, seeded sample)"
    else:
        if run_dir is None:
            raise ValueError("a drift reference needs a run directory or a reference file")
        path, rows, sha = training_data(run_dir, model)
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: the model's training file is gone; pass a reference file "
                                    "(--reference / --drift-reference)")  # fmt: skip
        particles = sample_events(path, n_max, seed, rows, sha)
        source = f"{path} ({len(particles)} of the {rows or len(particles)} training events, seeded sample)"
    logger.info("drift reference: %s", source)
    return Summary.of(particles, source)
