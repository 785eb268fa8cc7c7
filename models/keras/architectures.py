"""The four Keras L1 models (and two float references), written once against :class:`l1ad.models.keras.layers.Style`.

Each builder returns a :class:`Built`: the model to train (compiled by the trainer with ``loss``), the
*deployed* model whose output firmware computes, and for the VAE an auxiliary model giving
``[mu, logvar]`` for the offline KL score. All models take the (N, 57) hardware-encoded inputs
(:func:`l1ad.events.encoding.encode`).

* ``ae_ref``: 57-32-16-8-16-32-57 ReLU autoencoder (ADC2021). Deployed output: the reconstruction;
  the masked MSE score is computed in numpy (:func:`l1ad.models.keras.score.ae_ref_score`).
* ``ae_compact``: 57-16-4-16-57 with the pT reconstruction error ``sum_slots (pT - pT_r)**2`` inside
  the model (subtract, square, fixed 0/1-weight sum, :data:`l1ad.models.keras.layers.PT_ERROR_WEIGHTS`): measured
  here, a pT-only error separates A->4l far better (AUROC 0.90 vs 0.74 with eta/phi errors weighted
  in, IsolationForest 0.81), because angles are nearly unpredictable for an autoencoder. Sizing: ~2k multiplications before HGQ pruning, the size the CMS AXOL1TL v1 encoder
  used; HGQ's EBOPs regularizer (EBOPs ~ LUTs for multiplier-free DA) drives it under the 2 %
  VU13P budget (~35k LUTs), one 57-input adder tree keeps the latency in a few 40 MHz-cycles.
  Trained on its own score output (loss = mean score).
* ``vae``: encoder 57-32-16-(mu, logvar) and mirrored decoder; loss masked MSE + ``kl_weight`` * KL.
  Deployed: the encoder's ``sum(mu**2)``.
* ``student``: 57-16-8-1 regressing ``log(teacher score)`` (CICADA-like); its output is the score.
* ``ae_ref_log``, ``ae_ref_hlt``: the ``ae_ref`` architecture as full-precision references (float style
  only, no firmware) on a standardized representation (:mod:`l1ad.models.keras.model_inputs`): pT as
  ``log(1 + pT)`` (57 inputs), or the 64-feature HLT vector.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from l1ad.events import schema
from l1ad.models.keras.configs import representation_of
from l1ad.models.keras.layers import PT_ERROR_WEIGHTS, KLDivergence, Sampling, masked_mse, score_mean
from l1ad.models.keras.model_inputs import n_inputs
from l1ad.quantization.score_path import LATENT_SQ_TYPE
from l1ad.quantization.styles import Style

#: What the numpy side does with each model's deployed output.
POSTPROCESSING = {
    "ae_ref": "deployed output = reconstruction (N, 57); score = masked MSE in numpy "
    "(l1ad.models.keras.score.ae_ref_score, mask from the object valid bits)",
    "ae_compact": "deployed output = score (N, 1) = sum over slots of (pT - reconstructed pT)**2; numpy only flattens",
    "vae": "deployed output = score (N, 1) = sum(mu**2); numpy only flattens (offline: KL from aux.keras)",
    "student": "deployed output = score (N, 1) = predicted log(teacher score); numpy only flattens",
    "ae_ref_log": "float reference; output = reconstruction of the standardized log-pT inputs; score = masked "
    "MSE over live inputs in numpy (l1ad.models.keras.score.ae_ref_score)",
    "ae_ref_hlt": "float reference; output = reconstruction of the standardized HLT vector; score = masked "
    "MSE over live inputs in numpy (l1ad.models.keras.score.ae_ref_score)",
}


@dataclass
class Built:
    train: keras.Model
    deployed: keras.Model
    loss: Callable | str
    aux: keras.Model | None = None


def _input(n: int = schema.N_INPUTS) -> Any:
    return keras.Input(shape=(n,), name="inputs")


def _encoder(style: Style, x: Any, hidden: tuple[int, ...], batchnorm: bool = False) -> Any:
    for j, units in enumerate(hidden):
        x = style.dense(x, units, name=f"enc{j}", batchnorm=batchnorm)
    return x


def _decoder(
    style: Style, z: Any, hidden: tuple[int, ...], batchnorm: bool = False, n_out: int = schema.N_INPUTS
) -> Any:
    for j, units in enumerate(reversed(hidden)):
        z = style.dense(z, units, name=f"dec{j}", batchnorm=batchnorm)
    return style.output_dense(z, n_out, name="reconstruction")


def build_ae_ref(style: Style, cfg: Any, seed: int = 0) -> Built:
    """The ADC2021 reference AE; on the hardware inputs, or on a float reference's representation."""
    n = n_inputs(representation_of(cfg))
    inp = _input(n)
    x = style.input(inp)
    z = style.dense(_encoder(style, x, cfg.hidden, cfg.batchnorm), cfg.latent, name="latent",
                    batchnorm=cfg.batchnorm)  # fmt: skip
    r = _decoder(style, z, cfg.hidden, cfg.batchnorm, n)
    model = keras.Model(inp, r, name="ae_ref")
    return Built(model, model, masked_mse)


