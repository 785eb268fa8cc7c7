"""Energy network E_theta(x, sigma) and score network s_theta(x, sigma) on the standardized inputs.

The inputs are those of the model's representation (:mod:`l1ad.events.representations`): the 57 L1
kinematics (``ebm``, ``score``) or the 64-feature HLT vector (``ebm_hlt``); the formulas below are
written for the 57.

Both share one trunk::

    h = W_in (x * m) + W_m present + emb(log sigma)        # 57 -> hidden, 19 -> hidden, noise embedding
    h = h + W_b SiLU(h)            (n_blocks times)          # residual SiLU blocks hidden -> hidden
    out = W_out SiLU(h) / sigma                              # 1 (energy) or 57 (score) outputs

* ``x`` is the :class:`~l1ad.events.encoding.Standardizer` output (padded slots are exactly 0) and
  ``m`` the (N, 57) float mask of real objects (``schema.input_mask``: valid bits x3, MET eta never live). The mask is an input:
  the network multiplies ``x`` by it (so the energy does not depend on padded entries and their
  gradient, hence their score, is exactly 0) and sees the 19 presence flags through ``W_m`` (so a real
  object whose standardized value is 0 differs from an absent one).
* The noise embedding is sinusoidal features of ``log sigma`` followed by a small SiLU MLP.
* The output is divided by sigma (the NCSN noise-conditioning trick): the true score scales as 1/sigma
  at small noise, so the trunk only has to learn an O(1) quantity at every level.
* Score of the energy network: ``s = -grad_x E`` (:func:`model_score`, ``create_graph=True`` in training).
  The score network's output is multiplied by the mask, so padded entries have score 0 for both.

All modules are TorchScript-scriptable (see :mod:`l1ad.models.ebm.export`).
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn

from l1ad.events import representations, schema
from l1ad.models.ebm.config import MODEL_NAMES, EBMConfig

logger = logging.getLogger(__name__)


class SigmaEmbedding(nn.Module):
    """Sinusoidal features of log(sigma) -> SiLU MLP -> ``dim``."""

    def __init__(self, n_frequencies: int, dim: int) -> None:
        super().__init__()
        freqs = torch.exp(torch.linspace(0.0, math.log(100.0), n_frequencies))
        self.register_buffer("freqs", freqs, persistent=False)
        self.lin1 = nn.Linear(2 * n_frequencies, dim)
        self.lin2 = nn.Linear(dim, dim)

    def forward(self, sigma: torch.Tensor) -> torch.Tensor:
        # a batch holds few distinct levels: embed each once, then gather (same values, less work)
        levels, inverse = torch.unique(sigma, return_inverse=True)
        arg = torch.log(levels).unsqueeze(1) * self.freqs.to(sigma.dtype)
        feats = torch.cat([torch.sin(arg), torch.cos(arg)], dim=1)
        return self.lin2(nn.functional.silu(self.lin1(feats)))[inverse]


class Trunk(nn.Module):
    """Shared trunk: masked input projection + presence flags + noise embedding, residual SiLU blocks.

    ``flag_columns`` are the mask columns that say each of the 19 objects is present (None: the L1
    layout, every third input starting at the first).
    """

    def __init__(
        self,
        n_out: int,
        hidden: int = 256,
        n_blocks: int = 3,
        n_frequencies: int = 16,
        n_inputs: int = schema.N_INPUTS,
        flag_columns: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.in_proj = nn.Linear(n_inputs, hidden)
        self.mask_proj = nn.Linear(schema.N_OBJECTS, hidden, bias=False)
        self.sigma_emb = SigmaEmbedding(n_frequencies, hidden)
        self.blocks = nn.ModuleList([nn.Linear(hidden, hidden) for _ in range(n_blocks)])
        self.out = nn.Linear(hidden, n_out)
        self.l1_layout = flag_columns is None
        flags = torch.tensor(flag_columns if flag_columns is not None else [], dtype=torch.long)
        self.register_buffer("flag_columns", flags, persistent=False)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.body(x, mask, self.sigma_emb(sigma), sigma.unsqueeze(1))

    def body(
        self, x: torch.Tensor, mask: torch.Tensor, emb: torch.Tensor, sigma_col: torch.Tensor
    ) -> torch.Tensor:
        """The trunk given the noise embedding ``emb`` ((N or 1, hidden)) and ``sigma_col`` ((N or 1, 1))."""
        if self.l1_layout:
            flags = mask[:, 0::3]
        else:
            flags = mask.index_select(1, self.flag_columns)
        h = self.in_proj(x * mask) + self.mask_proj(flags) + emb
        for block in self.blocks:
            h = h + block(nn.functional.silu(h))
        return self.out(nn.functional.silu(h)) / sigma_col


class EnergyNet(nn.Module):
    """Scalar energy E_theta(x, sigma); low energy = background-like. ``forward`` returns (N,)."""

    def __init__(
        self,
        hidden: int = 256,
        n_blocks: int = 3,
        n_frequencies: int = 16,
        n_inputs: int = schema.N_INPUTS,
        flag_columns: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.trunk = Trunk(1, hidden, n_blocks, n_frequencies, n_inputs, flag_columns)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.trunk(x, sigma, mask).squeeze(1)


class ScoreNet(nn.Module):
    """Direct score s_theta(x, sigma) in R^n_inputs (zero on padded entries). ``forward`` returns (N, n)."""

    def __init__(
        self,
        hidden: int = 256,
        n_blocks: int = 3,
        n_frequencies: int = 16,
        n_inputs: int = schema.N_INPUTS,
        flag_columns: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.trunk = Trunk(n_inputs, hidden, n_blocks, n_frequencies, n_inputs, flag_columns)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.trunk(x, sigma, mask) * mask


def build_network(name: str, config: EBMConfig) -> nn.Module:
    """``"ebm"``, ``"ebm_hlt"`` -> :class:`EnergyNet`, ``"score"`` -> :class:`ScoreNet`, with the config's
    sizes and the inputs of its representation."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown EBM model {name!r}; expected one of {MODEL_NAMES}")
    cls = ScoreNet if name == "score" else EnergyNet
    rep = representations.get(config.for_model(name).inputs)
    flags = [int(c) for c in rep.flag_columns] if rep.hlt else None  # None: the L1 layout, every third input
    return cls(config.hidden, config.n_blocks, config.n_frequencies, rep.n_inputs, flags)


