"""Training of the EBM (``"ebm"``; ``"ebm_hlt"`` on the HLT vector) or score network (``"score"``) by
multi-scale denoising score matching.

:func:`train_model` reads background events, splits off a validation set, fits the
:class:`~l1ad.events.encoding.Standardizer` on the training split, trains with Adam on the loss of
:mod:`l1ad.models.ebm.dsm`, early-stops on the validation DSM loss (fixed validation noise),
checkpoints every epoch (``checkpoint.pt``: model/optimizer/RNG state, so ``resume=True`` continues
bitwise-identically), then fits the multi-scale GMM on the validation split and writes, atomically::

    <out>/<name>-float/model.pt            best state_dict
                       standardizer.json   Standardizer (mean/std of the inputs over live entries, and
                                           the representation: the 57 L1 inputs or the HLT vector)
                       gmm.pkl             {"gmm": GaussianMixture, "mean", "std"} of per-level features
                       meta.json           model, quantization, framework, config, seed, data_sha256,
                                           n_train, metrics, tool versions

Determinism: a seeded ``torch.Generator`` drives shuffling and noise, network init uses
``torch.manual_seed(seed)``, and ``torch.use_deterministic_algorithms(True)`` is on while training
(restored afterwards); for a fixed thread count the same seed gives bitwise-identical weights.
"""

from __future__ import annotations

import logging
import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from l1ad.core.files import atomic_write_bytes
from l1ad.core.versions import TORCH_TOOLS, tool_versions
from l1ad.events.encoding import Standardizer
from l1ad.events.io import data_hash, read_events
from l1ad.events.split import validation_split
from l1ad.models import registry
from l1ad.models.ebm import pattern_density
from l1ad.models.ebm.config import MODEL_NAMES, EBMConfig, load_config
from l1ad.models.ebm.dsm import sigmas_for, training_loss, validation_loss
from l1ad.models.ebm.networks import build_network, count_parameters, torch_bytes
from l1ad.models.ebm.scores import (
    ALL_SCORES,
    CHOICE_FILE,
    GMM_FILE,
    MODEL_FILE,
    STANDARDIZER_FILE,
    LoadedEBM,
    batched_raw_scores,
    fit_gmm,
)
from l1ad.models.sidecar import write_meta

logger = logging.getLogger(__name__)
CHECKPOINT_FILE = "checkpoint.pt"


def _progress(iterable: Any, desc: str, total: int) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return iterable
    return tqdm(iterable, desc=desc, total=total, leave=False, disable=not logger.isEnabledFor(logging.INFO))


