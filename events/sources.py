"""Event sources for offline scoring: ADC2021 HDF5 or Parquet, a local path or an fsspec URL, read by slice.

:func:`open_source` returns an :class:`EventSource` that knows its event count and reads any row
range ``[start, stop)`` as a validated (N, 19, 4) float32 array. A source is a small picklable value
(the path and its format): every reader (a batch-job chunk, a Dask task) opens the file itself, so no
h5py or pyarrow handle ever crosses a process boundary.

Parquet layout (what :func:`write_parquet_events` writes and :func:`read_parquet_slice` reads): one
row per event, the 57 float32 columns of :func:`~l1ad.events.schema.flat_feature_names`
(``MET_pt``, ``MET_eta``, ``MET_phi``, ``e1_pt``, ...). MET is always present; any other slot is
present when its pT is non-zero, with the slot's class code (:data:`~l1ad.events.schema.SLOT_CLASS`):
:func:`kinematics_to_particles`, the one conversion of 57 kinematics into particles (the service's
JSON and tensor inputs use it too). :func:`write_parquet_events` refuses an event it could not read
back identically (a present object with pT = 0), so a Parquet file holds exactly the events of the
HDF5 file it was written from. Other columns are ignored.

:func:`identity` fingerprints an input (path, format, events, size, mtime, sha256 of its first and
last MiB): what a resumed batch job or a rerun of ``l1ad score`` checks before reusing results.

A path with ``://`` is an fsspec URL (``file://``, ``memory://``, ``s3://`` ...); it needs fsspec and
the filesystem's package (``s3fs`` for ``s3://``), and says so when they are missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.core.files import atomic_path
from l1ad.events import io, schema
from l1ad.events.validate import EventFileError, validate

logger = logging.getLogger(__name__)

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
PARQUET_SUFFIXES = (".parquet", ".pq")


def is_url(path: str | Path) -> bool:
    """An fsspec URL (``scheme://...``), not a local path."""
    return "://" in str(path)


def normalize(path: str | Path) -> str:
    """A URL as given; a local path absolute and resolved (a restarted server or another working
    directory finds the same file)."""
    p = str(path)
    return p if is_url(p) else str(Path(p).expanduser().resolve())


def _format(path: str) -> str:
    name = path.rsplit("/", 1)[-1].lower()
    if name.endswith(HDF5_SUFFIXES):
        return "hdf5"
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise EventFileError(
        f"{path}: unknown event file format (expected {', '.join(HDF5_SUFFIXES + PARQUET_SUFFIXES)})"
    )


@contextmanager
def _fsspec_open(path: str):
    """The open remote file, closed when the block ends."""
    try:
        import fsspec
    except ImportError as e:  # pragma: no cover - fsspec comes with dask
        raise EventFileError(f"{path}: an fsspec URL needs the fsspec package ({e})") from e
    try:
        of = fsspec.open(path, "rb")
        fh = of.open()
    except (ImportError, ValueError) as e:
        raise EventFileError(f"{path}: no fsspec filesystem for this URL ({e})") from e
    except (FileNotFoundError, OSError) as e:
        raise EventFileError(f"{path}: no such file ({e})") from e
    try:
        yield fh
    finally:
        fh.close()


@contextmanager
def _h5(path: str):
    import h5py

    if not is_url(path):
        with io.open_h5(path) as f:
            yield f
        return
    with _fsspec_open(path) as fh:
        try:
            f = h5py.File(fh, "r")
        except OSError as e:
            raise EventFileError(f"{path}: not a readable HDF5 file ({e})") from e
        with f:
            yield f


@contextmanager
def _parquet(path: str):
    import pyarrow.parquet as pq

    def opened(src: Any):
        try:
            return pq.ParquetFile(src)
        except Exception as e:  # pyarrow raises ArrowInvalid/OSError for anything not Parquet
            raise EventFileError(f"{path}: not a readable Parquet file ({e})") from e

    if is_url(path):
        with _fsspec_open(path) as fh:
            pf = opened(fh)
            try:
                yield pf
            finally:
                pf.close()
        return
    if not Path(path).exists():
        raise EventFileError(f"{path}: no such file")
    pf = opened(path)
    try:
        yield pf
    finally:
        pf.close()


def _parquet_columns(pf: Any, path: str) -> list[str]:
    names = schema.flat_feature_names()
    have = set(pf.schema_arrow.names)
    missing = [n for n in names if n not in have]
    if missing:
        raise EventFileError(
            f"{path}: missing column(s) {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} "
            f"({len(missing)} of the 57 event columns)"
        )
    for n in names:
        t = pf.schema_arrow.field(n).type
        if not (str(t).startswith("float") or str(t) in ("double", "halffloat")):
            raise EventFileError(f"{path}: column '{n}' has type {t}, expected float")
    return names


def kinematics_to_particles(x: np.ndarray) -> np.ndarray:
    """(N, 57) or (N, 19, 3) [pT, eta, phi] per slot -> (N, 19, 4) float32 particles: MET always
    present, any other slot present iff its pT != 0 (a negative pT is a bad object, not padding)."""
    k = np.asarray(x, dtype=np.float32).reshape(-1, schema.N_OBJECTS, 3)
    p = np.zeros((len(k), schema.N_OBJECTS, schema.N_FEATURES), dtype=np.float32)
    p[:, :, :3] = k
    present = k[:, :, schema.PT] != 0
    present[:, schema.MET.first_slot] = True
    p[:, :, schema.CLASS] = np.where(present, schema.SLOT_CLASS[None, :], schema.PADDING_CLASS)
    return p


def read_parquet_slice(path: str, start: int, stop: int) -> np.ndarray:
    """Rows ``[start, stop)`` of a Parquet event file as (N, 19, 4) float32 (not validated)."""
    parts: list[np.ndarray] = []
    with _parquet(path) as pf:
        names = _parquet_columns(pf, path)
        row = 0
        for g in range(pf.num_row_groups):  # read only the row groups that overlap the slice
            n = pf.metadata.row_group(g).num_rows
            lo, hi = max(start, row), min(stop, row + n)
            if lo < hi:
                t = pf.read_row_group(g, columns=names)
                cols = [t.column(c).to_numpy()[lo - row : hi - row].astype(np.float32) for c in names]
                parts.append(np.stack(cols, axis=1))
            row += n
            if row >= stop:
                break
    x = np.concatenate(parts) if parts else np.zeros((0, schema.N_INPUTS), np.float32)
    return kinematics_to_particles(x)


@dataclass(frozen=True)
class EventSource:
    """One event file: picklable, opened anew by every :meth:`read`."""

    path: str
    format: str  # hdf5 | parquet
    n_events: int

    def read(self, start: int = 0, stop: int | None = None, check: bool = True) -> np.ndarray:
        """Rows ``[start, stop)`` as (N, 19, 4) float32, validated with the file's own row numbers."""
        stop = self.n_events if stop is None else min(stop, self.n_events)
        if self.format == "hdf5":
            with _h5(self.path) as f:
                block = np.asarray(io.particles_dataset(f, self.path)[start:stop], dtype=np.float32)
        else:
            block = read_parquet_slice(self.path, start, stop)
        if check:
            dataset = schema.DATASET_PARTICLES if self.format == "hdf5" else None
            validate(block, self.path, row_offset=start, dataset=dataset)
        return block

    def slices(self, chunk: int) -> list[tuple[int, int]]:
        """``[start, stop)`` ranges of at most ``chunk`` events covering the file."""
        if chunk < 1:
            raise ValueError(f"chunk size must be >= 1, got {chunk}")
        return [(lo, min(lo + chunk, self.n_events)) for lo in range(0, self.n_events, chunk)]


def open_source(path: str | Path) -> EventSource:
    """The :class:`EventSource` of an HDF5/Parquet path or URL (EventFileError naming it if unreadable)."""
    p = str(path)
    fmt = _format(p)
    if fmt == "hdf5":
        with _h5(p) as f:
            n = int(io.particles_dataset(f, p).shape[0])
    else:
        with _parquet(p) as pf:
            _parquet_columns(pf, p)
            n = int(pf.metadata.num_rows)
    return EventSource(p, fmt, n)


_END_BYTES = 1 << 20


def identity(source: EventSource) -> dict[str, Any]:
    """Path, format, event count, size, mtime and sha256 of the first and last MiB of an input, and
    ``id``: a hash of all of them (a rewritten or replaced file gets a new id)."""
    if is_url(source.path):
        import fsspec

        fs, p = fsspec.core.url_to_fs(source.path)
        info = fs.info(p)
        size = int(info.get("size") or 0)
        stamp = next((str(info[k]) for k in ("mtime", "LastModified", "ETag", "created") if k in info), "")
        opener = fs.open(p, "rb")
    else:
        st = os.stat(source.path)
        size, stamp = st.st_size, str(st.st_mtime_ns)
        opener = open(source.path, "rb")  # noqa: SIM115 - closed by the with below
    with opener as f:
        digest = hashlib.sha256(f.read(_END_BYTES))
        if size > _END_BYTES:
            f.seek(max(_END_BYTES, size - _END_BYTES))
            digest.update(f.read(_END_BYTES))
    ident = {"path": source.path, "format": source.format, "n_events": source.n_events, "size": size,
             "mtime": stamp, "sha256_ends": digest.hexdigest()}  # fmt: skip
    ident["id"] = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
    return ident


def write_parquet_events(path: str | Path, particles: np.ndarray, row_group: int = 65_536) -> Path:
    """Write events as a Parquet file of the 57 event columns (atomically; row groups of ``row_group``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = np.asarray(particles, dtype=np.float32)
    validate(p, str(path))
    lost = p[:, :, schema.CLASS] != kinematics_to_particles(p[:, :, :3])[:, :, schema.CLASS]
    if lost.any():  # a present object with pT = 0 would read back as padding
        row, slot = (int(v) for v in np.argwhere(lost)[0])
        raise EventFileError(
            f"{path}: row {row} slot {slot} ({schema.slot_names()[slot]}): a present object with pT = 0 "
            "has no Parquet encoding (a slot is present iff its pT != 0); fix or drop the event"
        )
    x = p[:, :, :3].reshape(len(p), -1)
    table = pa.table({n: x[:, j] for j, n in enumerate(schema.flat_feature_names())})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group)
    return Path(path)