def build_ae_compact(style: Style, cfg: Any, seed: int = 0) -> Built:
    inp = _input()
    x = style.input(inp)
    z = style.dense(_encoder(style, x, cfg.hidden), cfg.latent, name="latent")
    r = _decoder(style, z, cfg.hidden)
    score = style.sq_err_sum(x, r, name="score", weights=PT_ERROR_WEIGHTS)
    model = keras.Model(inp, score, name="ae_compact")
    return Built(model, model, score_mean)


def build_vae(style: Style, cfg: Any, seed: int = 0) -> Built:
    inp = _input()
    x = style.input(inp)
    h = _encoder(style, x, cfg.hidden)
    mu = style.output_dense(h, cfg.latent, name="mu")
    logvar = style.dense(h, cfg.latent, name="logvar", relu=False)
    mu_kl, logvar_kl = KLDivergence(cfg.kl_weight, name="kl")([mu, logvar])
    z = Sampling(seed=seed, name="sampling")([mu_kl, logvar_kl])
    r = _decoder(style, z, cfg.hidden)
    return from_train("vae", keras.Model(inp, r, name="vae"), style)


def build_student(style: Style, cfg: Any, seed: int = 0) -> Built:
    inp = _input()
    x = _encoder(style, style.input(inp), cfg.hidden)
    out = style.dense(x, 1, name="score", relu=False)
    model = keras.Model(inp, out, name="student")
    return Built(model, model, "mse")


def from_train(name: str, train: keras.Model, style: Style) -> Built:
    """The :class:`Built` of a (possibly reloaded) training model: adds the VAE's deployed/aux heads."""
    if name != "vae":
        return Built(train, train, LOSSES[name])
    inp = train.inputs[0]
    mu, logvar = train.get_layer("mu").output, train.get_layer("logvar").output
    deployed = keras.Model(inp, style.sq_sum(mu, name="score", sq_type=LATENT_SQ_TYPE), name="vae_encoder")
    aux = keras.Model(inp, [mu, logvar], name="vae_mu_logvar")
    return Built(train, deployed, masked_mse, aux)


LOSSES: dict[str, Callable | str] = {"ae_ref": masked_mse, "ae_compact": score_mean, "vae": masked_mse,
                                      "student": "mse", "ae_ref_log": masked_mse, "ae_ref_hlt": masked_mse}  # fmt: skip

BUILDERS: dict[str, Callable[[Style, Any, int], Built]] = {
    "ae_ref": build_ae_ref,
    "ae_compact": build_ae_compact,
    "vae": build_vae,
    "student": build_student,
    "ae_ref_log": build_ae_ref,
    "ae_ref_hlt": build_ae_ref,
}


def build(name: str, quantization: str, cfg: Any, seed: int = 0) -> Built:
    """Build model ``name`` in style ``quantization`` (see :func:`l1ad.quantization.styles.get_style`)."""
    from l1ad.quantization.styles import get_style

    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {tuple(BUILDERS)}")
    return BUILDERS[name](get_style(quantization, cfg), cfg, seed)
