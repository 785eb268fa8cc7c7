"""Full-precision PyTorch energy-based model (EBM) for HLT/offline anomaly scoring: the public API.

Trained by multi-scale denoising score matching on standardized L1 objects with absent objects
masked (no noise, no loss). Modules, one job each:

Import what you need from the modules (this package file imports nothing, so loading one
module never loads the trainer):

* :mod:`~l1ad.models.ebm.config` - :class:`EBMConfig` (frozen, strict YAML/dict loading)
* :mod:`~l1ad.models.ebm.networks` - energy network E(x, sigma) (score = -grad E) and score network
* :mod:`~l1ad.models.ebm.dsm` - geometric noise schedule, masked DSM and multi-scale losses
* :mod:`~l1ad.models.ebm.train` - :func:`train_model` (checkpoints, resume, early stopping)
* :mod:`~l1ad.models.ebm.scores` - :func:`score` (energy, score_norm, multiscale_gmm)
* :mod:`~l1ad.models.ebm.explain` - :func:`explain_event`, :func:`plot_attribution`
* :mod:`~l1ad.models.ebm.sampling` - annealed Langevin, :func:`compare_with_background`
* :mod:`~l1ad.models.ebm.export` - TorchScript export, eager equality check, latency benchmark
"""
