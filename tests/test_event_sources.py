"""Event sources for offline scoring (HDF5 / Parquet, local or fsspec URL, read by slice) and the
offline results format: the same events whatever the container, errors that name file and row."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import make_particles

from l1ad.events import schema
from l1ad.events.io import write_events
from l1ad.events.sources import open_source, write_parquet_events
from l1ad.events.validate import EventFileError
from l1ad.serving.offline import RESULT_COLUMNS, concat_results, read_results, write_results


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("sources")
    p = make_particles(3000, seed=11)
    h5 = write_events(d / "ev.h5", p)
    pq = write_parquet_events(d / "ev.parquet", p, row_group=700)  # slices cross row groups
    return {"p": p, "h5": h5, "pq": pq, "dir": d}


@pytest.mark.parametrize("key", ["h5", "pq"])
@pytest.mark.parametrize("url", [False, True])
@pytest.mark.parametrize(("start", "stop"), [(0, 3000), (650, 2111), (2999, 5000), (1400, 1400)])
def test_every_slice_reads_the_written_events(files, key, url, start, stop) -> None:
    path = f"file://{files[key]}" if url else files[key]
    src = open_source(path)
    assert src.n_events == 3000
    assert src.format == ("hdf5" if key == "h5" else "parquet")
    src = pickle.loads(pickle.dumps(src))  # what a Dask task or a job runner receives
    np.testing.assert_array_equal(src.read(start, stop), files["p"][start:stop])


def test_slices_cover_the_file_once() -> None:
    from l1ad.events.sources import EventSource

    s = EventSource("x.h5", "hdf5", 10)
    assert s.slices(4) == [(0, 4), (4, 8), (8, 10)]
    with pytest.raises(ValueError, match="chunk size"):
        s.slices(0)


def test_bad_files_are_named(files, tmp_path) -> None:
    with pytest.raises(EventFileError, match="nope.parquet: no such file"):
        open_source(tmp_path / "nope.parquet")
    with pytest.raises(EventFileError, match="nope.h5: no such file"):
        open_source(tmp_path / "nope.h5")
    with pytest.raises(EventFileError, match="unknown event file format"):
        open_source(tmp_path / "events.csv")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet")
    with pytest.raises(EventFileError, match="junk.parquet: not a readable Parquet file"):
        open_source(junk)
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = schema.flat_feature_names()
    pq.write_table(pa.table({c: np.zeros(3, np.float32) for c in cols[:-1]}), tmp_path / "short.parquet")
    with pytest.raises(EventFileError, match=f"missing column.*{cols[-1]}"):
        open_source(tmp_path / "short.parquet")


def test_invalid_rows_are_named_with_the_file_row(files, tmp_path) -> None:
    p = files["p"].copy()
    p[1234, 9, schema.ETA] = 7.5  # a jet beyond the acceptance
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = p[:, :, :3].reshape(len(p), -1)
    pq.write_table(pa.table({n: x[:, j] for j, n in enumerate(schema.flat_feature_names())}),
                   tmp_path / "bad.parquet", row_group_size=500)  # fmt: skip
    src = open_source(tmp_path / "bad.parquet")
    src.read(0, 1000)  # the bad row is not in this slice
    with pytest.raises(
        EventFileError, match=r"bad.parquet: row 1234 slot 9 \(jet1, columns jet1_pt/jet1_eta/jet1_phi\)"
    ):
        src.read(1000, 2000)
    p[1234, 9, schema.ETA] = 0.5
    p[17, 2, schema.PT] = -3.0  # e2 with a negative pT: an object with a bad pT, never padding
    src = open_source(write_events(tmp_path / "bad.h5", p, check=False))
    with pytest.raises(
        EventFileError, match=r"bad.h5: dataset 'Particles' row 17 slot 2 \(e2\): negative pT"
    ):
        src.read(10, 20)


def test_write_parquet_refuses_invalid_events(files, tmp_path) -> None:
    p = files["p"][:10].copy()
    p[3, 0, schema.PT] = np.nan
    with pytest.raises(EventFileError, match="row 3"):
        write_parquet_events(tmp_path / "x.parquet", p)


def test_parquet_round_trip_is_exact_and_refuses_what_it_cannot_encode(files, tmp_path) -> None:
    p = files["p"][:50].copy()
    p[3, 0, :3] = 0.0  # MET of exactly 0: valid, and MET is always present
    back = open_source(write_parquet_events(tmp_path / "met0.parquet", p)).read()
    np.testing.assert_array_equal(back, p)
    # the service's JSON/tensor inputs use the same conversion: MET present whatever its pT
    from l1ad.serving.inputs import to_particles

    np.testing.assert_array_equal(to_particles(p[:, :, :3].astype(np.float64)), p)
    q = p.copy()
    q[7, 9] = [0.0, 0.0, 0.0, schema.JET_CLASS]  # a present jet with pT = 0 (valid in HDF5)
    with pytest.raises(EventFileError, match=r"row 7 slot 9 \(jet1\): a present object with pT = 0"):
        write_parquet_events(tmp_path / "jet0.parquet", q)
    assert not (tmp_path / "jet0.parquet").exists()


def test_identity_changes_with_content_of_the_same_size(tmp_path) -> None:
    import os

    from l1ad.events.sources import identity

    p = make_particles(200, seed=3)
    path = write_events(tmp_path / "a.h5", p)
    before = identity(open_source(path))
    st = os.stat(path)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # same size, same mtime, one byte differs (inside the last MiB)
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = identity(open_source(path))
    assert (after["size"], after["mtime"]) == (before["size"], before["mtime"])
    assert after["id"] != before["id"]
    assert identity(open_source(path)) == after  # deterministic


def test_results_round_trip_and_concat(tmp_path) -> None:
    rng = np.random.default_rng(0)
    s = rng.normal(size=100)
    f = s > 1.0
    meta = {"model": "ebm-float", "threshold": 1.0, "rate_khz": 5.0}
    a = write_results(tmp_path / "a.parquet", 0, s[:60], f[:60], meta)
    b = write_results(tmp_path / "b.parquet", 60, s[60:], f[60:], meta)
    out = concat_results([a, b], tmp_path / "all.parquet", meta)
    cols, got = read_results(out)
    assert tuple(cols) == RESULT_COLUMNS and got == meta
    np.testing.assert_array_equal(cols["event_index"], np.arange(100))
    np.testing.assert_array_equal(cols["score"], s)
    np.testing.assert_array_equal(cols["flag"], f)
    with pytest.raises(ValueError, match="3 flags for 4 scores"):
        write_results(tmp_path / "c.parquet", 0, s[:4], f[:3], meta)
