"""``l1ad score`` on Dask: a real process-based LocalCluster (two workers, one thread each) scores HDF5
and Parquet inputs in several partitions per file, bit for bit as in-process scoring; reruns reuse
finished parts and never stale ones; bad inputs fail naming file and row; ``--scheduler`` drives an
externally started cluster."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from toy_runs import toy_runs

from l1ad.events.io import write_events
from l1ad.events.sources import identity, open_source, write_parquet_events
from l1ad.events.validate import EventFileError
from l1ad.models import registry
from l1ad.models.ebm.toydata import toy_events
from l1ad.serving import dask_score as ds
from l1ad.serving.offline import OfflineScorer, ScorerSpec, read_results

CHUNK = 700  # several partitions per file, none aligned with the model's score batches


def _events(n: int, seed: int) -> np.ndarray:
    """Toy background with a tenth anomalous events, so that some events pass the threshold."""
    k = n // 10
    return np.concatenate([toy_events(n - k, seed=seed), toy_events(k, seed=seed + 100, anomalous=True)])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two runs (different seeds, so different model files) with an energy model and a rate table, and
    run ``c``: run ``a`` with run ``b``'s network weights (another model hash, ``a``'s thresholds)."""
    import shutil

    root = tmp_path_factory.mktemp("runs")
    toy_runs(root, (("a", 0), ("b", 1)))
    shutil.copytree(root / "a", root / "c")
    shutil.copy(root / "b" / "ebm-float" / "model.pt", root / "c" / "ebm-float" / "model.pt")
    return {"a": root / "a", "b": root / "b", "c": root / "c"}


@pytest.fixture(scope="module")
def client():
    """One process-based LocalCluster for the module (start-up costs seconds)."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, memory_limit="2GiB",
                           dashboard_address=":0")  # fmt: skip
    with cluster, Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """An HDF5 and a Parquet input, and a second HDF5 with the same file name in another folder."""
    root = tmp_path_factory.mktemp("inputs")
    (root / "other").mkdir()
    return {
        "h5": write_events(root / "events.h5", _events(2600, seed=1)),
        "parquet": write_parquet_events(root / "events.parquet", _events(1900, seed=2), row_group=500),
        "h5_same_stem": write_events(root / "other" / "events.h5", _events(1500, seed=3)),
    }


def _reference(run: Path, path: Path | str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In-process scoring of the whole file: OfflineScorer's (scores, flags) and the registry's score."""
    events = open_source(path).read()
    scorer = OfflineScorer(ScorerSpec(str(run)))
    try:
        scores, flags = scorer(events)
    finally:
        scorer.close()
    return scores, flags, registry.primary_score(registry.find(run, "ebm/float"), events)


def _assert_equals_in_process(out: Path, run: Path, path: Path | str) -> None:
    got = ds.read_scored(out, path)
    scores, flags, primary = _reference(run, path)
    assert_array_equal(got["event_index"], np.arange(len(scores)))
    assert_array_equal(got["score"], scores)
    assert_array_equal(got["score"], primary)
    assert_array_equal(got["flag"], flags)


