"""Bit-width scan: sensitivity versus precision of a QKeras-style model (the ADC2021 study).

For each total width ``bits`` (sign included), the model is trained in the QKeras style with
``quantized_bits(bits, 0)`` weights and ``quantized_relu(bits, min(3, bits - 1))`` activations, in its
own process (``l1ad train``), then scored on the test background and the signals; the float model is
the reference line. Results: ``scan.json``, ``scan.md`` and ``scan.png`` (AUROC and TPR at FPR 1e-5
per signal versus bits).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import yaml

from l1ad.core.files import atomic_write_text, save_figure
from l1ad.evaluation import metrics
from l1ad.events.io import read_events
from l1ad.models import registry

log = logging.getLogger(__name__)


def scan_config(bits: int) -> dict:
    return {"bits": int(bits), "weight_integer": 0, "act_integer": min(3, int(bits) - 1)}


def _train(
    model: str,
    quant: str,
    background: str,
    out: Path,
    seed: int,
    epochs: int | None,
    max_events: int | None,
    config: Path | None,
) -> Path:
    model_dir = registry.model_dir(out, model, quant)
    if (model_dir / registry.META_FILE).exists():
        log.info("reusing %s", model_dir)
    else:
        # a fresh process per model: QKeras-style and native HGQ2 layers never share one
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from l1ad.models.training import train

        kwargs = dict(
            background=background, out=out, config=config, seed=seed, epochs=epochs, max_events=max_events
        )
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            pool.submit(train, model, quant, **kwargs).result()
    return model_dir


def run_scan(
    model: str,
    bits: list[int],
    background: str,
    test: str,
    signals: dict[str, str],
    out: str | Path,
    seed: int = 0,
    epochs: int | None = None,
    max_events: int | None = None,
) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bkg = read_events(test)
    sig = {n: read_events(p) for n, p in signals.items()}
    events = np.concatenate([bkg, *sig.values()])
    edges = np.cumsum([0, len(bkg), *(len(s) for s in sig.values())])

    def evaluate(model_dir: Path) -> dict:
        s = registry.primary_score(model_dir, events)
        b = s[: edges[1]]
        return {n: metrics.signal_metrics(b, s[edges[i + 1] : edges[i + 2]]) for i, n in enumerate(sig)}

    result = {
        "model": model,
        "n_background": int(len(bkg)),
        "float": evaluate(_train(model, "float", background, out / "float", seed, epochs, max_events, None)),
        "bits": {},
    }
    for b in bits:
        d = out / f"bits{b}"
        d.mkdir(parents=True, exist_ok=True)
        cfg = d / "config.yaml"
        atomic_write_text(cfg, yaml.safe_dump(scan_config(b)))
        log.info("bit-width scan: %s with %d bits", model, b)
        result["bits"][str(b)] = evaluate(
            _train(model, "qkeras", background, d, seed, epochs, max_events, cfg)
        )
    atomic_write_text(out / "scan.json", json.dumps(result, indent=1))
    atomic_write_text(out / "scan.md", format_markdown(result))
    plot_scan(result, out / "scan.png")
    return result


def format_markdown(result: dict) -> str:
    signals = list(result["float"])
    lines = [
        f"# Bit-width scan of `{result['model']}` (QKeras style), {result['n_background']:,} background events",
        "",
    ]
    lines += [
        "| bits | " + " | ".join(f"{s} AUROC | {s} TPR@1e-5" for s in signals) + " |",
        "|---" * (1 + 2 * len(signals)) + "|",
    ]
    rows = [("float", result["float"])] + list(result["bits"].items())
    for name, per in rows:
        cells = []
        for s in signals:
            t = per[s]["tpr_at_fpr_1e-5"]
            cells += [f"{per[s]['auroc']:.4f}", "n/a" if t is None else f"{t:.4f}"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_scan(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bits = [int(b) for b in result["bits"]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for key, ax in zip(("auroc", "tpr_at_fpr_1e-5"), axes, strict=True):
        for i, s in enumerate(result["float"]):
            ys = [result["bits"][str(b)][s][key] for b in bits]
            ax.plot(bits, [np.nan if y is None else y for y in ys], "o-", color=f"C{i}", label=s)
            ref = result["float"][s][key]
            if ref is not None:
                ax.axhline(ref, color=f"C{i}", ls="--", lw=0.8)
        ax.set_xlabel("total bits (weights and activations)")
        ax.set_ylabel(key.replace("_", " "))
    axes[0].legend(fontsize=8, title="dashed: float")
    fig.suptitle(f"{result['model']}: sensitivity vs precision")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
