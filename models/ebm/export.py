"""TorchScript export of the EBM scoring function, eager-equality check, and CPU latency benchmark.

:class:`ScoringModule` maps ``(x, mask)`` (standardized (N, 57) inputs and (N, 57) float mask, see
:func:`~l1ad.models.ebm.scores.prepare`) to ``(energy (N,), score (N, 57))`` at sigma_min; for the
energy network the score is ``-grad_x E`` through ``torch.autograd.grad`` inside the script, which
switches grad mode on for it (a ``torch.no_grad`` caller works; ``torch.inference_mode`` cannot be
overridden, so callers must not use it). For the score network, ``energy``
is the Gauss-Legendre path integral of :func:`~l1ad.models.ebm.networks.path_integral_energy`.

The module is compiled with ``torch.jit.script`` (not traced: tracing does not record the autograd
call). :func:`check_equal` asserts ``torch.testing.assert_close(..., rtol=0, atol=0)`` against the
eager module: the script runs the same CPU kernels in the same order, so outputs are bitwise equal.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from l1ad.core.files import atomic_write_bytes
from l1ad.models.ebm.networks import EnergyNet, gauss_legendre, torch_bytes
from l1ad.models.ebm.scores import LoadedEBM, load_model

logger = logging.getLogger(__name__)


class ScoringModule(nn.Module):
    """``forward(x, mask) -> (energy, score)`` at a fixed noise level (sigma_min)."""

    def __init__(self, net: nn.Module, sigma: float, n_quadrature: int = 8) -> None:
        super().__init__()
        self.trunk = net.trunk
        self.is_energy = isinstance(net, EnergyNet)
        # the noise embedding at the fixed sigma is a constant: computed once, not per call
        sig = torch.full([1], float(sigma))
        with torch.no_grad():
            self.register_buffer("emb", net.trunk.sigma_emb(sig).detach().clone())
        self.register_buffer("sigma_col", sig.unsqueeze(1))
        nodes, weights = gauss_legendre(n_quadrature)
        self.nodes = nodes
        self.weights = weights

    def _net(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.trunk.body(x, mask, self.emb, self.sigma_col)
        return out.squeeze(1) if self.is_energy else out * mask

    def _energy_and_score(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # TorchScript has no torch.enable_grad: switch grad mode on with the aten op (a caller's
        # no_grad, e.g. the NoGradGuard Triton's PyTorch backend always sets, then still gets the
        # gradient) and restore it. torch.inference_mode cannot be overridden: callers must not use it.
        grad_was_enabled = torch.is_grad_enabled()
        torch.ops.aten.set_grad_enabled(True)
        xg = x.detach().requires_grad_(True)
        energy = self._net(xg, mask)
        grads = torch.autograd.grad([energy.sum()], [xg])
        torch.ops.aten.set_grad_enabled(grad_was_enabled)
        grad = grads[0]
        assert grad is not None
        return energy.detach(), -grad.detach()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.is_energy:
            return self._energy_and_score(x, mask)
        score = self._net(x, mask).detach()
        energy = torch.zeros([x.shape[0]], dtype=x.dtype)
        for t, w in zip(self.nodes, self.weights):  # noqa: B905 (TorchScript zip has no strict=)
            energy = energy - w * (self._net(x * t, mask).detach() * x * mask).sum(dim=1)
        return energy, score


def scoring_module(model: str | Path | LoadedEBM) -> ScoringModule:
    """The eager scoring module of a trained model (eval mode)."""
    model = load_model(model)
    return ScoringModule(model.net.eval(), model.sigma_min, model.config.energy_quadrature).eval()


def export_torchscript(
    model: str | Path | LoadedEBM, path: str | Path | None = None
) -> torch.jit.ScriptModule:
    """Script the scoring module; save it to ``path`` (default ``<model_dir>/scoring.ts``) if a dir is known."""
    scripted = torch.jit.script(scoring_module(model))
    if path is None and not isinstance(model, LoadedEBM):
        path = Path(model) / "scoring.ts"
    if path is not None:
        path = Path(path)
        atomic_write_bytes(path, torch_bytes(scripted, script=True))
        logger.info("wrote %s", path)
    return scripted


def check_equal(
    eager: nn.Module, scripted: nn.Module, x: torch.Tensor, mask: torch.Tensor, atol: float = 0.0
) -> float:
    """Assert scripted == eager (``rtol=0, atol=atol``) on ``(x, mask)``; return the max abs difference."""
    e_ref, s_ref = eager(x, mask)
    e_ts, s_ts = scripted(x, mask)
    torch.testing.assert_close(e_ts, e_ref, rtol=0.0, atol=atol)
    torch.testing.assert_close(s_ts, s_ref, rtol=0.0, atol=atol)
    return float(max((e_ts - e_ref).abs().max(), (s_ts - s_ref).abs().max()))


def benchmark_latency(
    module: nn.Module,
    x: torch.Tensor,
    mask: torch.Tensor,
    batch_sizes: tuple[int, ...] = (1, 1024),
    n_repeat: int = 200,
    warmup: int = 20,
) -> dict[int, dict[str, float]]:
    """Median/p90/p99 wall time per call and per event (ms) for each batch size, on the current threads."""
    out: dict[int, dict[str, float]] = {}
    for bs in batch_sizes:
        xb, mb = x[:bs], mask[:bs]
        if xb.shape[0] < bs:
            reps = -(-bs // xb.shape[0])
            xb, mb = xb.repeat(reps, 1)[:bs], mb.repeat(reps, 1)[:bs]
        reps = n_repeat if bs <= 64 else max(10, n_repeat // 10)
        for _ in range(warmup):
            module(xb, mb)
        times = np.empty(reps)
        for i in range(reps):
            t0 = time.perf_counter()
            module(xb, mb)
            times[i] = time.perf_counter() - t0
        med = float(np.median(times)) * 1e3
        out[bs] = {
            "ms_per_batch": med,
            "ms_per_event": med / bs,
            "p90_ms_per_batch": float(np.quantile(times, 0.9)) * 1e3,
            "p99_ms_per_batch": float(np.quantile(times, 0.99)) * 1e3,
        }
    return out
