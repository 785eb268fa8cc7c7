"""Noise schedule and denoising-score-matching (DSM) losses, with masking of absent objects.

Definitions (x: standardized inputs, m: 0/1 mask of real entries, D_m = sum(m) present dimensions)

* Schedule: ``sigma_l = sigma_max * (sigma_min / sigma_max) ** (l / (L - 1))``, ``l = 0..L-1``
  (geometric, decreasing; level L-1 is sigma_min).
* Perturbation: ``x~ = x + sigma * eps * m``, ``eps ~ N(0, I)``. Padded entries get **no noise**.
* Per-event DSM: ``l(x, sigma) = sigma^2 * || (s_theta(x~, sigma) + eps / sigma) * m ||^2``
  (summed over the present entries only: padded entries carry **no loss**, so the point masses at 0
  of absent objects never enter). For x ~ N(0, I) and the true score ``-x~ / (1 + sigma^2)``
  its expectation is ``D_m / (1 + sigma^2)`` (:func:`gaussian_dsm_expectation`).
* ``L_DSM``: mean of ``l`` over the batch with one sigma per event drawn uniformly from the levels.
* ``L_multi-scale``: the first ``ms_batch`` events of the batch at **all** L levels (fresh noise);
  ``L_ms = sum_l w_l * mean_events l(x, sigma_l) / sum_l w_l`` (uniform ``w_l`` by default).
* ``L = L_DSM + lambda_ms * L_ms + lambda_l2 * sum ||theta||^2`` (all parameters).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from l1ad.models.ebm.config import EBMConfig
from l1ad.models.ebm.networks import model_score

logger = logging.getLogger(__name__)

ScoreFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def geometric_sigmas(sigma_max: float, sigma_min: float, n_levels: int) -> np.ndarray:
    """Decreasing geometric noise levels from ``sigma_max`` to ``sigma_min`` (float64, (L,))."""
    return np.geomspace(sigma_max, sigma_min, n_levels)


def sigmas_for(config: EBMConfig) -> np.ndarray:
    return geometric_sigmas(config.sigma_max, config.sigma_min, config.n_levels)


def level_weights(config: EBMConfig) -> np.ndarray:
    """Normalized per-level weights ``w_l / sum w`` of the multi-scale term."""
    w = np.ones(config.n_levels) if config.level_weights is None else np.asarray(config.level_weights, float)
    return w / w.sum()


def dsm_per_event(
    score_fn: ScoreFn, x: torch.Tensor, mask: torch.Tensor, sigma: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    """Per-event DSM loss ``sigma^2 ||(s(x + sigma eps m, sigma) + eps / sigma) m||^2``, (N,).

    ``score_fn(x_noisy, sigma, mask)`` is any score function (a network or the known true score).
    """
    s2 = sigma.unsqueeze(1)
    noisy = x + s2 * eps * mask
    residual = (score_fn(noisy, sigma, mask) + eps / s2) * mask
    return sigma**2 * (residual**2).sum(dim=1)


def gaussian_dsm_expectation(n_present: float | np.ndarray, sigma: float | np.ndarray) -> np.ndarray:
    """Closed form of E[l] for x ~ N(0, I) and the true score ``-x~/(1 + sigma^2)``: ``D_m/(1+sigma^2)``."""
    return np.asarray(n_present, float) / (1.0 + np.asarray(sigma, float) ** 2)


def network_score_fn(net: nn.Module) -> ScoreFn:
    """The network's score with ``create_graph=True`` (trainable through the autograd score)."""

    def fn(x: torch.Tensor, sigma: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return model_score(net, x, sigma, mask, create_graph=True)

    return fn


def l2_penalty(net: nn.Module) -> torch.Tensor:
    return sum((p**2).sum() for p in net.parameters())  # type: ignore[return-value]


def training_loss(
    net: nn.Module,
    x: torch.Tensor,
    mask: torch.Tensor,
    sigmas: Sequence[float],
    config: EBMConfig,
    generator: torch.Generator,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss of one batch and its parts (``dsm``, ``multiscale``, ``l2``) as floats."""
    score_fn = network_score_fn(net)
    sig = torch.as_tensor(np.asarray(sigmas), dtype=x.dtype)
    n = x.shape[0]
    idx = torch.randint(len(sig), (n,), generator=generator)
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    dsm = dsm_per_event(score_fn, x, mask, sig[idx], eps).mean()
    total = dsm
    parts = {"dsm": float(dsm.detach())}
    if config.lambda_ms > 0:
        k = min(config.ms_batch, n)
        n_levels = len(sig)
        xs = x[:k].repeat(n_levels, 1)
        ms = mask[:k].repeat(n_levels, 1)
        sig_rep = sig.repeat_interleave(k)
        eps_ms = torch.randn(xs.shape, generator=generator, dtype=x.dtype)
        per_level = dsm_per_event(score_fn, xs, ms, sig_rep, eps_ms).reshape(n_levels, k).mean(dim=1)
        w = torch.as_tensor(level_weights(config), dtype=x.dtype)
        multiscale = (w * per_level).sum()
        total = total + config.lambda_ms * multiscale
        parts["multiscale"] = float(multiscale.detach())
    if config.lambda_l2 > 0:
        l2 = l2_penalty(net)
        total = total + config.lambda_l2 * l2
        parts["l2"] = float(l2.detach())
    parts["total"] = float(total.detach())
    return total, parts


def validation_loss(
    net: nn.Module,
    x: torch.Tensor,
    mask: torch.Tensor,
    sigmas: Sequence[float],
    seed: int,
    batch_size: int = 2048,
) -> float:
    """Mean DSM loss at all levels with *fixed* noise (seeded), comparable across epochs."""
    gen = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    for start in range(0, x.shape[0], batch_size):
        xb, mb = x[start : start + batch_size], mask[start : start + batch_size]
        for sigma in sigmas:
            eps = torch.randn(xb.shape, generator=gen, dtype=x.dtype)
            sig = torch.full((xb.shape[0],), float(sigma), dtype=x.dtype)
            loss = dsm_per_event(lambda a, b, c: model_score(net, a, b, c), xb, mb, sig, eps)
            total += float(loss.sum())
            count += xb.shape[0]
    return total / max(count, 1)
