"""``l1ad score``: score HDF5/Parquet event files in partitions on a Dask cluster (batch, offline)."""

from __future__ import annotations

import argparse


def add_args(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score event files on Dask (a LocalCluster or --scheduler): Parquet results + manifest.json",
        description="Score HDF5/Parquet event files (local paths or fsspec URLs) in partitions on Dask. "
        "Each worker loads the model once; each task reads its own slice and writes one Parquet part "
        "under OUT/parts/. A rerun skips parts already scored by the same model from the same input.",
    )
    p.add_argument(
        "files", nargs="+", metavar="FILE", help="event files (.h5/.hdf5 or .parquet; URLs allowed)"
    )
    p.add_argument(
        "--out", required=True, help="output directory (manifest.json, parts/); shared with the workers"
    )
    p.add_argument("--run", required=True, help="run directory with the trained model and its evaluation")
    p.add_argument("--model", help="model label or directory name (default: the energy model)")
    p.add_argument("--score", help="score label (default: the model's primary score)")
    p.add_argument("--rate-khz", type=float, default=None,
                   help="flag threshold: a rate of the run's rate table (default: the lowest)")  # fmt: skip
    p.add_argument("--chunk-size", type=int, default=None, help="events per partition (default 131072)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler (tcp://host:8786); "
                   "default: start a LocalCluster of worker processes")  # fmt: skip
    p.add_argument("--workers", type=int, default=2, help="LocalCluster: worker processes (default 2)")
    p.add_argument("--threads-per-worker", type=int, default=1, help="LocalCluster: task threads per worker")
    p.add_argument("--memory-limit", default="2GiB",
                   help="LocalCluster: memory per worker (default 2GiB). A worker with the energy model holds "
                   "~0.31 GiB RSS once loaded; 512MiB works with --chunk-size 32768 (peak ~0.42 GiB; workers "
                   "pause at 90%%, are restarted at 95%%)")  # fmt: skip
    p.add_argument("--torch-threads", type=int, default=1, help="torch threads per worker (default 1)")
    p.add_argument("--max-in-flight", type=int, default=None,
                   help="most tasks submitted at once (default: two per worker thread)")  # fmt: skip


def main(args: argparse.Namespace) -> int:
    import logging

    from l1ad.serving.dask_score import DEFAULT_CHUNK, MANIFEST, dask_client, score_files
    from l1ad.serving.offline import ScorerSpec

    if not logging.getLogger().isEnabledFor(logging.DEBUG):  # distributed's INFO chatter hides progress
        logging.getLogger("distributed").setLevel(logging.WARNING)
    spec = ScorerSpec(args.run, model=args.model, score=args.score, rate_khz=args.rate_khz)
    with dask_client(args.scheduler, args.workers, args.threads_per_worker, args.memory_limit) as client:
        m = score_files(args.files, args.out, spec, client, chunk_size=args.chunk_size or DEFAULT_CHUNK,
                        max_in_flight=args.max_in_flight, torch_threads=args.torch_threads)  # fmt: skip
    t, s = m["totals"], m["scorer"]
    rate = f"{m['events_per_s']:.0f} events/s" if m["events_per_s"] else "nothing new to score"
    cut = (
        "no threshold" if s["threshold"] is None else f"score > {s['threshold']:.6g} ({s['rate_khz']:g} kHz)"
    )
    print(f"l1ad score: {t['n_events']} events in {t['n_files']} file(s), {t['n_flagged']} flagged ({cut}); "
          f"{t['n_partitions']} partitions ({t['n_scored']} scored, {t['n_reused']} reused), {rate} on "
          f"{m['cluster']['workers']} worker(s) with {s['model']} ({s['model_hash'][:12]})")  # fmt: skip
    print(f"manifest: {args.out.rstrip('/')}/{MANIFEST}")
    if m["cluster"]["workers_lost"]:
        logging.getLogger(__name__).warning("%d worker(s) lost during the run", m["cluster"]["workers_lost"])
    return 0
