"""Chunked, resumable, parallel Pythia generation of accepted L1 events and the ADC2021 data set.

Work is split into *chunks* of at most ``chunk_size`` accepted events of one process. Chunk ``c`` of
process ``p`` is seeded from ``SeedSequence([seed, PROCESSES.index(p), c])`` (the Pythia seed and the
numpy detector stream), so each chunk is deterministic and independent of how many workers run or in
which order. Every finished chunk is written atomically to ``<work>/chunks/<p>_<c>.h5`` and recorded in
``<work>/manifest.json`` (events, generated events, seconds); a rerun skips chunks already done.
The minimum-bias pool for the pileup overlay is generated once per run (``pileup_pool.npz``).
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from l1ad.core.files import atomic_path, atomic_write_text

from ..io import read_events, write_events
from ..schema import N_FEATURES, N_OBJECTS
from . import detector
from .processes import PROCESSES, make_pythia

logger = logging.getLogger(__name__)

POOL_SIZE = 2000
MAX_TRIES_PER_EVENT = 2000  # give up on a chunk after chunk_size * this many generated events
_POOL_STREAM = 99


@dataclass(frozen=True)
class ChunkResult:
    """What one finished chunk reports (also the manifest entry)."""

    process: str
    chunk: int
    n_events: int
    n_generated: int
    seconds: float
    file: str


def chunk_seeds(seed: int, stream: int, chunk: int) -> tuple[int, np.random.Generator]:
    """(Pythia seed in [1, 9e8], numpy Generator) of one chunk."""
    ss = np.random.SeedSequence([int(seed), int(stream), int(chunk)])
    pythia_seed = int(ss.generate_state(1)[0]) % 900_000_000 + 1
    return pythia_seed, np.random.Generator(np.random.PCG64(ss.spawn(1)[0]))


def final_particles(py) -> np.ndarray:
    """Final-state particles of the current Pythia event as ``[pid, px, py, pz, E]`` rows."""
    rows = [(q.id(), q.px(), q.py(), q.pz(), q.e()) for q in py.event if q.isFinal()]
    return np.array(rows, dtype=np.float64).reshape(-1, 5)


def make_pool(path: Path, n: int, seed: int) -> list[np.ndarray]:
    """Generate (or load) the minimum-bias pool: ``n`` visible-particle arrays, MPI on."""
    if path.exists():
        with np.load(path) as f:
            parts, sizes = f["particles"], f["sizes"]
        if len(sizes) == n:
            return np.split(parts, np.cumsum(sizes)[:-1])
    t0 = time.perf_counter()
    pythia_seed, _ = chunk_seeds(seed, _POOL_STREAM, 0)
    py = make_pythia("minbias", pythia_seed, mpi=True)
    pool = []
    while len(pool) < n:
        if py.next():
            pool.append(detector.visible(final_particles(py)).astype(np.float32))
    sizes = np.array([len(p) for p in pool])
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, particles=np.concatenate(pool), sizes=sizes)
    logger.info(
        "minimum-bias pool: %d events (mean %.0f visible particles) in %.1f s",
        n,
        sizes.mean(),
        time.perf_counter() - t0,
    )
    return [p.astype(np.float64) for p in pool]


def generate_chunk(
    process: str, n: int, seed: int, chunk: int, mpi: bool, pool: list[np.ndarray], pileup_mean: float
) -> tuple[np.ndarray, int]:
    """``n`` accepted L1 events of ``process`` from Pythia; returns (events, generated events)."""
    pythia_seed, rng = chunk_seeds(seed, PROCESSES.index(process), chunk)
    py = make_pythia(process, pythia_seed, mpi)
    out = np.zeros((n, N_OBJECTS, N_FEATURES), dtype=np.float32)
    have = generated = 0
    while have < n:
        if generated > MAX_TRIES_PER_EVENT * max(n, 1):
            raise RuntimeError(f"{process}: only {have} of {n} events accepted after {generated} generated")
        if not py.next():
            continue
        generated += 1
        hard = final_particles(py)
        if not detector.truth_prefilter(hard):
            continue
        ev = detector.reconstruct(rng, hard, pool, pileup_mean)
        if ev is not None:
            out[have] = ev
            have += 1
    return out, generated


def _work(task: dict) -> ChunkResult:
    t0 = time.perf_counter()
    pool = make_pool(Path(task["pool"]), task["pool_size"], task["seed"]) if task["pileup_mean"] > 0 else []
    events, generated = generate_chunk(
        task["process"], task["n"], task["seed"], task["chunk"], task["mpi"], pool, task["pileup_mean"]
    )
    write_events(task["file"], events)
    return ChunkResult(
        task["process"],
        task["chunk"],
        task["n"],
        generated,
        time.perf_counter() - t0,
        Path(task["file"]).name,
    )


def generate_processes(
    counts: dict[str, int],
    work_dir: str | Path,
    seed: int = 1,
    *,
    mpi: bool = True,
    workers: int = 1,
    chunk_size: int = 1000,
    pileup_mean: float = detector.PILEUP_MEAN,
    pool_size: int = POOL_SIZE,
) -> dict[str, dict]:
    """Generate ``counts[process]`` accepted events per process into ``work_dir`` (resumable).

    Returns per process: events, generated, CPU seconds summed over chunks, events/s (accepted and
    generated, per core), the merged file and its size on disk. Merged files: ``<work>/<process>.h5``.
    """
    work = Path(work_dir)
    (work / "chunks").mkdir(parents=True, exist_ok=True)
    manifest_path = work / "manifest.json"
    config = {
        "seed": seed,
        "mpi": mpi,
        "chunk_size": chunk_size,
        "pileup_mean": pileup_mean,
        "pool_size": pool_size,
    }
    manifest = (
        json.loads(manifest_path.read_text()) if manifest_path.exists() else {"config": config, "chunks": {}}
    )
    if manifest["config"] != config:
        raise ValueError(
            f"{work}: existing run has config {manifest['config']}, not {config}; use another dir"
        )
    tasks = []
    for process, total in counts.items():
        for c, lo in enumerate(range(0, total, chunk_size)):
            key = f"{process}_{c}"
            file = work / "chunks" / f"{key}.h5"
            if key in manifest["chunks"] and file.exists():
                continue
            tasks.append(
                {
                    "process": process,
                    "chunk": c,
                    "n": min(chunk_size, total - lo),
                    "seed": seed,
                    "mpi": mpi,
                    "file": str(file),
                    "pool": str(work / "pileup_pool.npz"),
                    "pool_size": pool_size,
                    "pileup_mean": pileup_mean,
                }
            )
    n_chunks = sum(-(-t // chunk_size) for t in counts.values())
    logger.info(
        "pythia: %d chunks to run (%d already done), %d worker(s), MPI %s",
        len(tasks),
        n_chunks - len(tasks),
        workers,
        "on" if mpi else "off",
    )
    if tasks and pileup_mean > 0:
        make_pool(work / "pileup_pool.npz", pool_size, seed)  # once, before the workers start
    done = n_chunks - len(tasks)
    results = (
        map(_work, tasks)
        if workers <= 1
        else mp.get_context("spawn").Pool(workers).imap_unordered(_work, tasks)
    )
    for r in results:
        done += 1
        manifest["chunks"][f"{r.process}_{r.chunk}"] = asdict(r)
        atomic_write_text(manifest_path, json.dumps(manifest, indent=1))
        logger.info(
            "[%d/%d] %-10s chunk %3d: %5d events of %7d generated, %6.1f s (%.0f events/s)",
            done,
            n_chunks,
            r.process,
            r.chunk,
            r.n_events,
            r.n_generated,
            r.seconds,
            r.n_events / max(r.seconds, 1e-9),
        )
    return _merge(work, counts, manifest, chunk_size)


def _merge(work: Path, counts: dict[str, int], manifest: dict, chunk_size: int) -> dict[str, dict]:
    report = {}
    for process, total in counts.items():
        keys = [f"{process}_{c}" for c in range(-(-total // chunk_size))]
        entries = [manifest["chunks"][k] for k in keys]
        events = np.concatenate([read_events(work / "chunks" / e["file"]) for e in entries]) if keys else None
        path = work / f"{process}.h5"
        if events is not None:
            write_events(path, events)
        secs = sum(e["seconds"] for e in entries)
        gen = sum(e["n_generated"] for e in entries)
        report[process] = {
            "events": total,
            "generated": gen,
            "cpu_seconds": round(secs, 2),
            "events_per_s": round(total / max(secs, 1e-9), 2),
            "generated_per_s": round(gen / max(secs, 1e-9), 2),
            "acceptance": round(total / max(gen, 1), 5),
            "file": path.name,
            "bytes": path.stat().st_size if path.exists() else 0,
        }
        logger.info(
            "%-10s %7d events (%d generated, acceptance %.4f) %8.1f s  %7.1f events/s  %6.2f MB",
            process,
            total,
            gen,
            report[process]["acceptance"],
            secs,
            report[process]["events_per_s"],
            report[process]["bytes"] / 1e6,
        )
    return report
