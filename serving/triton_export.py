"""Export a run's full-precision energy models as a Triton model repository (``l1ad export triton``).

One Triton model per (trained torch model, score), taking RAW events (:mod:`l1ad.serving.raw_scoring`),
so that a Triton client sends exactly what it sends to the l1ad service and gets the same score::

    REPO/<name>/config.pbtxt         platform "pytorch_libtorch" (:mod:`l1ad.serving.triton_config`)
    REPO/<name>/1/model.pt           TorchScript: torch.jit.script(RawEventScore)
    REPO/<name>/metadata.json        model hash, score label, l1ad version, input encoding, checks
    REPO/<name>-onnx/...             platform "onnxruntime_onnx", 1/model.onnx (scores without grad_x E)
    REPO/README.md, REPO/export.json the input layout and the export summary

``<name>`` is the model directory name (``ebm-float``) for the primary score (``energy``) and
``<dir>-<score>`` (``ebm-float-score_norm``) for the others. A score built on ``grad_x E``
(``ebm``'s ``score_norm``) is exported as TorchScript only, with ``INFERENCE_MODE`` false; the
IsolationForest (sklearn) and the Keras L1 firmware models are skipped with the reason.

Every model is checked before its directory is swapped in: the written TorchScript file, loaded back
and run as Triton's PyTorch backend runs it (:func:`triton_backend_mode`: graph optimization off,
``InferenceMode`` unless the config turns it off, ``NoGradGuard``; twice, and one event at a time),
must give the registry's scores bitwise (``multiscale_gmm``: within ``GMM_RTOL``/``GMM_ATOL``, see
:mod:`l1ad.serving.raw_scoring`); the ONNX file, run with onnxruntime, must agree with the eager module
within :mod:`l1ad.serving.onnx_export`'s tolerance, and its flags at every threshold of the run's rate
table must agree with the eager ones (events within the tolerance of a threshold are counted, not
required to agree). A failed check raises and leaves no new directory. Each trained model is loaded
once for all its scores, not once per score: the registry's :class:`~l1ad.models.registry.LoadedModel`
gives the reference scores, one :class:`~l1ad.models.ebm.scores.LoadedEBM` the exported modules.
Other model directories already in ``REPO`` are left alone (several runs can share one repository).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from l1ad.core.files import atomic_write_text, replace_dir, sha256_file, staging_dir
from l1ad.core.versions import l1ad_version, tool_versions
from l1ad.events import schema
from l1ad.models import registry
from l1ad.models.ebm.scores import GMM_FILE, SCORE_NAMES, LoadedEBM, load_model
from l1ad.serving import onnx_export
from l1ad.serving import triton_config as tc
from l1ad.serving.raw_scoring import GMM_ATOL, GMM_RTOL, RawEventScore, needs_gradient
from l1ad.serving.thresholds import from_evaluation

logger = logging.getLogger(__name__)

N_CHECK_EVENTS = 1024
TOOLS = ("torch", "onnx", "onnxruntime", "onnxscript", "numpy", "scikit-learn")
Selection = list[tuple[registry.TrainedModel, tuple[str, ...]]]


def _skip_reason(trained: registry.TrainedModel) -> str:
    if trained.framework == "sklearn":
        has = importlib.util.find_spec("skl2onnx") is not None
        note = "skl2onnx is installed but not supported here" if has else "skl2onnx is not installed"
        return f"an sklearn IsolationForest has no TorchScript form ({note}); serve it with `l1ad serve`"
    if trained.framework == "keras":
        return "a Keras L1 firmware model (deployed as hls4ml firmware), not an HLT full-precision model"
    if trained.framework == "torch":
        return (f"its inputs ({_representation(trained)!r}) are computed in numpy, not in the exported "
                "module; serve it with `l1ad serve`")  # fmt: skip
    return f"framework {trained.framework!r} is not exported"


def _representation(trained: registry.TrainedModel) -> str:
    """The input representation of a torch model (read from its standardizer, the model is not loaded)."""
    from l1ad.events.encoding import Standardizer
    from l1ad.models.ebm.scores import STANDARDIZER_FILE

    return Standardizer.load(trained.path / STANDARDIZER_FILE).representation


def select(run_dir: Path, names: list[str] | None) -> tuple[Selection, list[dict[str, str]]]:
    """``([(torch model, score names)], [skipped {model, reason}])`` for the ``--model`` names.

    A name is a label (``ebm/float``), a directory name (``ebm-float``) or one score of it
    (``ebm/float:score_norm``); without names, every model of the run.
    """
    if names:
        wanted = []
        for name in names:
            label, _, score = name.partition(":")
            if score and score not in SCORE_NAMES:
                raise ValueError(f"--model {name}: unknown score {score!r}; choose from {SCORE_NAMES}")
            wanted.append((registry.find(run_dir, label), (score,) if score else SCORE_NAMES))
    else:
        found = registry.discover(run_dir)
        if not found:
            raise FileNotFoundError(f"{run_dir}: no trained models (no */meta.json)")
        wanted = [(m, SCORE_NAMES) for m in found]
    chosen: Selection = []
    skipped: list[dict[str, str]] = []
    for trained, scores in wanted:
        if trained.framework == "torch" and _representation(trained) == "l1":
            chosen.append((trained, scores))
        else:
            skipped.append({"model": trained.label, "reason": _skip_reason(trained)})
            logger.warning("skipping %s: %s", trained.label, skipped[-1]["reason"])
    if not chosen:
        why = "; ".join(f"{s['model']}: {s['reason']}" for s in skipped)
        raise ValueError(f"{run_dir}: no full-precision torch model (ebm, score) to export ({why})")
    return chosen, skipped


def check_events(path: str | Path | None, n: int = N_CHECK_EVENTS) -> tuple[np.ndarray, str]:
    """``(particles, description)``: the first ``n`` events of ``path``, or seeded toy events."""
    if path is None:
        from l1ad.models.ebm.toydata import toy_events

        return toy_events(n, seed=0), f"toy_events({n}, seed=0)"
    from l1ad.events.sources import open_source

    return open_source(path).read(0, n), f"{path} (first {n} events)"


@contextmanager
def triton_backend_mode(inference_mode: bool) -> Iterator[None]:
    """The modes Triton's PyTorch backend sets around ``forward`` (``ModelInstanceState::Execute``):
    graph optimization as ``DISABLE_OPTIMIZED_EXECUTION`` says (off here), ``torch::InferenceMode``
    as ``INFERENCE_MODE`` says (on by default, off for the scores built on ``grad_x E``), then a
    ``NoGradGuard``."""
    with torch.jit.optimized_execution(False), torch.inference_mode(inference_mode), torch.no_grad():
        yield


def verify_torchscript(
    path: Path, kin: torch.Tensor, ref: np.ndarray, gmm: bool, gradient: bool
) -> dict[str, Any]:
    """Run the written file as Triton does (:func:`triton_backend_mode`; ``INFERENCE_MODE`` off when
    the score needs ``gradient``); compare with the registry's scores ``ref`` (raises if off)."""
    module = torch.jit.load(str(path))
    with triton_backend_mode(inference_mode=not gradient):
        runs = [module(kin).numpy()[:, 0] for _ in range(2)]  # the 2nd call runs after profiling
        singles = np.concatenate([module(kin[i : i + 1]).numpy()[:, 0] for i in range(min(4, len(kin)))])
    got = np.concatenate(runs + [singles])
    want = np.concatenate([ref, ref, ref[: len(singles)]])
    diff = float(np.max(np.abs(got - want))) if got.size else 0.0
    exact = bool(np.array_equal(got, want))
    if not (exact or (gmm and np.allclose(got, want, rtol=GMM_RTOL, atol=GMM_ATOL))):
        raise RuntimeError(f"{path}: TorchScript scores differ from the registry's (max abs diff {diff:.3g})")
    return {"n_events": int(len(ref)), "max_abs_diff": diff, "bitwise_equal": exact,
            "batch_of_1_events": int(len(singles)), "inference_mode": not gradient,
            "no_grad": True, "optimized_execution": False}  # fmt: skip


