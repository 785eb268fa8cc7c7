"""One anomaly score of a trained energy/score model as a module on RAW L1 events, for export.

:class:`RawEventScore` maps ``events`` (N, 57) float32 ``[pT (GeV), eta, phi (rad)]`` per slot,
slot-major in :func:`~l1ad.events.schema.flat_feature_names` order (absent objects all 0), to the score
(N, 1) float64. It does what the l1ad service does with such a request: MET is always present, any
other object is present when its pT is non-zero (the one rule of
:func:`l1ad.events.sources.kinematics_to_particles`, which :func:`l1ad.serving.inputs.to_particles`
follows; written again here in torch because a TorchScript module cannot call numpy, and tested
against it), the mask is :func:`~l1ad.events.schema.input_mask`, the standardization is
:meth:`~l1ad.events.encoding.Standardizer.transform` (float64 ``(x - mean) / std``, 0 where masked,
then float32), batches under :data:`~l1ad.models.ebm.scores.MIN_ROWS` rows are zero-padded to it,
and the score is :mod:`l1ad.models.ebm.scores`' definition. It does not validate events (the service
does): a client must send events the service would accept. On events read from an HDF5 file the
class column decides presence instead; the two agree unless the file holds a present object other
than MET with pT exactly 0, or an absent MET.

The networks run through :class:`~l1ad.models.ebm.export.ScoringModule`, one per noise level the
score needs. Which scores need ``grad_x E`` (:data:`GRADIENT_SCORES`): only ``score_norm`` of the
energy network (``ebm``). ``energy`` of the energy network is E itself; ``multiscale_gmm`` of the energy
network uses E at every level; the score network (``score``) outputs the score directly, and its
``energy`` is a path integral of that output. A gradient score cannot be exported to ONNX and must
run with autograd available (Triton: ``INFERENCE_MODE`` false).

Equality: ``energy`` and ``score_norm`` are bitwise the registry's scores (same float32 network
kernels on the same padded rows, the same float64 norms, and ``score_norm``'s mean summed in numpy's
order, left to right). ``multiscale_gmm``'s per-level features are bitwise equal too, but the GMM
density is evaluated here with torch float64 (matmul, exp, log1p) instead of numpy/BLAS, so it agrees
to float64 rounding, not to the bit (see :data:`GMM_RTOL`).
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from torch import nn

from l1ad.events import schema
from l1ad.models.ebm.export import ScoringModule
from l1ad.models.ebm.networks import EnergyNet
from l1ad.models.ebm.scores import MIN_ROWS, SCORE_NAMES, LoadedEBM

logger = logging.getLogger(__name__)

#: ``(model name, score name)`` pairs whose score needs the input gradient ``grad_x E``.
GRADIENT_SCORES = frozenset({("ebm", "score_norm"), ("ebm_hlt", "score_norm")})
#: Tolerance of ``multiscale_gmm`` against the registry (the float64 GMM density on torch kernels
#: instead of numpy/BLAS; measured max abs diff 7e-15 on scores of O(1-100)).
GMM_RTOL, GMM_ATOL = 1e-12, 1e-12


def needs_gradient(model_name: str, score: str) -> bool:
    """Whether ``score`` of model ``model_name`` (``ebm``/``score``) is built on ``grad_x E``."""
    return (model_name, score) in GRADIENT_SCORES


def _levels(model: LoadedEBM, score: str) -> list[int]:
    """Indices of the noise levels (``model.sigmas``, descending) the score evaluates."""
    n = len(model.sigmas)
    if score == "energy":
        return [n - 1]
    if score == "score_norm":
        return list(range(n - model.config.score_norm_levels, n))
    return list(range(n))


class RawEventScore(nn.Module):
    """``forward(events (N, 57) float32) -> (N, 1) float64``: one score of a trained energy model."""

    def __init__(self, model: LoadedEBM, score: str, pad_rows: int = MIN_ROWS) -> None:
        super().__init__()
        if score not in SCORE_NAMES:
            raise ValueError(f"unknown EBM score {score!r}; choose from {SCORE_NAMES}")
        if model.standardizer.representation != "l1":
            raise ValueError(
                f"{model.name}: only models on the 57 L1 inputs export as a raw-event module (inputs "
                f"{model.standardizer.representation!r} are computed in numpy; serve it with `l1ad serve`)"
            )
        if score == "multiscale_gmm" and model.gmm is None:
            raise ValueError(f"{model.name}: no fitted GMM (gmm.pkl), so no multiscale_gmm score")
        net = model.net.eval()
        self.score_kind = SCORE_NAMES.index(score)  # 0 energy, 1 score_norm, 2 multiscale_gmm
        self.is_energy = isinstance(net, EnergyNet)
        self.use_norm = score == "score_norm" or (score == "multiscale_gmm" and not self.is_energy)
        self.pad_rows = int(pad_rows)
        self.register_buffer("mean", torch.tensor(model.standardizer.mean, dtype=torch.float64))
        self.register_buffer("std", torch.tensor(model.standardizer.std, dtype=torch.float64))
        live = np.ones(schema.N_INPUTS, dtype=bool)
        live[3 * schema.MET.first_slot + schema.ETA] = False  # MET eta is never a live input
        self.register_buffer("live", torch.from_numpy(live))
        always = np.zeros(schema.N_OBJECTS, dtype=bool)
        always[schema.MET.first_slot] = True  # MET always exists (events.sources.kinematics_to_particles)
        self.register_buffer("always", torch.from_numpy(always))
        levels = _levels(model, score)
        self.sigmas = [float(model.sigmas[j]) for j in levels]
        quad = model.config.energy_quadrature
        self.levels = nn.ModuleList([ScoringModule(net, s, quad) for s in self.sigmas])
        self._gmm_buffers(model.gmm if score == "multiscale_gmm" else None, len(levels))

    def _gmm_buffers(self, gmm: dict | None, n_features: int) -> None:
        """The GMM as float64 buffers; ``log_det`` and ``log_w`` computed by numpy as sklearn does."""
        if gmm is None:
            k, d = 0, n_features
            means, chol, log_det, log_w = np.zeros((0, d)), np.zeros((0, d, d)), np.zeros(0), np.zeros(0)
            f_mean, f_std = np.zeros(d), np.ones(d)
        else:
            g = gmm["gmm"]
            if g.covariance_type != "full":
                raise ValueError(f"GMM covariance {g.covariance_type!r}: only 'full' is exported")
            means, chol = np.asarray(g.means_, np.float64), np.asarray(g.precisions_cholesky_, np.float64)
            k, d = means.shape
            log_det = np.sum(np.log(chol.reshape(k, -1)[:, :: d + 1]), axis=1)
            log_w = np.log(g.weights_)
            f_mean, f_std = np.asarray(gmm["mean"], np.float64), np.asarray(gmm["std"], np.float64)
        for name, value in (("gmm_means", means), ("gmm_chol", chol), ("gmm_log_det", log_det),
                            ("gmm_log_w", log_w), ("f_mean", f_mean), ("f_std", f_std)):  # fmt: skip
            self.register_buffer(name, torch.as_tensor(np.ascontiguousarray(value), dtype=torch.float64))
        self.n_components = int(k)
        self.log_norm = float(d * math.log(2 * math.pi))  # sklearn's n_features * log(2 pi)

    def inputs(self, events: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw events -> standardized ``x`` and float mask, both (N, 57) float32: ``scores.prepare`` of
        ``kinematics_to_particles(events)`` (MET present whatever its pT, any other slot iff pT != 0)."""
        events = events.to(torch.float32)  # the service also rounds its input to float32 first
        k = events.reshape(events.shape[0], schema.N_OBJECTS, 3)
        present = (k[:, :, schema.PT] != 0) | self.always
        mask = present.unsqueeze(2).expand(-1, -1, 3).reshape(events.shape[0], schema.N_INPUTS)
        mask = mask & self.live
        z = (events.reshape(events.shape[0], schema.N_INPUTS).double() - self.mean) / self.std
        x = torch.where(mask, z, torch.zeros_like(z)).float()
        return x, mask.float()

    def features(self, x: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """Per level (float64, (N,)): ``sigma ||s(x, sigma)||`` or the energy, as ``scores.raw_scores``."""
        out: list[torch.Tensor] = []
        for j, level in enumerate(self.levels):
            if self.use_norm:
                s = level._energy_and_score(x, mask)[1] if self.is_energy else level._net(x, mask)
                out.append(self.sigmas[j] * torch.linalg.vector_norm(s.detach().double(), dim=1))
            elif self.is_energy:
                out.append(level._net(x, mask).detach().double())
            else:
                out.append(level(x, mask)[0].double())  # the score network's path-integral energy
        return out

    def gmm_nll(self, features: torch.Tensor) -> torch.Tensor:
        """``-log p_GMM`` of the (N, L) features: ``scores.gmm_nll`` / sklearn's ``score_samples``."""
        z = (features - self.f_mean) / self.f_std
        cols = []
        for c in range(self.n_components):
            y = z @ self.gmm_chol[c] - self.gmm_means[c] @ self.gmm_chol[c]
            cols.append((y * y).sum(dim=1))
        log_prob = torch.stack(cols, dim=1)
        wlp = -0.5 * (self.log_norm + log_prob) + self.gmm_log_det + self.gmm_log_w
        # sklearn's _logsumexp: the maxima leave the sum and are counted, the rest are shifted by it
        top = wlp.max(dim=1, keepdim=True).values
        is_top = wlp == top
        rest = torch.where(is_top, torch.full_like(wlp, -math.inf), wlp)
        count = is_top.double().sum(dim=1, keepdim=True)
        shift = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
        s = torch.exp(rest - shift).sum(dim=1, keepdim=True)
        s = torch.where(s == 0, s, s / count)
        return -(torch.log1p(s) + torch.log(count) + top).squeeze(1)

    def scores(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The (N,) float64 score of standardized inputs (no padding)."""
        feats = self.features(x, mask)
        if self.score_kind == 0:
            return feats[0]
        if self.score_kind == 1:
            total = feats[0]
            for f in feats[1:]:  # numpy's mean over the levels: summed left to right, then divided
                total = total + f
            return total / len(feats)
        return self.gmm_nll(torch.stack(feats, dim=1))

    def forward(self, events: torch.Tensor) -> torch.Tensor:
        n = events.shape[0]
        x, mask = self.inputs(events)
        if self.pad_rows > 0 and n < self.pad_rows:  # the registry's padding (scores.MIN_ROWS)
            x = torch.cat([x, x.new_zeros(self.pad_rows - n, x.shape[1])])
            mask = torch.cat([mask, mask.new_zeros(self.pad_rows - n, mask.shape[1])])
        return self.scores(x, mask)[:n].unsqueeze(1)
