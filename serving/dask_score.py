"""Batch scoring past one machine: event files cut into partitions, scored on a Dask cluster.

:func:`plan` cuts each input (an :class:`~l1ad.events.sources.EventSource`, HDF5 or Parquet, local
path or fsspec URL) into ``[start, stop)`` row ranges. Every Dask task gets only that description
(source, start, stop, output path): it reads its own slice on the worker, scores it with the worker's
:class:`~l1ad.serving.offline.OfflineScorer` and writes one results file with
:func:`~l1ad.serving.offline.write_results`. No event array crosses the network, so neither the
driver nor the scheduler grows with the input.

The model loads once per worker: :class:`ScorerPlugin` (a ``distributed.WorkerPlugin``, registered
under a name unique to the run and unregistered at its end) builds the scorer in ``setup`` and tasks
fetch it through ``distributed.get_worker()``. Torch uses one thread per worker by default: the
cluster's workers and threads are the parallelism, and one thread keeps scores independent of the
worker's core count.

Layout of the output directory::

    DIR/manifest.json                                 inputs, scorer, partitions, totals, events/s
    DIR/parts/<file-stem>-<sha8 of the path>/part-00000.parquet   rows [0, chunk) of that input ...

Each part's Parquet metadata records the model hash, score, threshold, the input's identity
(:func:`l1ad.events.sources.identity`: path, format, event count, size, mtime, sha256 of its first and last MiB)
and its row range. A rerun reuses a part only when all of these match, so a different model, rate,
chunking or a changed input file never reuses stale results. The part files must be on a filesystem
the workers and the driver share (any local path for a ``LocalCluster``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin  # the 'serve' extra

from l1ad.core.files import atomic_write_text
from l1ad.events.sources import EventSource, identity, normalize, open_source
from l1ad.serving.offline import OfflineScorer, ScorerSpec, read_results, write_results

logger = logging.getLogger(__name__)

#: Default events per partition: 8 HDF5 chunks of :class:`~l1ad.events.io.EventWriter` (38 MiB as float32).
DEFAULT_CHUNK = 131_072
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "l1ad.score/1"
#: What must match for a part file to be reused (besides its row range and input identity).
SCORER_KEYS = ("model_hash", "score", "threshold")
#: Seconds without a finished partition after which the driver checks for a cluster paused for memory.
STALL_S = 60.0


# --------------------------------------------------------------------------- inputs and partitions
def parts_dir(out_dir: Path, source: EventSource) -> Path:
    """``out_dir/parts/<stem>-<sha8 of the path>``: two inputs with the same file name never clash."""
    stem = source.path.rstrip("/").rsplit("/", 1)[-1].split(".", 1)[0] or "input"
    return out_dir / "parts" / f"{stem}-{hashlib.sha256(source.path.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class Partition:
    """One task: rows ``[start, stop)`` of ``source`` into the results file ``part``."""

    source: EventSource
    input_id: str
    start: int
    stop: int
    part: Path

    @property
    def n_events(self) -> int:
        return self.stop - self.start


def plan(
    sources: Sequence[EventSource], idents: Sequence[dict[str, Any]], out_dir: Path, chunk: int
) -> list[Partition]:
    """Every input's row ranges of at most ``chunk`` events, in input order."""
    return [Partition(src, ident["id"], lo, hi, parts_dir(out_dir, src) / f"part-{j:05d}.parquet")
            for src, ident in zip(sources, idents, strict=True)
            for j, (lo, hi) in enumerate(src.slices(chunk))]  # fmt: skip


def finished(part: Partition, scorer: dict[str, Any]) -> dict[str, Any] | None:
    """The part file's metadata when it holds exactly this partition scored by this scorer, else None."""
    if not part.part.is_file():
        return None
    import pyarrow.parquet as pq

    try:
        raw = pq.read_schema(part.part).metadata or {}
        meta = {k.decode()[5:]: json.loads(v) for k, v in raw.items() if k.startswith(b"l1ad.")}
    except Exception as e:  # a truncated or foreign file: score the partition again
        logger.warning("%s: unreadable part file, scoring it again (%s)", part.part, e)
        return None
    want = {k: scorer[k] for k in SCORER_KEYS} | {"input_id": part.input_id, "start": part.start,
                                                   "stop": part.stop}  # fmt: skip
    return meta if all(meta.get(k) == v for k, v in want.items()) else None


