"""The ADC2021-layout data set (background splits + four signals) generated with Pythia.

Same files as :func:`l1ad.events.default_data.generate_dataset`: ``background_{train,val,test}.h5``,
``signal_<name>.h5``, ``dataset.json`` and ``summary.json``. The background mixture is fixed by event
counts (:func:`l1ad.events.generator.mixture_counts`: W 59.2%, QCD 33.8%, Z 6.7%, ttbar 0.3%), the
per-process samples are shuffled together with ``seed`` and split 5:1:5. Chunks and per-process files
live in ``<out>/pythia_work`` so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np

from l1ad.core.files import atomic_write_text

from .. import schema
from ..default_data import split_sizes, write_summary
from ..io import read_events, write_events
from . import require_pythia

logger = logging.getLogger(__name__)


def generate_dataset(
    out_dir: str | Path,
    n_background: int,
    n_signal: int,
    seed: int = 1,
    *,
    mpi: bool = True,
    workers: int = 1,
    chunk_size: int = 1000,
    signals: tuple[str, ...] = schema.SIGNAL_NAMES,
) -> dict:
    """Generate the data set with Pythia into ``out_dir``; returns (and writes) ``dataset.json``."""
    require_pythia()
    from ..generator import BACKGROUND_PROCESSES, mixture_counts
    from .run import generate_processes

    out = Path(out_dir)
    work = out / "pythia_work"
    counts = dict(zip(BACKGROUND_PROCESSES, mixture_counts(n_background).tolist(), strict=True))
    counts = {p: n for p, n in counts.items() if n > 0}
    counts.update({name: n_signal for name in signals if n_signal > 0})
    report = generate_processes(counts, work, seed, mpi=mpi, workers=workers, chunk_size=chunk_size)

    files = []
    bkg = [read_events(work / report[p]["file"]) for p in BACKGROUND_PROCESSES if p in report]
    bkg_all = np.concatenate(bkg) if bkg else np.zeros((0, schema.N_OBJECTS, schema.N_FEATURES), np.float32)
    perm = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, 1000]))).permutation(
        len(bkg_all)
    )
    lo = 0
    for split, n in split_sizes(n_background).items():
        write_events(out / f"background_{split}.h5", bkg_all[perm[lo : lo + n]])
        files.append({"file": f"background_{split}.h5", "n_events": int(n)})
        lo += n
    for name in signals:
        if name in report:
            shutil.copyfile(work / report[name]["file"], out / f"signal_{name}.h5")
            files.append({"file": f"signal_{name}.h5", "n_events": n_signal})
    manifest = {
        "generator": "Pythia 8 + l1ad L1 emulation",
        "seed": seed,
        "mpi": mpi,
        "background_counts": {p: counts[p] for p in BACKGROUND_PROCESSES if p in counts},
        "processes": report,
        "files": files,
    }
    atomic_write_text(out / "dataset.json", json.dumps(manifest, indent=1))
    write_summary(out)
    return manifest