def _as_sigma(sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    if isinstance(sigma, torch.Tensor) and sigma.dim() == 1:
        return sigma.to(x.dtype)
    return torch.full((x.shape[0],), float(sigma), dtype=x.dtype, device=x.device)


def model_score(
    net: nn.Module,
    x: torch.Tensor,
    sigma: torch.Tensor | float,
    mask: torch.Tensor,
    create_graph: bool = False,
) -> torch.Tensor:
    """Score s(x, sigma) of either network: ``-grad_x E`` (autograd) or the score network's output.

    With ``create_graph=False`` the result is detached (scoring, sampling); with ``True`` it stays in
    the graph so a loss on it trains the energy (double back-propagation).
    """
    sigma = _as_sigma(sigma, x)
    if isinstance(net, ScoreNet):
        out = net(x, sigma, mask)
        return out if create_graph else out.detach()
    with torch.enable_grad():
        xg = x if (create_graph and x.requires_grad) else x.detach().requires_grad_(True)
        energy = net(xg, sigma, mask)
        (grad,) = torch.autograd.grad(energy.sum(), xg, create_graph=create_graph)
    return -grad if create_graph else -grad.detach()


def model_energy(
    net: EnergyNet, x: torch.Tensor, sigma: torch.Tensor | float, mask: torch.Tensor
) -> torch.Tensor:
    """Energy E(x, sigma) (detached), (N,)."""
    with torch.no_grad():
        return net(x, _as_sigma(sigma, x), mask)


def path_integral_energy(
    net: nn.Module, x: torch.Tensor, sigma: float, mask: torch.Tensor, n_points: int = 8
) -> torch.Tensor:
    """Energy of a score field up to a constant: ``E(x) - E(0) = -int_0^1 s(t x) . x dt``.

    Used for the score network (which has no energy of its own); Gauss-Legendre quadrature on
    ``n_points`` nodes along the straight line from the origin (the background mean in standardized
    units, padded entries fixed at 0). Exact for the energy network when the integrand is smooth.
    """
    nodes, weights = (torch.as_tensor(a, dtype=x.dtype) for a in gauss_legendre(n_points))
    total = torch.zeros(x.shape[0], dtype=x.dtype)
    for t, w in zip(nodes, weights, strict=True):
        s = model_score(net, x * t, sigma, mask)
        total = total - w * (s * x * mask).sum(dim=1)
    return total


def gauss_legendre(n: int) -> tuple[list[float], list[float]]:
    import numpy as np

    nodes, weights = np.polynomial.legendre.leggauss(n)
    return [float(0.5 * (t + 1.0)) for t in nodes], [float(0.5 * w) for w in weights]


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def torch_bytes(obj: object, script: bool = False) -> bytes:
    """``torch.save`` (``torch.jit.save`` for a scripted module) into memory. Saving to a file names the
    zip archive's root folder after the file, and an atomic write saves to a random temporary name:
    through memory the archive is always ``archive/``, so the same weights give the same bytes."""
    import io

    buf = io.BytesIO()
    (torch.jit.save if script else torch.save)(obj, buf)
    return buf.getvalue()
