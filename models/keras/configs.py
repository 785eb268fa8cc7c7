"""Model configurations of the Keras L1 models: frozen dataclasses with defaults, loaded from YAML/dicts.

One dataclass per model name (:data:`MODEL_NAMES`); every field applies to every quantization style
(:data:`QUANTIZATIONS`) except the style-specific ones, which the other styles ignore:

* ``bits``, ``weight_integer``, ``act_integer``: QKeras style only. ``bits`` is the *total* width
  including the sign bit (the QKeras convention, see :meth:`FixedPoint.from_qkeras`).
* ``beta0``, ``beta_final``, ``beta_ramp_epochs``: HGQ style only. The EBOPs regularizer weight
  ``beta`` ramps log-linearly from ``beta0`` (epoch 0) to ``beta_final`` (epoch ``beta_ramp_epochs``)
  and stays there (HGQ2 ``PieceWiseSchedule``).

Unknown keys are rejected with a :class:`ValueError` naming them (as HGQ2 does).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

#: the Keras L1 models (every quantization style, hls4ml firmware)
MODEL_NAMES = ("ae_ref", "ae_compact", "vae", "student")
#: full-precision reference models (float style only, no firmware): their inputs are a representation of
#: :mod:`l1ad.events.representations`, standardized, instead of the hardware-encoded L1 inputs
FLOAT_ONLY = ("ae_ref_log", "ae_ref_hlt")
QUANTIZATIONS = ("hgq", "qkeras", "float")


@dataclass(frozen=True)
class _Common:
    """Training and quantization settings shared by all models."""

    epochs: int = 50
    batch_size: int = 1024
    learning_rate: float = 1e-3
    patience: int = 8
    validation_fraction: float = 0.2
    #: Eager execution (no graph tracing): faster for tiny smoke runs (tests), slower for real training.
    run_eagerly: bool = False
    # QKeras style
    bits: int = 8
    weight_integer: int = 0
    act_integer: int = 3
    # HGQ style
    beta0: float = 1e-7
    beta_final: float = 1e-5
    beta_ramp_epochs: int = 10

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class AERefConfig(_Common):
    """ADC2021 reference DNN autoencoder 57-32-16-8-16-32-57 (decoder mirrors the encoder)."""

    hidden: tuple[int, ...] = (32, 16)
    latent: int = 8
    batchnorm: bool = False


@dataclass(frozen=True)
class AECompactConfig(_Common):
    """Trigger-sized autoencoder 57-16-4-16-57 with the squared error summed inside the model."""

    hidden: tuple[int, ...] = (16,)
    latent: int = 4


@dataclass(frozen=True)
class VAEConfig(_Common):
    """VAE 57-32-16-(mu, logvar: 3)-16-32-57; ``kl_weight`` is the beta of the beta-VAE loss.

    The masked MSE is a *mean* over the present inputs (about 1/25 of the summed Gaussian log-likelihood
    of the ELBO), so beta = 1 weighs the KL about 25x too much: the posterior collapses onto the prior
    (every mean ~0, the deployed score sum(mu**2) near constant, AUROC 0.50 on every signal). The default
    is chosen on validation background by a rule declared in advance: the largest beta of
    {1, 0.1, 0.01, 0.001} whose posterior keeps every latent unit active (variance of mu over background
    > 0.01). Measured (float, 100k training events, 5 epochs, seed 1; 200k validation background):
    beta 1 -> var(mu) ~1e-4 per unit (0 active), 0.1 -> 2e-4 (0 active), 0.01 -> 0.82-0.86 (3 active).
    """

    hidden: tuple[int, ...] = (32, 16)
    latent: int = 3
    kl_weight: float = 0.01


@dataclass(frozen=True)
class StudentConfig(_Common):
    """CICADA-like student 57-16-8-1 regressing log(teacher score).

    ``beta_final`` 1e-4 is the Pareto rule's choice (``l1ad pareto``, README): within the firmware
    budgets, tail overlap with the teacher on validation background tied within one standard error with
    beta 1e-5, at fewer Yosys LUTs. Seed 1, 300k events, two scans on two machines: overlap 0.630 vs
    0.620 +- 0.034 at 8,888 vs 12,698 LUT; 0.565 vs 0.565 +- 0.035 at 9,252 vs 13,348 LUT.
    """

    hidden: tuple[int, ...] = (16, 8)
    beta_final: float = 1e-4


@dataclass(frozen=True)
class AERefLogConfig(AERefConfig):
    """The ADC2021 reference AE on full-precision inputs with pT as ``log(1 + pT / GeV)``, standardized
    over live inputs (the log-pT reference of the L1 models; float only)."""

    inputs: str = "l1_log"


@dataclass(frozen=True)
class AERefHLTConfig(AERefConfig):
    """The ADC2021 reference AE (64-32-16-8-16-32-64) on the standardized 64-feature HLT vector (float only)."""

    inputs: str = "hlt"


ModelConfig = AERefConfig | AECompactConfig | VAEConfig | StudentConfig | AERefLogConfig | AERefHLTConfig

CONFIG_CLASSES: dict[str, type] = {
    "ae_ref": AERefConfig,
    "ae_compact": AECompactConfig,
    "vae": VAEConfig,
    "student": StudentConfig,
    "ae_ref_log": AERefLogConfig,
    "ae_ref_hlt": AERefHLTConfig,
}


def representation_of(cfg: ModelConfig) -> str | None:
    """The input representation of a full-precision reference model, None for the hardware inputs."""
    return getattr(cfg, "inputs", None)


def check_name(name: str, quantization: str | None = None) -> None:
    """Raise a clear ValueError for an unknown model name or quantization style."""
    if name not in MODEL_NAMES + FLOAT_ONLY:
        raise ValueError(f"unknown model {name!r}; choose one of {MODEL_NAMES + FLOAT_ONLY}")
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}; choose one of {QUANTIZATIONS}")
    if quantization not in (None, "float") and name in FLOAT_ONLY:
        raise ValueError(f"{name} is a full-precision reference (float inputs, no firmware): quantization "
                         f"float only, not {quantization!r}")  # fmt: skip


def default_config(name: str) -> ModelConfig:
    check_name(name)
    return CONFIG_CLASSES[name]()


def load_config(name: str, source: str | Path | dict | None = None) -> ModelConfig:
    """The config of model ``name`` from a YAML file, a dict or ``None`` (defaults).

    A YAML file may hold the keys directly or under a top-level key equal to ``name``.
    """
    check_name(name)
    cls = CONFIG_CLASSES[name]
    if source is None:
        return cls()
    if isinstance(source, dict):
        data = dict(source)
        where = "config dict"
    else:
        data = yaml.safe_load(Path(source).read_text()) or {}
        where = str(source)
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected a mapping of config keys")
    if set(data) == {name} and isinstance(data[name], dict):
        data = dict(data[name])
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {unknown} for model {name!r}; known keys: {sorted(fields)}"
        )
    for key, value in list(data.items()):
        if isinstance(value, list):
            data[key] = tuple(int(v) for v in value)
    cfg = cls(**data)
    _validate(cfg, where)
    return cfg


def _validate(cfg: ModelConfig, where: str) -> None:
    if cfg.epochs < 0 or cfg.batch_size < 1 or cfg.patience < 1:
        raise ValueError(f"{where}: epochs >= 0, batch_size >= 1 and patience >= 1 are required")
    if not 0.0 < cfg.validation_fraction < 1.0:
        raise ValueError(f"{where}: validation_fraction must be in (0, 1)")
    if not 2 <= cfg.bits <= 16:
        raise ValueError(f"{where}: bits must be in [2, 16], got {cfg.bits}")
    if representation_of(cfg) is not None:
        from l1ad.events.representations import REPRESENTATIONS

        if representation_of(cfg) not in REPRESENTATIONS:
            raise ValueError(
                f"{where}: inputs must be one of {REPRESENTATIONS}, got {representation_of(cfg)!r}"
            )
    if any(h < 1 for h in cfg.hidden):
        raise ValueError(f"{where}: hidden layer sizes must be positive, got {cfg.hidden}")