def _write_model_dir(out: Path, name: str, build: Callable[[Path], dict[str, Any]], config: str) -> dict:
    """Build ``out/name`` in a staging directory and swap it in; ``build(tmp) -> metadata`` writes
    and checks the model file (an exception leaves ``out/name`` as it was)."""
    tmp = staging_dir(out / name)
    try:
        (tmp / tc.VERSION).mkdir()
        meta = build(tmp)
        (tmp / "config.pbtxt").write_text(config)
        (tmp / "metadata.json").write_text(json.dumps(meta, indent=1) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, out / name)
    return meta


class ScoreExport:
    """One score of one trained model: its Triton names, the registry's scores, shared metadata.

    ``loaded`` (the registry's model: reference scores, hash, labels) and ``ebm`` (the same model
    directory as a :class:`LoadedEBM`, which the exported modules are built from) are loaded once
    per model by the caller and shared by all its scores.
    """

    def __init__(self, loaded: registry.LoadedModel, ebm: LoadedEBM, score: str, particles: np.ndarray,
                 events_desc: str, max_batch_size: int, max_queue_delay_us: int) -> None:  # fmt: skip
        trained = loaded.trained
        self.ebm = ebm
        self.score = score
        self.label = dict(zip(ebm.score_names, loaded.score_labels, strict=True))[score]
        self.name = tc.triton_name(trained.path.name, score, SCORE_NAMES[0])
        self.gradient = needs_gradient(trained.model, score)
        self.kin = torch.from_numpy(schema.kinematics(particles))
        self.ref = loaded.score(particles, (self.label,))[self.label]
        self.events_desc = events_desc
        self.thresholds = from_evaluation(trained.path.parent, self.label)
        self.batching = (max_batch_size, max_queue_delay_us)
        self.tags = {"l1ad_model_hash": loaded.hash, "l1ad_score_label": self.label,
                     "l1ad_version": l1ad_version(), "l1ad_input_encoding": tc.INPUT_ENCODING,
                     "l1ad_needs_input_gradient": str(self.gradient).lower()}  # fmt: skip
        self.comment = f"l1ad {self.label} (model sha256 {loaded.hash})\ninput INPUT__0: {tc.INPUT_ENCODING}"
        self.base = {
            "l1ad_version": l1ad_version(), "model_label": trained.label, "model_dir": str(trained.path),
            "model_hash": loaded.hash, "score": score, "score_label": self.label,
            "needs_input_gradient": self.gradient, "max_batch_size": max_batch_size,
            "max_queue_delay_us": max_queue_delay_us,
            "input": {"name": tc.INPUT_NAME, "datatype": "FP32", "shape": [-1, schema.N_INPUTS],
                      "encoding": tc.INPUT_ENCODING, "features": schema.flat_feature_names()},
            "output": {"name": tc.OUTPUT_NAME, "datatype": "FP64", "shape": [-1, 1],
                       "meaning": f"anomaly score {self.label}, higher = more anomalous (as l1ad serve)"},
            "thresholds": self.thresholds.to_dict(),
            "tools": tool_versions(TOOLS),
        }  # fmt: skip

    def _config(self, name: str, platform: str, params: dict[str, str]) -> str:
        return tc.config_pbtxt(name, platform, *self.batching, {**params, **self.tags}, self.comment)

    def torchscript(self, out: Path, onnx_note: str) -> dict[str, Any]:
        """Write and check ``out/<name>`` (TorchScript); its summary row."""
        params = tc.backend_parameters(tc.TORCHSCRIPT_PLATFORM, self.gradient)
        t0 = time.perf_counter()

        def build(tmp: Path) -> dict[str, Any]:
            path = tmp / tc.VERSION / "model.pt"
            torch.jit.save(torch.jit.script(RawEventScore(self.ebm, self.score).eval()), str(path))
            check = verify_torchscript(
                path, self.kin, self.ref, self.score == "multiscale_gmm", self.gradient
            )
            return {**self.base, "triton_model": self.name, "platform": tc.TORCHSCRIPT_PLATFORM,
                    "file": f"{tc.VERSION}/model.pt", "file_sha256": sha256_file(path),
                    "exporter": "torch.jit.script", "backend_parameters": params, "onnx": onnx_note,
                    "check": {"events": self.events_desc, "torchscript_vs_registry": check},
                    "export_seconds": round(time.perf_counter() - t0, 3)}  # fmt: skip

        config = self._config(self.name, tc.TORCHSCRIPT_PLATFORM, params)
        meta = _write_model_dir(out, self.name, build, config)
        if self.gradient:
            logger.info("%s: %s is built on grad_x E: TorchScript only, INFERENCE_MODE false, no ONNX",
                        self.name, self.label)  # fmt: skip
        return _row(meta, meta["check"]["torchscript_vs_registry"])

    def onnx(self, out: Path) -> dict[str, Any]:
        """Write and check ``out/<name>-onnx``; its summary row."""
        name = f"{self.name}-onnx"
        t0 = time.perf_counter()
        reference = RawEventScore(self.ebm, self.score).eval()
        with torch.inference_mode():  # as the TorchScript model runs in Triton (no grad_x E here)
            eager = reference(self.kin).numpy()
        module = RawEventScore(self.ebm, self.score, pad_rows=0)  # no data-dependent branch in the graph

        def build(tmp: Path) -> dict[str, Any]:
            path = tmp / tc.VERSION / "model.onnx"
            seconds = onnx_export.export_onnx(module, path, self.kin[: min(32, len(self.kin))])
            got = onnx_export.run_onnx(path, self.kin.numpy())
            check = onnx_export.compare(got, eager, self.score, self.thresholds)
            if not check["within_tolerance"]:
                raise RuntimeError(f"{name}: ONNX scores differ from eager beyond the tolerance: {check}")
            return {**self.base, "triton_model": name, "platform": tc.ONNX_PLATFORM,
                    "file": f"{tc.VERSION}/model.onnx", "file_sha256": sha256_file(path),
                    "exporter": onnx_export.EXPORTER, "backend_parameters": {}, "onnx": f"variant of {self.name}",
                    "check": {"events": self.events_desc, "onnx_vs_eager": check},
                    "onnx_export_seconds": round(seconds, 3),
                    "export_seconds": round(time.perf_counter() - t0, 3)}  # fmt: skip

        meta = _write_model_dir(out, name, build, self._config(name, tc.ONNX_PLATFORM, {}))
        check = meta["check"]["onnx_vs_eager"]
        near = sum(r["near_threshold"] for r in check["flags"])
        logger.info("%s: ONNX vs eager max abs diff %.3g (%.2g of the tolerance), flags agree at %d "
                    "thresholds (%d events within the tolerance of one; %d events)", name,
                    check["max_abs_diff"], check["max_diff_over_tolerance"], len(check["flags"]), near,
                    check["n_events"])  # fmt: skip
        return _row(meta, check)


