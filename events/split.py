"""The validation split of a training file: the one definition every trainer uses.

Every ``k``-th event (``k = round(1 / fraction)``, at least 2; events ``k-1, 2k-1, ...``) is
validation, the rest is training. The split is deterministic and independent of the seed, so the
same file always gives the same validation events whatever model is trained on it; generated
files are already in random order. ``max_val`` caps the validation set: validation events beyond
the first ``max_val`` go back into training.
"""

from __future__ import annotations

import numpy as np


def validation_split(n: int, fraction: float, max_val: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)``: sorted int64 indices into ``n`` events (see the module docstring)."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    if n < 2:
        raise ValueError(f"need at least 2 events to split off a validation set, got {n}")
    k = max(int(round(1.0 / fraction)), 2)
    idx = np.arange(n, dtype=np.int64)
    is_val = idx % k == k - 1
    if not is_val.any():  # fewer than k events: the last one validates
        is_val[-1] = True
    if max_val is not None:
        if max_val < 1:
            raise ValueError(f"max_val must be >= 1, got {max_val}")
        is_val[np.flatnonzero(is_val)[max_val:]] = False
    return idx[~is_val], idx[is_val]
