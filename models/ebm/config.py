"""Configuration of the full-precision energy-based model (EBM) and its score-network ablation.

:class:`EBMConfig` is a frozen dataclass with practical defaults (a few minutes of training on
~200k-1M events on 2 CPU cores). :func:`load_config` accepts ``None`` (defaults), a mapping, or a
YAML/JSON file; unknown keys raise ``ValueError`` (HGQ2-style strict configs).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from l1ad.events.representations import REPRESENTATIONS

#: Model names accepted by training and scoring: the energy network (score = -grad E) on the 57 L1
#: inputs, the same energy network on the 64-feature HLT vector, and the direct score network (ablation).
MODEL_NAMES = ("ebm", "ebm_hlt", "score")
#: each model's input representation (:mod:`l1ad.events.representations`) when its config names none
DEFAULT_INPUTS = {"ebm": "l1", "ebm_hlt": "hlt", "score": "l1"}


@dataclass(frozen=True)
class EBMConfig:
    """Hyper-parameters of network, noise schedule, loss, training and scoring."""

    # --- inputs: a representation of l1ad.events.representations (None: the model's DEFAULT_INPUTS)
    inputs: str | None = None
    # --- network
    hidden: int = 256  # trunk width (256 default; 64 is the small variant)
    n_blocks: int = 3  # residual SiLU blocks hidden -> hidden
    n_frequencies: int = 16  # sinusoidal features of log(sigma) in the noise embedding
    # --- noise schedule (standardized input units)
    n_levels: int = 10
    sigma_min: float = 0.01
    sigma_max: float = 1.0
    # --- loss: L = L_DSM + lambda_ms * L_multiscale + lambda_l2 * ||theta||^2
    lambda_ms: float = 0.5
    lambda_l2: float = 1e-6
    level_weights: tuple[float, ...] | None = None  # w_l of the multi-scale term; None = uniform
    ms_batch: int = 32  # events of each batch evaluated at *all* levels for the multi-scale term
    # --- optimisation
    batch_size: int = 1024
    lr: float = 2e-3
    epochs: int = 4
    patience: int = 2  # early stopping: epochs without improvement of the validation DSM loss
    grad_clip: float = 10.0
    val_fraction: float = 0.1
    max_val_events: int = 20_000
    threads: int | None = (
        1  # torch.set_num_threads while training (None: leave as is); 1 = reproducible anywhere
    )
    # --- scoring
    score_norm_levels: int = 2  # score_norm = mean over the lowest levels of sigma_l * ||s||
    gmm_components: int = 4
    gmm_max_events: int = 50_000  # background events used to fit the GMM (validation split)
    energy_quadrature: int = 8  # score network only: Gauss-Legendre points of the path-integral energy
    score_batch: int = 4096

    def __post_init__(self) -> None:
        if self.inputs is not None and self.inputs not in REPRESENTATIONS:
            raise ValueError(
                f"EBMConfig.inputs must be one of {REPRESENTATIONS} or null, got {self.inputs!r}"
            )
        positive_ints = ("hidden", "n_levels", "ms_batch", "batch_size", "epochs", "score_norm_levels")
        for name in positive_ints + ("gmm_components", "energy_quadrature", "score_batch", "n_frequencies"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"EBMConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.n_blocks < 0 or self.patience < 1:
            raise ValueError("EBMConfig.n_blocks must be >= 0 and patience >= 1")
        if not (0 < self.sigma_min < self.sigma_max) or not math.isfinite(self.sigma_max):
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")
        if self.n_levels < 2:
            raise ValueError("EBMConfig.n_levels must be >= 2 (a geometric schedule)")
        if self.level_weights is not None:
            if len(self.level_weights) != self.n_levels or min(self.level_weights) < 0:
                raise ValueError(f"level_weights needs {self.n_levels} non-negative values")
            if sum(self.level_weights) <= 0:
                raise ValueError("level_weights must not all be zero")
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.score_norm_levels > self.n_levels:
            raise ValueError("score_norm_levels must be <= n_levels")
        if min(self.lambda_ms, self.lambda_l2, self.lr, self.grad_clip) < 0:
            raise ValueError("lambda_ms, lambda_l2, lr and grad_clip must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d["level_weights"] is not None:
            d["level_weights"] = list(d["level_weights"])
        return d

    def replace(self, **changes: Any) -> EBMConfig:
        return from_dict({**self.to_dict(), **changes})

    def for_model(self, name: str) -> EBMConfig:
        """This config with ``inputs`` resolved to ``name``'s default where it names none."""
        if name not in MODEL_NAMES:
            raise ValueError(f"unknown EBM model {name!r}; expected one of {MODEL_NAMES}")
        return self if self.inputs is not None else self.replace(inputs=DEFAULT_INPUTS[name])


_TYPES: dict[str, type] = {f.name: f.type for f in fields(EBMConfig)}  # type: ignore[misc]


def _coerce(name: str, value: Any) -> Any:
    kind = str(_TYPES[name])
    if value is None:
        if "None" not in kind:
            raise ValueError(f"EBMConfig.{name} may not be null")
        return None
    if name == "level_weights":
        return tuple(float(v) for v in value)
    if kind.startswith("int"):
        if isinstance(value, bool) or float(value) != int(value):
            raise ValueError(f"EBMConfig.{name} must be an integer, got {value!r}")
        return int(value)
    if kind.startswith("float"):
        if isinstance(value, bool):
            raise ValueError(f"EBMConfig.{name} must be a number, got {value!r}")
        return float(value)
    return value


def from_dict(d: Mapping[str, Any]) -> EBMConfig:
    """Build a config from a mapping; unknown keys raise ``ValueError``."""
    unknown = sorted(set(d) - set(_TYPES))
    if unknown:
        raise ValueError(f"unknown EBM config key(s): {', '.join(unknown)}; known: {', '.join(_TYPES)}")
    return EBMConfig(**{k: _coerce(k, v) for k, v in d.items()})


def load_config(config: str | Path | Mapping[str, Any] | EBMConfig | None = None) -> EBMConfig:
    """Defaults (``None``), a mapping, an :class:`EBMConfig`, or a YAML/JSON file path."""
    if config is None:
        return EBMConfig()
    if isinstance(config, EBMConfig):
        return config
    if isinstance(config, Mapping):
        return from_dict(config)
    import yaml

    data = yaml.safe_load(Path(config).read_text())  # YAML is a superset of JSON
    if data is None:
        return EBMConfig()
    if not isinstance(data, Mapping):
        raise ValueError(f"{config}: an EBM config file must hold a mapping")
    return from_dict(data)