def _row(meta: dict[str, Any], check: dict[str, Any]) -> dict[str, Any]:
    keys = ("triton_model", "platform", "score_label", "needs_input_gradient", "onnx", "export_seconds")
    return {**{k: meta[k] for k in keys}, "check": check}


def export_score(exp: ScoreExport, out: Path, onnx: bool) -> list[dict[str, Any]]:
    """Export one score: TorchScript, and ONNX unless it needs ``grad_x E`` or ``onnx`` is False."""
    if exp.gradient:
        note = f"not exported: {exp.score} of the energy network is built on grad_x E (autograd); TorchScript only"
    else:
        note = f"{exp.name}-onnx" if onnx else "not exported (--no-onnx)"
    rows = [exp.torchscript(out, note)]
    if onnx and not exp.gradient:
        rows.append(exp.onnx(out))
    return rows


def export_repository(
    run_dir: str | Path,
    out: str | Path,
    models: list[str] | None = None,
    max_batch_size: int = 4096,
    max_queue_delay_us: int = 500,
    onnx: bool = True,
    events: str | Path | None = None,
) -> dict[str, Any]:
    """Export the run's torch models (every score) into Triton repository ``out``; the summary.

    ``events``: an event file whose first :data:`N_CHECK_EVENTS` events check the exports
    (default: seeded toy events). The summary is also written to ``out/export.json``.
    """
    if max_batch_size < 1:
        raise ValueError(f"--max-batch-size must be >= 1, got {max_batch_size}")
    if max_queue_delay_us < 0:
        raise ValueError(f"--max-queue-delay-us must be >= 0, got {max_queue_delay_us}")
    run_dir, out = Path(run_dir), Path(out)
    t0 = time.perf_counter()
    chosen, skipped = select(run_dir, models)
    particles, events_desc = check_events(events)
    rows: list[dict[str, Any]] = []
    for trained, scores in chosen:
        loaded = registry.load(trained)
        ebm = load_model(trained.path)  # once per model, shared by all its scores
        try:
            for score in scores:
                if score == "multiscale_gmm" and not (trained.path / GMM_FILE).is_file():
                    skipped.append(
                        {"model": f"{trained.label}:{score}", "reason": f"no fitted GMM ({GMM_FILE})"}
                    )
                    logger.warning("skipping %s:%s: no %s", trained.label, score, GMM_FILE)
                    continue
                exp = ScoreExport(
                    loaded, ebm, score, particles, events_desc, max_batch_size, max_queue_delay_us
                )
                rows += export_score(exp, out, onnx)
        finally:
            loaded.close()
    summary = {"repository": str(out), "run_dir": str(run_dir), "l1ad_version": l1ad_version(),
               "input_encoding": tc.INPUT_ENCODING, "check_events": events_desc, "models": rows,
               "skipped": skipped, "seconds": round(time.perf_counter() - t0, 3)}  # fmt: skip
    atomic_write_text(out / "export.json", json.dumps(summary, indent=1) + "\n")
    atomic_write_text(out / "README.md", tc.readme(summary))
    return summary
