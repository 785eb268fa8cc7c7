"""CPU latency of the TorchScript EBM scoring function (energy + score vector at sigma_min).

Usage: python scripts/bench_ebm_latency.py [MODEL_DIR] [--threads N] [--hidden 256] [--repeat 500]

Without MODEL_DIR an untrained network of the default config (same architecture, same cost) is
benchmarked on toy events. Prints eager-vs-TorchScript max |diff| and ms per event at batch 1 and
ms per batch / per event at batch 1024, then the same as one JSON line.
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
    parser.add_argument("--model", default="ebm", choices=("ebm", "score"))
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
        cfg = EBMConfig(hidden=args.hidden)
        model = LoadedEBM(args.model, build_network(args.model, cfg).eval(), cfg, Standardizer.fit(events))
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
    print(json.dumps({"max_abs_diff": diff, "torchscript": res, "eager": res_eager, "threads": args.threads}))
    return 0 if np.isfinite(diff) else 1


if __name__ == "__main__":
    sys.exit(main())
