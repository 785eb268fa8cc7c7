"""Full-precision PyTorch energy-based model (EBM) for HLT/offline anomaly scoring: the public API.

Trained by multi-scale denoising score matching on standardized L1 objects with absent objects
masked (no noise, no loss). Modules, one job each:

* :mod:`~l1ad.models.ebm_config` - :class:`EBMConfig` (frozen, strict YAML/dict loading)
* :mod:`~l1ad.models.ebm_networks` - energy network E(x, sigma) (score = -grad E) and score network
* :mod:`~l1ad.models.ebm_dsm` - geometric noise schedule, masked DSM and multi-scale losses
* :mod:`~l1ad.models.ebm_train` - :func:`train_model` (checkpoints, resume, early stopping)
* :mod:`~l1ad.models.ebm_scores` - :func:`score` (energy, score_norm, multiscale_gmm), :func:`teacher_scores`
* :mod:`~l1ad.models.ebm_explain` - :func:`explain_event`, :func:`plot_attribution`
* :mod:`~l1ad.models.ebm_sampling` - annealed Langevin, :func:`compare_with_background`
* :mod:`~l1ad.models.ebm_export` - TorchScript export, eager equality check, latency benchmark
"""

from __future__ import annotations

from l1ad.models.ebm_config import MODEL_NAMES, EBMConfig, load_config
from l1ad.models.ebm_explain import attributions, explain_event, plot_attribution
from l1ad.models.ebm_export import benchmark_latency, check_equal, export_torchscript, scoring_module
from l1ad.models.ebm_sampling import annealed_langevin, compare_with_background, sample_like
from l1ad.models.ebm_scores import SCORE_NAMES, LoadedEBM, load_model, score, teacher_scores
from l1ad.models.ebm_train import train_model

__all__ = [
    "MODEL_NAMES",
    "SCORE_NAMES",
    "EBMConfig",
    "LoadedEBM",
    "annealed_langevin",
    "attributions",
    "benchmark_latency",
    "check_equal",
    "compare_with_background",
    "explain_event",
    "export_torchscript",
    "load_config",
    "load_model",
    "plot_attribution",
    "sample_like",
    "score",
    "scoring_module",
    "teacher_scores",
    "train_model",
]
