"""CPU latency of the TorchScript EBM scoring function (energy + score vector at sigma_min).

Usage: python scripts/bench_ebm_latency.py [MODEL_DIR] [--threads N] [--hidden 256] [--repeat 500]

Without MODEL_DIR an untrained network of the default config (same architecture, same cost) is
benchmarked on toy events. Prints eager-vs-TorchScript max |diff| and ms per event at batch 1 and
ms per batch / per event at batch 1024. With a MODEL_DIR whose score was chosen (``score_choice.json``)
it also times that score itself the way the evaluation computes it (``l1ad.models.ebm.scores.score``:
numpy in and out, the calibration included): p50/p99 per single event and events/s batched. Then
everything as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", nargs="?", help="a trained <out>/<name>-float directory")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=256, help="width of the untrained network")
    parser.add_argument("--model", default="ebm", choices=("ebm", "ebm_hlt", "score"))
    parser.add_argument("--repeat", type=int, default=500)
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from l1ad.events.encoding import Standardizer
    from l1ad.models.ebm.config import EBMConfig
    from l1ad.models.ebm.export import benchmark_latency, check_equal, export_torchscript, scoring_module
    from l1ad.models.ebm.networks import build_network
    from l1ad.models.ebm.scores import LoadedEBM, load_model, prepare
    from l1ad.models.ebm.toydata import toy_events

    torch.set_num_threads(args.threads)
    events = toy_events(2048, seed=1)
    if args.model_dir:
        model = load_model(args.model_dir)
    else:
        torch.manual_seed(0)
        cfg = EBMConfig(hidden=args.hidden).for_model(args.model)
        std = Standardizer.fit(events, cfg.inputs)
        model = LoadedEBM(args.model, build_network(args.model, cfg).eval(), cfg, std)
    x, mask = prepare(events, model.standardizer)
    eager = scoring_module(model)
    with tempfile.TemporaryDirectory() as tmp:
        scripted = export_torchscript(model, Path(tmp) / "scoring.ts")
        scripted = torch.jit.load(str(Path(tmp) / "scoring.ts"))
    diff = check_equal(eager, scripted, x, mask)
    res = benchmark_latency(scripted, x, mask, (1, 1024), n_repeat=args.repeat)
    res_eager = benchmark_latency(eager, x, mask, (1, 1024), n_repeat=args.repeat)
    params = sum(p.numel() for p in model.net.parameters())
    print(f"model {model.name} hidden={model.config.hidden} params={params} threads={args.threads}")
    print(f"eager vs TorchScript max |diff| = {diff:g} (assert_close rtol=0 atol=0)")
    for name, r in (("torchscript", res), ("eager", res_eager)):
        print(
            f"{name:12s} batch 1: {r[1]['ms_per_event']:.3f} ms/event (p90 {r[1]['p90_ms_per_batch']:.3f})"
            f" | batch 1024: {r[1024]['ms_per_batch']:.2f} ms/batch = {r[1024]['ms_per_event'] * 1e3:.1f} us/event"
        )
    out = {"max_abs_diff": diff, "torchscript": res, "eager": res_eager, "threads": args.threads}
    if args.model_dir:
        out["chosen"] = _time_chosen(args.model_dir, model, events, args.repeat)
    print(json.dumps(out))
    return 0 if np.isfinite(diff) else 1


def _time_chosen(model_dir: str, model, events, repeat: int) -> dict | None:
    """p50/p99 of the chosen score on single events, and events/s on a batch of 16,384."""
    import time

    import numpy as np

    from l1ad.evaluation.score_choice import read_choice
    from l1ad.models.ebm.scores import score

    choice = read_choice(model_dir)
    if choice is None:
        print(f"{model_dir}: no score_choice.json (run `l1ad choose-score`); the chosen score is not timed")
        return None
    name = choice["chosen"]
    one = np.empty(repeat)
    for i in range(repeat):
        t0 = time.perf_counter()
        score(model, events[i % len(events)][None], (name,))
        one[i] = time.perf_counter() - t0
    batch = np.tile(events, (8, 1, 1))
    t0 = time.perf_counter()
    score(model, batch, (name,))
    rate = len(batch) / (time.perf_counter() - t0)
    res = {"score": name, "p50_ms": float(np.median(one)) * 1e3, "p99_ms": float(np.quantile(one, 0.99)) * 1e3,
           "events_per_second_batched": rate, "batch": len(batch), "n_single": repeat}  # fmt: skip
    print(f"chosen score {name} (l1ad.models.ebm.scores.score, numpy in/out): single event p50 "
          f"{res['p50_ms']:.3f} ms, p99 {res['p99_ms']:.3f} ms over {repeat} events; batched "
          f"{rate:,.0f} events/s ({len(batch):,} events)")  # fmt: skip
    return res


if __name__ == "__main__":
    sys.exit(main())