# --------------------------------------------------------------------------- the worker side
class ScorerPlugin(WorkerPlugin):
    """Builds the worker's :class:`OfflineScorer` once (``setup``) and closes it (``teardown``)."""

    idempotent = False

    def __init__(self, spec: ScorerSpec, torch_threads: int = 1) -> None:
        self.spec = spec
        self.torch_threads = torch_threads
        self.scorer: OfflineScorer | None = None

    def setup(self, worker: Any) -> None:
        import torch

        torch.set_num_threads(self.torch_threads)
        self.scorer = OfflineScorer(self.spec)
        logger.info("worker %s loaded %s", worker.address, self.scorer.metadata()["model"])

    def teardown(self, worker: Any) -> None:
        if self.scorer is not None:
            self.scorer.close()
            self.scorer = None


def _worker_scorer(plugin_name: str, worker: Any = None) -> OfflineScorer:
    """The scorer :class:`ScorerPlugin` built on this worker (``worker``: default the task's own)."""
    if worker is None:
        from distributed import get_worker

        worker = get_worker()
    plugin = worker.plugins.get(plugin_name)
    if plugin is None or plugin.scorer is None:
        raise RuntimeError(f"worker {worker.address} has no scorer plugin {plugin_name!r}")
    return plugin.scorer


def worker_state(plugin_name: str, dask_worker: Any = None) -> dict[str, Any]:
    """(``client.run``) The worker's scorer metadata, its process RSS and memory thresholds."""
    import psutil

    mm = dask_worker.memory_manager
    return {"scorer": _worker_scorer(plugin_name, dask_worker).metadata(), "rss": psutil.Process().memory_info().rss,
            "memory_limit": mm.memory_limit, "pause_fraction": mm.memory_pause_fraction}  # fmt: skip


def score_partition(
    source: EventSource, start: int, stop: int, part: str, input_id: str, plugin_name: str
) -> dict[str, Any]:
    """(Dask task) Read rows ``[start, stop)`` of ``source``, score them, write ``part``; a summary."""
    t0 = time.perf_counter()
    scorer = _worker_scorer(plugin_name)
    particles = source.read(start, stop)
    scores, flags = scorer(particles)
    del particles
    meta = {**scorer.metadata(), "input": source.path, "input_id": input_id, "start": start, "stop": stop,
            "n_flagged": int(flags.sum())}  # fmt: skip
    write_results(part, start, scores, flags, meta)
    return {"n_events": stop - start, "n_flagged": meta["n_flagged"], "model_hash": meta["model_hash"],
            "scorer_instance": f"{os.getpid()}:{id(scorer)}", "seconds": round(time.perf_counter() - t0, 4)}  # fmt: skip


# --------------------------------------------------------------------------- the driver
#: A LocalCluster's workers pause at this fraction of their memory limit (Dask's default: 0.8). Pausing
#: protects a worker from piling up managed results; these tasks hold none (results go to disk, a task
#: returns a small dict), so a worker's memory is its unmanaged baseline (torch alone is ~225 MiB
#: resident) plus one partition. At a 512 MiB limit the default would pause workers that are not
#: growing; the terminate threshold (0.95) still guards the limit. An existing cluster keeps its own.
PAUSE_FRACTION = 0.9