def train_model(
    name: str,
    background: str | Path,
    out: str | Path,
    config: str | Path | dict | EBMConfig | None = None,
    seed: int = 0,
    epochs: int | None = None,
    resume: bool = False,
    max_events: int | None = None,
) -> Path:
    """Train ``name`` ("ebm" | "ebm_hlt" | "score") on the background file; return ``out/<name>-float``."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown EBM model {name!r}; expected one of {MODEL_NAMES}")
    cfg = load_config(config).for_model(name)
    if epochs is not None:
        cfg = cfg.replace(epochs=epochs)
    model_dir = registry.model_dir(out, name, "float")
    model_dir.mkdir(parents=True, exist_ok=True)

    particles = read_events(background, stop=max_events)
    if len(particles) < 2:
        raise ValueError(f"{background}: need at least 2 events, got {len(particles)}")
    train_idx, val_idx = validation_split(len(particles), cfg.val_fraction, cfg.max_val_events)
    standardizer = Standardizer.fit(particles[train_idx], cfg.inputs)
    x_np, m_np = standardizer.transform_with_mask(particles)
    x_all, m_all = torch.from_numpy(x_np), torch.from_numpy(m_np.astype(np.float32))
    x_tr, m_tr, x_va, m_va = x_all[train_idx], m_all[train_idx], x_all[val_idx], m_all[val_idx]
    sigmas = sigmas_for(cfg)

    prev_det, prev_threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    try:
        net, history, best_epoch, train_time = _fit(
            name, cfg, seed, x_tr, m_tr, x_va, m_va, sigmas, model_dir, resume
        )
        loaded = LoadedEBM(name, net.eval(), cfg, standardizer)
        val_scores = batched_raw_scores(loaded, particles[val_idx[: cfg.gmm_max_events]])
        gmm = fit_gmm(val_scores["features"], cfg.gmm_components, seed)
        n_cal = len(val_scores["energy"])
        pattern = pattern_density.fit(
            val_scores["energy"], x_va[:n_cal].double().numpy(), m_va[:n_cal].numpy().astype(bool)
        )
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)

    metrics = {
        "best_epoch": best_epoch,
        "best_val_dsm": history[best_epoch - 1]["val_dsm"] if history and best_epoch > 0 else None,
        "epochs_run": len(history),
        "train_seconds": train_time,
        "seconds_per_epoch": train_time / max(len(history), 1),
        "n_parameters": count_parameters(net),
        "history": history,
        "val_energy_quantiles": {
            q: float(np.quantile(val_scores["energy"], float(q))) for q in ("0.0", "0.5", "0.99", "1.0")
        },
    }
    meta = {
        "model": name,
        "quantization": "float",
        "framework": "torch",
        "config": cfg.to_dict(),
        "seed": seed,
        "data": str(background),
        "data_sha256": data_hash(particles),
        "n_train": len(train_idx),
        "n_val": len(val_idx),
        "sigmas": [float(s) for s in sigmas],
        "scores": list(ALL_SCORES),
        "metrics": metrics,
        "versions": tool_versions(TORCH_TOOLS),
    }
    atomic_write_bytes(model_dir / MODEL_FILE, torch_bytes(net.state_dict()))
    standardizer.save(model_dir / STANDARDIZER_FILE)
    atomic_write_bytes(model_dir / GMM_FILE, pickle.dumps(gmm))
    pattern_density.save(pattern, model_dir / pattern_density.PATTERN_FILE)
    (model_dir / CHOICE_FILE).unlink(missing_ok=True)  # a choice made for the previous weights
    write_meta(model_dir, meta)
    logger.info("wrote %s (best epoch %d, val DSM %s)", model_dir, best_epoch, metrics["best_val_dsm"])
    return model_dir


def _resumable(config: dict[str, Any]) -> dict[str, Any]:
    """Config keys that must match to resume (more ``epochs`` / another ``patience`` may be asked)."""
    return {k: v for k, v in config.items() if k not in ("epochs", "patience")}


def _fit(
    name: str,
    cfg: EBMConfig,
    seed: int,
    x_tr: torch.Tensor,
    m_tr: torch.Tensor,
    x_va: torch.Tensor,
    m_va: torch.Tensor,
    sigmas: np.ndarray,
    model_dir: Path,
    resume: bool,
) -> tuple[torch.nn.Module, list[dict[str, float]], int, float]:
    """The epoch loop with checkpoints, resume and early stopping; returns the best network."""
    torch.manual_seed(seed)
    net = build_network(name, cfg)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(seed)
    history: list[dict[str, float]] = []
    best_state = {k: v.clone() for k, v in net.state_dict().items()}
    best_val, best_epoch, stale, start_epoch, train_time = float("inf"), 0, 0, 0, 0.0
    ckpt_path = model_dir / CHECKPOINT_FILE
    if resume and ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if (
            ckpt["name"] != name
            or _resumable(ckpt["config"]) != _resumable(cfg.to_dict())
            or ckpt["seed"] != seed
        ):
            raise ValueError(f"{ckpt_path}: checkpoint was written with another model/config/seed")
        net.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        gen.set_state(ckpt["generator"])
        history, best_state, best_val = ckpt["history"], ckpt["best_state"], ckpt["best_val"]
        best_epoch, stale, start_epoch, train_time = (
            ckpt["best_epoch"],
            ckpt["stale"],
            ckpt["epoch"],
            ckpt["time"],
        )
        logger.info("resuming %s from epoch %d", name, start_epoch)
    n = x_tr.shape[0]
    n_batches = (n + cfg.batch_size - 1) // cfg.batch_size
    for epoch in range(start_epoch, cfg.epochs):
        if stale >= cfg.patience:
            break
        t0 = time.perf_counter()
        net.train()
        perm = torch.randperm(n, generator=gen)
        sums: dict[str, float] = {}
        for b in _progress(range(n_batches), f"{name} epoch {epoch + 1}/{cfg.epochs}", n_batches):
            idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            loss, parts = training_loss(net, x_tr[idx], m_tr[idx], sigmas, cfg, gen)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            optimizer.step()
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
        net.eval()
        val = validation_loss(net, x_va, m_va, sigmas, seed + 1)
        train_time += time.perf_counter() - t0
        row = {f"train_{k}": v / n_batches for k, v in sums.items()} | {"epoch": epoch + 1, "val_dsm": val}
        history.append(row)
        if val < best_val:
            best_val, best_epoch, stale = val, epoch + 1, 0
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
        logger.info(
            "%s epoch %d/%d: train %.4f val DSM %.4f (%.1fs)%s",
            name,
            epoch + 1,
            cfg.epochs,
            row.get("train_total", float("nan")),
            val,
            time.perf_counter() - t0,
            "" if stale == 0 else f" (no improvement {stale}/{cfg.patience})",
        )
        ckpt = {
            "name": name,
            "config": cfg.to_dict(),
            "seed": seed,
            "epoch": epoch + 1,
            "model": net.state_dict(),
            "optimizer": optimizer.state_dict(),
            "generator": gen.get_state(),
            "history": history,
            "best_state": best_state,
            "best_val": best_val,
            "best_epoch": best_epoch,
            "stale": stale,
            "time": train_time,
        }
        atomic_write_bytes(ckpt_path, torch_bytes(ckpt))
    net.load_state_dict(best_state)
    return net, history, best_epoch, train_time
