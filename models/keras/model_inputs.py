"""What a Keras model reads: the hardware-encoded L1 inputs, or (full-precision references) a
standardized representation of :mod:`l1ad.events.representations`.

The L1 models (``ae_ref``, ``ae_compact``, ``vae``, ``student``) read the 57 inputs of
:func:`l1ad.events.encoding.encode`, the numbers the firmware sees; their reconstruction error weighs
eta/phi by their ranges (:data:`~l1ad.models.keras.layers.FEATURE_WEIGHTS`). The float references
(``ae_ref_log``: pT as ``log(1 + pT)``; ``ae_ref_hlt``: the 64-feature HLT vector) read their
representation standardized over live inputs by a :class:`~l1ad.events.encoding.Standardizer` fitted
on the training split and stored beside the model (``standardizer.json``); every live input has unit
variance, so their error weighs every live input alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l1ad.events import encoding, schema
from l1ad.events.encoding import Standardizer

STANDARDIZER_FILE = "standardizer.json"


@dataclass(frozen=True)
class ModelInputs:
    x: np.ndarray  # (N, n) float32 network inputs
    mask: np.ndarray  # (N, n) bool: live inputs (the error is summed over these)
    weights: np.ndarray  # (n,) squared-error weight per input


def n_inputs(representation: str | None) -> int:
    """Number of network inputs for a representation (None: the 57 hardware inputs)."""
    from l1ad.events import representations

    return schema.N_INPUTS if representation is None else representations.get(representation).n_inputs


def fit_standardizer(representation: str | None, particles: np.ndarray) -> Standardizer | None:
    """The standardizer of a float reference (fitted on ``particles``), None for the hardware inputs."""
    return None if representation is None else Standardizer.fit(particles, representation)


def model_inputs(particles: np.ndarray, standardizer: Standardizer | None) -> ModelInputs:
    """The inputs of (N, 19, 4) ``particles`` for a model with this standardizer (None: hardware)."""
    from l1ad.models.keras.layers import FEATURE_WEIGHTS

    particles = np.asarray(particles)
    if standardizer is None:
        return ModelInputs(encoding.encode(particles), schema.input_mask(particles), FEATURE_WEIGHTS)
    x, mask = standardizer.transform_with_mask(particles)
    return ModelInputs(x, mask, np.ones(x.shape[1]))


def load_standardizer(model_dir: str | Path) -> Standardizer | None:
    """The stored standardizer of a float reference model directory, None for an L1 model."""
    path = Path(model_dir) / STANDARDIZER_FILE
    return Standardizer.load(path) if path.is_file() else None
