"""Offline scoring shared by the service's batch jobs and ``l1ad score`` on Dask: one scorer, one
results format.

:class:`OfflineScorer` is a run's model with the score label and trigger threshold the service
would use (:func:`~l1ad.serving.state.choose_model`, the run's rate table): it maps a particle block
to ``(score float64, flag bool)`` exactly as :func:`l1ad.models.registry.score` and
:func:`~l1ad.serving.thresholds.flags` do, so offline results equal in-process scoring event by event.

Results are Parquet (:data:`RESULT_COLUMNS`: ``event_index`` int64, the row in the input file;
``score`` float64; ``flag`` bool, ``score > threshold``), with the model, its hash, the score, the
threshold and the input file in the file's key-value metadata (``l1ad.*``). :func:`write_results`
writes a temporary file in the target directory and renames it into place.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from l1ad.core.files import atomic_path
from l1ad.models import registry
from l1ad.serving import thresholds as thr
from l1ad.serving.state import choose_model

logger = logging.getLogger(__name__)

RESULT_COLUMNS = ("event_index", "score", "flag")


@dataclass(frozen=True)
class ScorerSpec:
    """What to score with (picklable: a Dask worker or a job runner builds its scorer from it)."""

    run_dir: str
    model: str | None = None  # label or directory name; default: the service's choice
    score: str | None = None  # score label; default: the model's primary score
    rate_khz: float | None = None  # flag threshold; default: the lowest calibrated rate


class OfflineScorer:
    def __init__(self, spec: ScorerSpec) -> None:
        self.spec = spec
        trained = choose_model(Path(spec.run_dir), spec.model)
        self.loaded = registry.load(trained)
        self.name = trained.path.name
        self.label = spec.score or self.loaded.score_labels[0]
        if self.label not in self.loaded.score_labels:
            self.loaded.close()
            raise ValueError(
                f"{trained.label} has no score {self.label!r}; it has {list(self.loaded.score_labels)}"
            )
        table = thr.from_evaluation(Path(spec.run_dir), self.label)
        try:
            self.threshold = table.resolve(spec.rate_khz)
        except KeyError as e:
            self.loaded.close()
            raise ValueError(str(e.args[0])) from None

    def __call__(self, particles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = np.asarray(self.loaded.score(particles, (self.label,))[self.label], dtype=np.float64)
        return scores, thr.flags(scores, self.threshold)

    def metadata(self) -> dict[str, Any]:
        t = self.threshold
        return {
            "model": self.name,
            "model_hash": self.loaded.hash,
            "score": self.label,
            "rate_khz": None if t is None else t.rate_khz,
            "threshold": None if t is None else t.value,
        }

    def close(self) -> None:
        self.loaded.close()


def write_results(
    path: str | Path, first_index: int, scores: np.ndarray, flags: np.ndarray, meta: dict[str, Any]
) -> Path:
    """Parquet of rows ``first_index ..`` with their scores and flags, written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(scores)
    if len(flags) != n:
        raise ValueError(f"{len(flags)} flags for {n} scores")
    table = pa.table({
        "event_index": np.arange(first_index, first_index + n, dtype=np.int64),
        "score": np.asarray(scores, dtype=np.float64),
        "flag": np.asarray(flags, dtype=bool),
    })  # fmt: skip
    table = table.replace_schema_metadata({f"l1ad.{k}": json.dumps(v) for k, v in meta.items()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def concat_results(parts: list[str | Path], out: str | Path, meta: dict[str, Any]) -> Path:
    """One results file from partial ones (in the given order), streamed one part at a time (memory
    stays at one part whatever the job's size), written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [("event_index", pa.int64()), ("score", pa.float64()), ("flag", pa.bool_())],
        metadata={f"l1ad.{k}": json.dumps(v) for k, v in meta.items()},
    )
    with atomic_path(out) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for part in parts:
            table = pq.read_table(part)
            writer.write_table(table.select(list(RESULT_COLUMNS)).cast(schema))
    return Path(out)


def read_results(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``({column: array}, metadata)`` of a results file."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    raw = table.schema.metadata or {}
    meta = {k.decode()[5:]: json.loads(v) for k, v in raw.items() if k.startswith(b"l1ad.")}
    return {c: table.column(c).to_numpy() for c in RESULT_COLUMNS}, meta