def test_dask_scoring_equals_in_process_scoring(runs, client, inputs, tmp_path) -> None:
    paths = list(inputs.values())
    m = ds.score_files(paths, tmp_path, ScorerSpec(str(runs["a"])), client, chunk_size=CHUNK)
    for p in paths:
        _assert_equals_in_process(tmp_path, runs["a"], p)
        assert sum(r["file"] == str(p) for r in m["partitions"]) == -(-open_source(p).n_events // CHUNK) > 1
    flags = np.concatenate([ds.read_scored(tmp_path, p)["flag"] for p in paths])
    assert flags.any() and not flags.all()  # the flag comparison means something
    assert m["totals"]["n_flagged"] == flags.sum() == sum(r["n_flagged"] for r in m["partitions"])
    assert m["totals"]["n_events"] == m["totals"]["events_scored"] == len(flags)
    assert m["totals"]["n_scored"] == len(m["partitions"]) and m["totals"]["n_reused"] == 0
    # one model per worker: more partitions than workers, at most one scorer instance per worker
    assert len(m["partitions"]) > 2 >= len({r["scorer_instance"] for r in m["partitions"]})
    # the two events.h5 inputs get their own part folders; the manifest on disk is the returned one
    assert len({Path(r["part"]).parent for r in m["partitions"]}) == 3
    assert json.loads((tmp_path / ds.MANIFEST).read_text()) == json.loads(json.dumps(m))
    assert m["scorer"]["model_hash"] == registry.model_hash(runs["a"] / "ebm-float")
    assert m["cluster"]["workers"] == 2 and m["cluster"]["workers_lost"] == 0


def test_rerun_reuses_finished_parts_and_never_stale_ones(runs, client, inputs, tmp_path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    h5 = write_events(src / "x.h5", _events(1500, seed=4))
    pq_path = write_parquet_events(src / "x.parquet", _events(1600, seed=5), row_group=400)
    out = tmp_path / "out"
    spec_a = ScorerSpec(str(runs["a"]))
    first = ds.score_files([h5, pq_path], out, spec_a, client, chunk_size=CHUNK)
    n = len(first["partitions"])
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("parts/*/part-*.parquet")}

    again = ds.score_files([h5, pq_path], out, spec_a, client, chunk_size=CHUNK)
    assert (again["totals"]["n_scored"], again["totals"]["n_reused"]) == (0, n)
    assert {p: p.stat().st_mtime_ns for p in out.glob("parts/*/part-*.parquet")} == stamps  # not rewritten
    assert again["totals"]["n_flagged"] == first["totals"]["n_flagged"]

    (out / first["partitions"][1]["part"]).unlink()  # a missing part: only it is scored again
    assert ds.score_files([h5, pq_path], out, spec_a, client, chunk_size=CHUNK)["totals"]["n_scored"] == 1

    # another model with the very same threshold: nothing is reused
    swapped = ds.score_files([h5, pq_path], out, ScorerSpec(str(runs["c"])), client, chunk_size=CHUNK)
    assert swapped["scorer"]["threshold"] == first["scorer"]["threshold"]
    assert swapped["scorer"]["model_hash"] != first["scorer"]["model_hash"]
    assert swapped["totals"]["n_scored"] == n

    # another run: nothing is reused, every part now holds model B's scores
    spec_b = ScorerSpec(str(runs["b"]))
    other = ds.score_files([h5, pq_path], out, spec_b, client, chunk_size=CHUNK)
    assert other["totals"]["n_scored"] == n
    hash_b = registry.model_hash(runs["b"] / "ebm-float")
    assert hash_b != first["scorer"]["model_hash"]
    assert {read_results(out / r["part"])[1]["model_hash"] for r in other["partitions"]} == {hash_b}
    _assert_equals_in_process(out, runs["b"], h5)

    # the Parquet input rewritten with other events (same count): only its partitions are scored again
    write_parquet_events(pq_path, _events(1600, seed=6), row_group=400)
    changed = ds.score_files([h5, pq_path], out, spec_b, client, chunk_size=CHUNK)
    scored = {r["file"] for r in changed["partitions"] if not r["reused"]}
    assert scored == {str(pq_path)} and changed["totals"]["n_scored"] == -(-1600 // CHUNK)
    _assert_equals_in_process(out, runs["b"], pq_path)
    _assert_equals_in_process(out, runs["b"], h5)

    # another rate (threshold) or chunking: scored again; parts of the old chunking are removed
    rate = ds.score_files([h5], out, ScorerSpec(str(runs["b"]), rate_khz=50.0), client, chunk_size=CHUNK)
    assert rate["totals"]["n_reused"] == 0
    rechunked = ds.score_files([h5], out, spec_b, client, chunk_size=1000)
    assert rechunked["totals"]["n_reused"] == 0
    assert len(list(out.glob(f"parts/{Path(rechunked['partitions'][0]['part']).parent.name}/*"))) == 2
    _assert_equals_in_process(out, runs["b"], h5)


def test_bad_inputs_fail_naming_file_and_row(runs, client, tmp_path) -> None:
    import h5py

    good = write_events(tmp_path / "good.h5", _events(1000, seed=7))
    bad = _events(3000, seed=8)
    bad[1234, 0, 0] = -5.0  # negative MET pT in the second partition
    with h5py.File(tmp_path / "bad.h5", "w") as f:  # written raw: write_events would refuse it
        f["Particles"] = bad
    spec = ScorerSpec(str(runs["a"]))
    out = tmp_path / "out"
    with pytest.raises(EventFileError, match=r"bad\.h5: dataset 'Particles' row 1234 .*negative pT"):
        ds.score_files([good, tmp_path / "bad.h5"], out, spec, client, chunk_size=1000)
    assert not (out / ds.MANIFEST).exists()
    with pytest.raises(EventFileError, match=r"missing\.parquet: no such file"):
        ds.score_files([good, tmp_path / "missing.parquet"], out, spec, client)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"MET_pt": np.ones(3, np.float32)}), tmp_path / "cols.parquet")
    with pytest.raises(EventFileError, match=r"cols\.parquet: missing column\(s\) MET_eta"):
        ds.score_files([tmp_path / "cols.parquet"], out, spec, client)
    with pytest.raises(ValueError, match="more than once"):
        ds.score_files([good, str(good)], out, spec, client=None)


