"""Reading and writing ADC2021-layout HDF5 event files.

Files from the public ADC2021 release load unchanged: ``Particles`` may be float64 or float32 and
extra datasets (``EvtId``, ...) are ignored. Large files are read in chunks so memory stays flat.
Every write goes to a temporary file in the target directory that is renamed into place, so a
reader never sees a half-written file. Written files are byte-reproducible (no HDF5 timestamps).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from l1ad.core.files import atomic_path
from l1ad.events import schema
from l1ad.events.validate import EventFileError, check_shape, validate

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 200_000


def open_h5(path: str | Path) -> h5py.File:
    """An event file opened for reading (EventFileError naming it when missing or not HDF5)."""
    path = Path(path)
    if not path.exists():
        raise EventFileError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise EventFileError(f"{path}: not a readable HDF5 file ({e})") from e


def particles_dataset(f: h5py.File, path: str | Path) -> h5py.Dataset:
    """The checked ``Particles`` dataset of an open file (EventFileError naming what is wrong)."""
    if schema.DATASET_PARTICLES not in f:
        raise EventFileError(
            f"{path}: missing dataset '{schema.DATASET_PARTICLES}' (found: {sorted(f.keys())})"
        )
    ds = f[schema.DATASET_PARTICLES]
    check_shape(ds.shape, str(path))
    if ds.dtype.kind != "f":
        raise EventFileError(
            f"{path}: dataset '{schema.DATASET_PARTICLES}' has dtype {ds.dtype}, expected float"
        )
    return ds


def count_events(path: str | Path) -> int:
    with open_h5(path) as f:
        return int(particles_dataset(f, path).shape[0])


def iter_chunks(
    path: str | Path,
    chunk_size: int = DEFAULT_CHUNK,
    *,
    check: bool = True,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_row, particles)`` blocks of at most ``chunk_size`` events as float32."""
    with open_h5(path) as f:
        ds = particles_dataset(f, path)
        stop = ds.shape[0] if stop is None else min(stop, ds.shape[0])
        for lo in range(start, stop, chunk_size):
            block = np.asarray(ds[lo : min(lo + chunk_size, stop)], dtype=np.float32)
            if check:
                validate(block, str(path), row_offset=lo)
            yield lo, block


def read_events(
    path: str | Path, *, start: int = 0, stop: int | None = None, check: bool = True
) -> np.ndarray:
    """Read (a slice of) ``Particles`` as an (N, 19, 4) float32 array, validated by default."""
    blocks = [b for _, b in iter_chunks(path, check=check, start=start, stop=stop)]
    if not blocks:
        return np.zeros((0, schema.N_OBJECTS, schema.N_FEATURES), dtype=np.float32)
    return np.concatenate(blocks) if len(blocks) > 1 else blocks[0]


def data_hash(particles: np.ndarray) -> str:
    """sha256 of the float32 particle array bytes (what models record as their training data)."""
    h = hashlib.sha256()
    update_data_hash(h, particles)
    return h.hexdigest()


def update_data_hash(h: Any, particles: np.ndarray) -> None:
    """Feed one block of rows into a :func:`data_hash` computed block by block (blocks in row order
    give the hash of their concatenation: a large file is hashed without holding it in memory)."""
    h.update(np.ascontiguousarray(particles, dtype=np.float32).tobytes())


def _write_labels(f: h5py.File) -> None:
    """The ``Particles_Classes`` and ``Particles_Names`` string datasets of the layout."""
    strings = h5py.string_dtype("utf-8")
    for name, labels in (
        (schema.DATASET_CLASSES, schema.CLASS_LABELS),
        (schema.DATASET_NAMES, schema.FEATURE_NAMES),
    ):
        f.create_dataset(name, data=np.array(labels, dtype=object), dtype=strings, track_times=False)


def _write_datasets(f: h5py.File, particles: np.ndarray, extra: dict[str, np.ndarray] | None) -> None:
    chunk_rows = max(1, min(len(particles), 65536))
    f.create_dataset(
        schema.DATASET_PARTICLES,
        data=particles,
        chunks=(chunk_rows, schema.N_OBJECTS, schema.N_FEATURES) if len(particles) else None,
        compression="gzip" if len(particles) else None,
        compression_opts=1 if len(particles) else None,
        shuffle=bool(len(particles)),
        track_times=False,
    )
    _write_labels(f)
    for name, values in (extra or {}).items():
        if name in (schema.DATASET_PARTICLES, schema.DATASET_CLASSES, schema.DATASET_NAMES):
            raise ValueError(f"extra dataset name {name!r} collides with the layout")
        if len(values) != len(particles):
            raise ValueError(f"extra dataset {name!r} has {len(values)} rows, Particles has {len(particles)}")
        f.create_dataset(name, data=values, track_times=False)


def write_events(
    path: str | Path,
    particles: np.ndarray,
    *,
    extra: dict[str, np.ndarray] | None = None,
    check: bool = True,
) -> Path:
    """Write an ADC2021-layout file atomically (float32, gzip); validates the array first."""
    particles = np.ascontiguousarray(particles, dtype=np.float32)
    if check:
        validate(particles, f"{path} (before writing)")
    else:
        check_shape(particles.shape, str(path))
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", libver="earliest", track_order=False) as f:
            _write_datasets(f, particles, extra)
    log.debug("wrote %d events to %s", len(particles), path)
    return Path(path)


class EventWriter:
    """Append events chunk by chunk into one file, renamed into place on :meth:`close`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._f = h5py.File(self._tmp, "w", libver="earliest")
        self._ds = self._f.create_dataset(
            schema.DATASET_PARTICLES,
            shape=(0, schema.N_OBJECTS, schema.N_FEATURES),
            maxshape=(None, schema.N_OBJECTS, schema.N_FEATURES),
            dtype=np.float32,
            chunks=(16384, schema.N_OBJECTS, schema.N_FEATURES),
            compression="gzip",
            compression_opts=1,
            shuffle=True,
            track_times=False,
        )
        _write_labels(self._f)
        self.n = 0

    def append(self, particles: np.ndarray) -> None:
        particles = np.asarray(particles, dtype=np.float32)
        check_shape(particles.shape, str(self.path))
        self._ds.resize(self.n + len(particles), axis=0)
        self._ds[self.n :] = particles
        self.n += len(particles)

    def close(self, ok: bool = True) -> None:
        self._f.close()
        if ok:
            self._ctx.__exit__(None, None, None)
        else:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(ok=exc_type is None)


def clean_file(src: str | Path, out: str | Path, repair: bool = False) -> tuple[int, int]:
    """Copy the valid events of ``src`` to ``out`` (``repair`` first fixes what can be fixed); the
    input is never modified. Returns ``(kept, dropped)``; each dropped row is logged with its reason."""
    from l1ad.events import validate as val

    kept = dropped = 0
    with EventWriter(out) as w:
        for lo, block in iter_chunks(src, check=False):
            if repair:
                block = val.repair(block)
            good = val.valid_rows(block)
            for p in val.first_problems(block, row_offset=lo, limit=3):
                log.warning("dropping: %s", p.describe(str(src)))
            w.append(block[good])
            kept += int(good.sum())
            dropped += int((~good).sum())
    return kept, dropped
