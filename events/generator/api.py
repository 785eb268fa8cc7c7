"""Public entry points: accepted L1 events per process, the background mixture and the signals.

Randomness: each process draws from its own ``numpy.random.Generator(PCG64)`` seeded with
``SeedSequence([seed, process_index])`` (``process_index`` = position in :data:`PROCESSES`), so the
processes are statistically independent and the W events of a background mixture are the same as
``generate_process("W", ...)`` with the same seed. Events are generated in vectorized batches
(oversampled by the expected acceptance, accepted events kept, repeated until ``n``); batch sizes depend
only on ``n`` and on the random stream, so the same arguments give byte-identical arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from ..schema import N_FEATURES, N_OBJECTS, SIGNAL_NAMES
from . import processes, signals
from .detector import Truth, simulate

logger = logging.getLogger(__name__)

Builder = Callable[[np.random.Generator, int], Truth]

#: process name -> (truth builder, measured acceptance per generated event, used only to size batches).
_REGISTRY: dict[str, tuple[Builder, float]] = {
    "W": (processes.w_lnu, 0.36),
    "QCD": (processes.qcd_multijet, 0.075),
    "Z": (processes.z_ll, 0.51),
    "ttbar": (processes.ttbar, 0.38),
    "Ato4l": (signals.a_to_4l, 0.30),
    "leptoquark": (signals.leptoquark, 0.24),
    "hToTauTau": (signals.h_to_tautau, 0.10),
    "hChToTauNu": (signals.hch_to_taunu, 0.025),
}
#: All process names; the index is the second word of the seed sequence.
PROCESSES: tuple[str, ...] = tuple(_REGISTRY)
#: Background process codes: ``labels == i`` means ``BACKGROUND_PROCESSES[i]``.
BACKGROUND_PROCESSES: tuple[str, ...] = ("W", "QCD", "Z", "ttbar")
#: Fractions of accepted background events (ADC2021 composition).
BACKGROUND_FRACTIONS: tuple[float, ...] = (0.592, 0.338, 0.067, 0.003)
_SHUFFLE_STREAM = len(PROCESSES)

MIN_BATCH, MAX_BATCH = 2048, 1 << 18


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), stream])))


def generate_process(process: str, n: int, seed: int) -> np.ndarray:
    """``n`` accepted L1 events ``(n, 19, 4)`` float32 of one process (background or signal)."""
    if process not in _REGISTRY:
        raise ValueError(f"unknown process {process!r}; expected one of {PROCESSES}")
    if n < 0 or seed < 0:
        raise ValueError(f"n and seed must be non-negative, got n={n}, seed={seed}")
    builder, acceptance = _REGISTRY[process]
    rng = _rng(seed, PROCESSES.index(process))
    out = np.empty((n, N_OBJECTS, N_FEATURES), dtype=np.float32)
    have = generated = 0
    while have < n:
        batch = int(min(MAX_BATCH, max(MIN_BATCH, 1.1 * (n - have) / acceptance)))
        events = simulate(builder(rng, batch), rng)
        take = min(len(events), n - have)
        out[have : have + take] = events[:take]
        have += take
        generated += batch
    logger.debug("%s: %d accepted of %d generated", process, have, generated)
    return out


def mixture_counts(n: int, fractions: tuple[float, ...] = BACKGROUND_FRACTIONS) -> np.ndarray:
    """Event counts per process summing to ``n``, by largest-remainder rounding (ties: first process)."""
    exact = np.asarray(fractions, dtype=np.float64) / sum(fractions) * n
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def generate_background(
    n: int, seed: int, return_labels: bool = False
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The background mixture (W 59.2%, QCD 33.8%, Z 6.7%, ttbar 0.3%), shuffled with ``seed``.

    With ``return_labels`` also returns int8 labels indexing :data:`BACKGROUND_PROCESSES`.
    """
    counts = mixture_counts(n)
    parts = [generate_process(p, int(c), seed) for p, c in zip(BACKGROUND_PROCESSES, counts, strict=True)]
    labels = np.repeat(np.arange(len(BACKGROUND_PROCESSES), dtype=np.int8), counts)
    perm = _rng(seed, _SHUFFLE_STREAM).permutation(n)
    particles = np.take(np.concatenate(parts), perm, axis=0)
    labels = labels[perm]
    logger.info(
        "background: %d events, counts %s", n, dict(zip(BACKGROUND_PROCESSES, counts.tolist(), strict=True))
    )
    return (particles, labels) if return_labels else particles


def generate_signal(name: str, n: int, seed: int) -> np.ndarray:
    """``n`` accepted events of one of the ADC2021 signals (:data:`l1ad.events.schema.SIGNAL_NAMES`)."""
    if name not in SIGNAL_NAMES:
        raise ValueError(f"unknown signal {name!r}; expected one of {SIGNAL_NAMES}")
    return generate_process(name, n, seed)
