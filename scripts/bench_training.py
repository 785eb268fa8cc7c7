"""Training time and scoring throughput of the Keras L1 models (benchmark: prints measured numbers).

Usage::

    python scripts/bench_training.py --background runs/default/data/background_train.h5 \\
        --events 1000000 --epochs 3 --model ae_compact --quantization hgq

Trains ``--model`` in ``--quantization`` style on the first ``--events`` events for ``--epochs`` epochs
(in a fresh process, as ``l1ad train`` does), then scores the same events with the saved model and
prints wall-clock seconds per epoch and events/s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

from l1ad.models import registry
from l1ad.models.sidecar import read_meta


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--background", required=True)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--model", default="ae_compact")
    p.add_argument("--quantization", default="hgq", choices=("hgq", "qkeras", "float"))
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="l1ad_bench_") as out:
        argv = ["train", "--model", a.model, "--quantization", a.quantization, "--background", a.background]
        argv += ["--out", out, "--max-events", str(a.events), "--epochs", str(a.epochs)]
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "l1ad.cli.main", "-q", *argv], check=True)
        wall = time.perf_counter() - t0
        model_dir = registry.model_dir(out, a.model, a.quantization)
        meta = read_meta(model_dir)
        code = (
            "import time, sys; from l1ad.events.io import read_events; from l1ad.models.keras.score import score;"
            f"p = read_events({a.background!r}, stop={a.events}); score({str(model_dir)!r}, p[:50000]);"
            f"t = time.perf_counter(); score({str(model_dir)!r}, p); print(len(p) / (time.perf_counter() - t))"
        )
        rate = float(
            subprocess.run(
                [sys.executable, "-c", code], check=True, capture_output=True, text=True
            ).stdout.split()[-1]
        )
    m = meta["metrics"]
    print(
        f"model {a.model}/{a.quantization}: {meta['n_train']} train + {meta['n_val']} val events, {m.get('epochs_run')} epochs"
    )
    print(
        f"training: {m.get('train_seconds', float('nan')):.1f} s in fit ({wall:.1f} s wall incl. start-up and saving)"
    )
    print(f"scoring: {rate:,.0f} events/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