@pytest.mark.allow_error_logs
def test_cli_against_a_scheduler_address(runs, client, inputs, tmp_path, capsys) -> None:
    from l1ad.cli.main import main

    out = tmp_path / "out"
    h5_url = f"file://{inputs['h5']}"  # an fsspec URL, read by the workers through fsspec
    argv = ["score", h5_url, str(inputs["parquet"]), "--out", str(out), "--run", str(runs["a"]),
            "--scheduler", client.scheduler.address, "--chunk-size", "800"]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    m = json.loads((out / ds.MANIFEST).read_text())
    assert f"{m['totals']['n_events']} events in 2 file(s), {m['totals']['n_flagged']} flagged" in text
    assert f"manifest: {out}/manifest.json" in text
    assert m["cluster"]["scheduler"] == client.scheduler.address and m["cluster"]["workers"] == 2
    assert m["inputs"][0]["path"] == h5_url
    for p in (h5_url, inputs["parquet"]):
        _assert_equals_in_process(out, runs["a"], p)
    # a failure exits non-zero with the message logged; an unreachable scheduler is named
    assert main(argv[:1] + [str(tmp_path / "nope.h5")] + argv[3:]) == 2
    with pytest.raises(RuntimeError, match=r"cannot connect to the Dask scheduler at tcp://127\.0\.0\.1:9"):
        with ds.dask_client("tcp://127.0.0.1:9", timeout="1s"):
            pass


def test_cli_starts_its_own_local_cluster(runs, inputs, tmp_path, capsys) -> None:
    from l1ad.cli.main import main

    out = tmp_path / "out"
    argv = ["score", str(inputs["parquet"]), "--out", str(out), "--run", str(runs["a"]), "--workers", "1",
            "--memory-limit", "1.5GiB", "--chunk-size", "600", "--rate-khz", "50"]  # fmt: skip
    assert main(argv) == 0
    m = json.loads((out / ds.MANIFEST).read_text())
    assert m["cluster"]["workers"] == 1 and m["scorer"]["rate_khz"] == 50.0
    assert m["cluster"]["scheduler"].startswith("tcp://127.0.0.1")
    got = ds.read_scored(out, inputs["parquet"])
    scorer = OfflineScorer(ScorerSpec(str(runs["a"]), rate_khz=50.0))
    scores, flags = scorer(open_source(inputs["parquet"]).read())
    assert_array_equal(got["score"], scores)
    assert_array_equal(got["flag"], flags)
    assert "1 worker(s)" in capsys.readouterr().out


class _FakeClient:
    """Answers ``client.run(worker_state, ...)`` with given worker states (no cluster)."""

    def __init__(self, states: dict[str, dict]) -> None:
        self.states = states

    def run(self, func, *args):
        return self.states


def test_worker_memory_and_model_checks() -> None:
    meta = {
        "model": "ebm-float",
        "model_hash": "ab" * 32,
        "score": "ebm/float",
        "rate_khz": 5.0,
        "threshold": 1.0,
    }
    state = {"scorer": meta, "rss": 300 * 2**20, "memory_limit": 512 * 2**20, "pause_fraction": 0.8}
    assert ds._check_workers(_FakeClient({"w1": state, "w2": dict(state)}), "p") == meta
    full = dict(state, rss=450 * 2**20)  # above 80 % of 512 MiB: it would pause before its first task
    with pytest.raises(RuntimeError, match=r"w2 uses 450 MiB .* pause threshold \(80% of 512 MiB\)"):
        ds._check_workers(_FakeClient({"w1": state, "w2": full}), "p")
    other = dict(state, scorer=dict(meta, model_hash="cd" * 32))
    with pytest.raises(RuntimeError, match="different models"):
        ds._check_workers(_FakeClient({"w1": state, "w2": other}), "p")


def test_input_identity_of_an_fsspec_url(tmp_path) -> None:
    import fsspec

    path = write_parquet_events(tmp_path / "e.parquet", _events(300, seed=11))
    url = "memory://l1ad-test/e.parquet"
    with fsspec.open(url, "wb") as f:
        f.write(path.read_bytes())
    ident = identity(open_source(url))
    assert ident["path"] == url and ident["n_events"] == 300 and ident["size"] == path.stat().st_size
    write_parquet_events(path, _events(300, seed=12))
    with fsspec.open(url, "wb") as f:
        f.write(path.read_bytes())
    assert identity(open_source(url))["id"] != ident["id"]