@contextmanager
def dask_client(scheduler: str | None = None, n_workers: int = 2, threads_per_worker: int = 1,
                memory_limit: str = "2GiB", timeout: str = "20s") -> Iterator[Any]:  # fmt: skip
    """A ``distributed.Client`` of the cluster at ``scheduler``, or of a new process-based ``LocalCluster``
    (its scheduler's HTTP port chosen free, so that several clusters on one machine never collide)."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=timeout)
        except OSError as e:  # TimeoutError included: say which address, let the CLI report it
            raise RuntimeError(f"cannot connect to the Dask scheduler at {scheduler}: {e}") from e
        with client:
            yield client
        return
    import dask

    # the setting stays on while the cluster lives: a worker the nanny restarts gets it too
    with dask.config.set({"distributed.worker.memory.pause": PAUSE_FRACTION}):
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True,
                               memory_limit=memory_limit, dashboard_address=":0")  # fmt: skip
        with cluster, Client(cluster) as client:
            yield client


def _check_workers(client: Any, plugin_name: str) -> dict[str, Any]:
    """The scorer metadata all workers agree on; a clear error when a worker has no memory left to work."""
    states = client.run(worker_state, plugin_name)
    metas = {json.dumps(s["scorer"], sort_keys=True) for s in states.values()}
    if len(metas) != 1:
        raise RuntimeError(f"the workers loaded different models (a shared run directory?): {sorted(metas)}")
    for addr, s in states.items():
        limit, pause = s["memory_limit"], s["pause_fraction"]
        if limit and pause and s["rss"] > pause * limit:
            raise RuntimeError(
                f"worker {addr} uses {s['rss'] / 2**20:.0f} MiB after loading the model, above its pause "
                f"threshold ({pause:.0%} of {limit / 2**20:.0f} MiB): give the workers more memory (--memory-limit)"
            )
    rss = ", ".join(f"{s['rss'] / 2**20:.0f}" for s in states.values())
    logger.info("%d worker(s) loaded the model (RSS %s MiB)", len(states), rss)
    return next(iter(states.values()))["scorer"]


def _removed_workers(client: Any, since: float) -> int:
    """Workers the scheduler lost (died, restarted, retired) since ``since``, from its event log."""
    events = client.get_events("all")
    lost = [m for t, m in events if t >= since and isinstance(m, dict) and m.get("action") == "remove-worker"]
    return len(lost)


def score_files(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    spec: ScorerSpec,
    client: Any,
    chunk_size: int = DEFAULT_CHUNK,
    max_in_flight: int | None = None,
    torch_threads: int = 1,
) -> dict[str, Any]:
    """Score every event of ``paths`` on ``client``'s cluster into ``out_dir``; returns the manifest.

    Partitions whose part file already holds the same result (:func:`finished`) are reused. At most
    ``max_in_flight`` tasks (default: two per worker thread) exist at once: tasks are submitted as
    earlier ones finish. A failing partition (invalid events, unreadable file) cancels the rest and
    raises its error, which names the file and row. ``manifest.json`` is removed at the start and
    written at the end: it exists only beside a complete, consistent set of parts.
    """
    resolved = [normalize(p) for p in paths]
    dupes = sorted({p for p in resolved if resolved.count(p) > 1})
    if dupes:
        raise ValueError(f"input given more than once: {', '.join(dupes)}")
    out = Path(normalize(out_dir))
    sources = [open_source(p) for p in resolved]  # counts events: a missing or foreign file fails here
    idents = [identity(s) for s in sources]
    partitions = plan(sources, idents, out, chunk_size)
    (out / MANIFEST).unlink(missing_ok=True)

    name = f"l1ad-scorer-{uuid.uuid4().hex[:12]}"  # unique: concurrent runs on one cluster never clash
    client.wait_for_workers(1, timeout=120)
    t_start = time.time()
    client.register_plugin(ScorerPlugin(spec, torch_threads), name=name)
    try:
        scorer = _check_workers(client, name)
        reused = {i: m for i, p in enumerate(partitions) if (m := finished(p, scorer)) is not None}
        todo = [i for i in range(len(partitions)) if i not in reused]
        threads = sum(client.nthreads().values()) or 1
        limit = max(1, max_in_flight or 2 * threads)
        logger.info("%d partition(s) of %d file(s): %d to score, %d already done (at most %d in flight)",
                    len(partitions), len(sources), len(todo), len(reused), limit)  # fmt: skip
        t0 = time.perf_counter()
        results = _run(client, partitions, todo, name, limit, scorer["model_hash"])
        seconds = time.perf_counter() - t0
    finally:
        client.unregister_worker_plugin(name)
    manifest = _manifest(out, spec, scorer, idents, partitions, results, reused, chunk_size, seconds)
    manifest["cluster"] = {"scheduler": client.scheduler.address, "workers": len(client.nthreads()),
                           "threads": threads, "workers_lost": _removed_workers(client, t_start)}  # fmt: skip
    _remove_orphans(partitions)
    atomic_write_text(out / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return manifest


def _worker_memory(dask_worker: Any = None) -> tuple[str, int]:
    """(``client.run``) The worker's status (``running``, ``paused`` ...) and its memory limit."""
    return dask_worker.status.name, dask_worker.memory_manager.memory_limit or 0


