"""The fixed types of the in-model score path, shared by every quantized style (the one home).

Keras computes in float32, so every intermediate of the score path must fit 24 significant bits for
the model to equal the firmware bit for bit:

* :data:`RECON_TYPE` -- reconstruction / VAE mean: the common input grid that holds every input type
  (``events.encoding.INPUT_COMMON_TYPE``, fixed<13,6>);
* :data:`SCORE_DIFF_TYPE` -- ``x - reconstruction``, saturated at +-16 input units (1 TeV in pT): fixed<12,5>;
* :data:`SCORE_SQ_TYPE` -- squared error per input (the exact square has 22 bits, truncated to f=10): ufixed<18,8>;
* :data:`LATENT_SQ_TYPE` -- square of a VAE mean (:data:`RECON_TYPE`, |mu| < 64): ufixed<22,12>. The error
  types above saturate at 16 input units; a latent mean is not an error and reaches 25 in the background's
  tail, so squared with :data:`SCORE_SQ_TYPE` it saturated at 256 and the tail tied;
* :func:`score_sum_type` -- the score: the exact sum of ``n`` squared errors, ``ufixed<18 + ceil(log2 n), 8 +
  ceil(log2 n)>`` (:data:`SCORE_TYPE`: all 57 inputs, ufixed<24,14>; the compact autoencoder sums the 19 pT
  errors: ufixed<23,13>). Training records it in ``meta.json["output_type"]`` and the firmware build
  refuses a converted model whose output type cannot hold it.

:func:`set_fixed_kernel` gives the fixed, non-trainable sum layer of the score its 0/1 weights.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from l1ad.core.fixed_point import FixedPoint
from l1ad.events.encoding import INPUT_COMMON_TYPE

RECON_TYPE = INPUT_COMMON_TYPE
SCORE_DIFF_TYPE = FixedPoint(k=1, i=4, f=7, overflow="SAT", rounding="RND")
SCORE_SQ_TYPE = FixedPoint(k=0, i=8, f=10, overflow="SAT", rounding="TRN")
LATENT_SQ_TYPE = FixedPoint(k=0, i=2 * RECON_TYPE.i, f=SCORE_SQ_TYPE.f, overflow="SAT", rounding="TRN")


def score_sum_type(n_terms: int) -> FixedPoint:
    """The exact type of a sum of ``n_terms`` values of :data:`SCORE_SQ_TYPE` (no rounding, no overflow)."""
    if n_terms < 1:
        raise ValueError(f"a score sums at least one term, got {n_terms}")
    return FixedPoint(k=0, i=SCORE_SQ_TYPE.i + math.ceil(math.log2(n_terms)), f=SCORE_SQ_TYPE.f)


SCORE_TYPE = score_sum_type(57)


def set_fixed_kernel(layer: Any, output: Any, weights: np.ndarray | None) -> Any:
    """Overwrite the (non-trainable, all-ones) kernel of a fixed sum layer with ``weights`` (0/1 values)."""
    if weights is not None:
        kernel = next(v for v in layer.weights if v.path.endswith("kernel"))
        kernel.assign(np.asarray(weights, dtype="float32").reshape(tuple(kernel.shape)))
    return output
