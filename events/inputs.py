"""Read the network inputs of an events file for emulation and test benches.

Accepted files:

* HDF5 (``.h5``/``.hdf5``) with the ADC2021 ``Particles`` dataset (N, 19, 4): hardware-encoded with
  :func:`l1ad.events.encoding.encode` (on the input grid, saturated like the L1 scales);
* ``.npy`` with (N, 19, 4) particles (encoded the same way) or (N, 57) network inputs used as they
  are (this is how tests push values outside the input range on purpose).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from l1ad.events import io as events_io
from l1ad.events import schema
from l1ad.events.encoding import encode

logger = logging.getLogger(__name__)


def _from_array(a: np.ndarray, what: str) -> np.ndarray:
    if a.ndim == 3 and a.shape[1:] == (schema.N_OBJECTS, schema.N_FEATURES):
        return encode(a)
    if a.ndim == 2 and a.shape[1] == schema.N_INPUTS:
        return np.ascontiguousarray(a, dtype=np.float32)
    raise ValueError(
        f"{what}: expected (N, {schema.N_OBJECTS}, {schema.N_FEATURES}) particles or (N, {schema.N_INPUTS}) "
        f"inputs, got shape {a.shape}"
    )


def iter_inputs(path: str | Path, chunk: int = 65536, limit: int | None = None) -> Iterator[np.ndarray]:
    """(n, 57) float32 network inputs, ``chunk`` events at a time (at most ``limit`` in total)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"events file {p} does not exist")
    if p.suffix in (".h5", ".hdf5"):
        for _, block in events_io.iter_chunks(p, chunk, stop=limit):  # validated: errors name the row
            yield encode(block)
    elif p.suffix == ".npy":
        a = np.load(p, mmap_mode="r")
        n = len(a) if limit is None else min(limit, len(a))
        for start in range(0, n, chunk):
            yield _from_array(np.asarray(a[start : min(start + chunk, n)]), str(p))
    else:
        raise ValueError(f"{p}: unsupported events file (use .h5 with 'Particles', or .npy)")


def count_events(path: str | Path) -> int:
    p = Path(path)
    if p.suffix in (".h5", ".hdf5"):
        return events_io.count_events(p)
    return len(np.load(p, mmap_mode="r"))


def load_inputs(path: str | Path, limit: int | None = None) -> np.ndarray:
    """All (or the first ``limit``) network inputs of an events file as one (N, 57) float32 array."""
    parts = list(iter_inputs(path, limit=limit))
    return np.concatenate(parts) if parts else np.zeros((0, schema.N_INPUTS), dtype=np.float32)