def _run(client: Any, partitions: list[Partition], todo: list[int], plugin: str, limit: int, model_hash: str,
         stall_s: float = STALL_S) -> dict[int, dict[str, Any]]:  # fmt: skip
    """Submit ``todo`` lazily, at most ``limit`` at once; ``{partition: task summary}``."""
    from distributed import KilledWorker, wait

    pending, futures, token = iter(todo), {}, uuid.uuid4().hex[:8]

    def submit() -> None:
        if (i := next(pending, None)) is not None:
            p = partitions[i]
            fut = client.submit(score_partition, p.source, p.start, p.stop, str(p.part), p.input_id, plugin,
                                key=f"l1ad-score-{p.part.parent.name}-{p.part.stem}-{token}")  # fmt: skip
            futures[fut] = i

    for _ in range(limit):
        submit()
    results: dict[int, dict[str, Any]] = {}
    done, total = 0, sum(partitions[i].n_events for i in todo)
    t0 = last_log = time.perf_counter()
    try:
        while futures:
            try:
                finished_now = wait(list(futures), timeout=stall_s, return_when="FIRST_COMPLETED").done
            except TimeoutError:  # nothing finished for a while: a cluster paused at its memory limit?
                states = client.run(_worker_memory)
                if states and all(st == "paused" for st, _ in states.values()):
                    raise RuntimeError(
                        f"all {len(states)} workers are paused at their memory limit "
                        f"({max(lim for _, lim in states.values()) / 2**20:.0f} MiB) and no partition finished "
                        f"in {stall_s:.0f} s: raise --memory-limit or lower --chunk-size"
                    ) from None
                continue
            for fut in finished_now:
                i = futures.pop(fut)
                try:
                    res = results[i] = fut.result()  # a task's own error (file, row) is raised here
                except KilledWorker as e:
                    raise RuntimeError(f"{partitions[i].source.path} rows {partitions[i].start}-"
                                       f"{partitions[i].stop}: the workers scoring it died (out of memory? "
                                       f"raise --memory-limit or lower --chunk-size): {e}") from e  # fmt: skip
                if res["model_hash"] != model_hash:
                    raise RuntimeError(f"{partitions[i].part}: scored by model {res['model_hash'][:12]}, not "
                                       f"{model_hash[:12]} (do all workers see the same run directory?)")  # fmt: skip
                done += res["n_events"]
                submit()
            now = time.perf_counter()
            if now - last_log > 5 or not futures:
                last_log = now
                logger.info("scored %d/%d partitions, %d/%d events (%.0f events/s)", len(results), len(todo),
                            done, total, done / max(now - t0, 1e-9))  # fmt: skip
    except BaseException:
        client.cancel(list(futures), force=True)  # stop the rest before raising
        raise
    return results


def _manifest(out, spec, scorer, idents, partitions, results, reused, chunk, seconds) -> dict[str, Any]:
    rows = [{"file": p.source.path, "start": p.start, "stop": p.stop, "part": str(p.part.relative_to(out)),
             "n_flagged": (results.get(i) or reused[i])["n_flagged"], "reused": i in reused,
             "scorer_instance": results[i]["scorer_instance"] if i in results else None,
             "seconds": results[i]["seconds"] if i in results else None}
            for i, p in enumerate(partitions)]  # fmt: skip
    scored = sum(r["n_events"] for r in results.values())
    totals = {"n_files": len(idents), "n_events": sum(p.n_events for p in partitions),
              "n_flagged": sum(r["n_flagged"] for r in rows), "n_partitions": len(partitions),
              "n_scored": len(results), "n_reused": len(reused), "events_scored": scored}  # fmt: skip
    return {"format": MANIFEST_FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "run_dir": spec.run_dir, "scorer": scorer, "chunk_size": chunk, "inputs": list(idents),
            "partitions": rows, "totals": totals, "seconds": seconds,
            "events_per_s": scored / seconds if scored and seconds > 0 else None}  # fmt: skip


def _remove_orphans(partitions: Sequence[Partition]) -> None:
    """Part files of these inputs that no partition names any more (a rerun with another chunk size)."""
    keep = {p.part for p in partitions}
    for d in {p.part.parent for p in partitions}:
        for f in d.glob("part-*.parquet"):
            if f not in keep:
                f.unlink()


def read_scored(out_dir: str | Path, path: str | Path) -> dict[str, Any]:
    """The results of one input of a finished run (its parts, in order): ``{event_index, score, flag}``."""
    import numpy as np

    out = Path(out_dir)
    manifest = json.loads((out / MANIFEST).read_text())
    want = normalize(path)
    parts = [read_results(out / r["part"])[0] for r in manifest["partitions"] if r["file"] == want]
    if not parts and want not in {i["path"] for i in manifest["inputs"]}:
        raise FileNotFoundError(f"{out / MANIFEST}: no input {want}")
    cols = ("event_index", "score", "flag")
    empty = {"event_index": np.zeros(0, np.int64), "score": np.zeros(0), "flag": np.zeros(0, bool)}
    return {c: np.concatenate([p[c] for p in parts]) if parts else empty[c] for c in cols}
