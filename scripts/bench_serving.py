"""Benchmark of ``l1ad serve`` on a run's energy model (prints measured numbers; loopback only).

Starts the server as a subprocess and measures, beside the same model's in-process events/s:
single-event request latency p50/p99 under 1, 10 and 50 concurrent clients (REST, OIP HTTP with
binary tensors, OIP gRPC), events/s of batched requests, and what dynamic batching buys at 50
clients (``--max-batch-delay-us`` 0 against the default). Clients and server share the machine's
cores, so client overhead is inside every number.

    .venv/bin/python scripts/bench_serving.py --run runs/default [--events runs/default/data/background_test.h5]
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(run: str, extra: list[str]) -> tuple[subprocess.Popen, int, int]:
    port, gport = _port(), _port()
    cmd = [sys.executable, "-m", "l1ad.cli.main", "-q", "serve", "--run", run, "--port", str(port),
           "--grpc-port", str(gport), *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return proc, port, gport
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def rest_client(port: int, body: bytes):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call() -> None:
        conn.request("POST", "/api/v1/score", body, {"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(r.status)

    return call


def oip_http_client(port: int, x: np.ndarray, name: str):
    import tritonclient.http as hc

    client = hc.InferenceServerClient(f"127.0.0.1:{port}", connection_timeout=60, network_timeout=60)
    inp = hc.InferInput("events", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=True)
    outs = [hc.InferRequestedOutput("scores", binary_data=True)]
    return lambda: client.infer(name, [inp], outputs=outs)


def grpc_client(port: int, x: np.ndarray, name: str):
    import tritonclient.grpc as gc

    client = gc.InferenceServerClient(f"127.0.0.1:{port}")
    inp = gc.InferInput("events", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    return lambda: client.infer(name, [inp])


def load(make_client, n_clients: int, n_requests: int) -> dict:
    """``n_requests`` per client from ``n_clients`` threads; latencies of every request."""
    lat: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        call = make_client()
        call()  # warm-up
        mine = []
        for _ in range(n_requests):
            t0 = time.perf_counter()
            try:
                call()
            except Exception as exc:
                errors.append(repr(exc))
                return
            mine.append(time.perf_counter() - t0)
        with lock:
            lat.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(n_clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    a = np.array(lat) * 1e3
    return {"clients": n_clients, "requests": len(a), "errors": len(errors), "p50_ms": float(np.percentile(a, 50)),
            "p99_ms": float(np.percentile(a, 99)), "requests_per_s": len(a) / wall}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/default")
    ap.add_argument("--events", default=None, help="default: <run>/data/background_test.h5")
    ap.add_argument("--requests", type=int, default=200, help="single-event requests per client")
    ap.add_argument("--batch", type=int, default=4096)
    a = ap.parse_args()

    from l1ad.events import schema
    from l1ad.events.io import read_events
    from l1ad.serving.state import choose_model

    events = read_events(a.events or Path(a.run) / "data" / "background_test.h5", stop=20 * a.batch)
    kin = schema.kinematics(events).astype(np.float32)
    trained = choose_model(Path(a.run), None)
    name = trained.path.name
    from l1ad.models import registry

    loaded = registry.load(trained)
    label = loaded.score_labels[0]
    loaded.score(events[: a.batch], (label,))
    t0 = time.perf_counter()
    for i in range(0, len(events), a.batch):
        loaded.score(events[i : i + a.batch], (label,))
    inproc = len(events) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for i in range(200):
        loaded.score(events[i : i + 1], (label,))
    inproc_single = (time.perf_counter() - t0) / 200 * 1e3
    print(f"model {name} score {label}: in-process {inproc:,.0f} events/s (batches of {a.batch}); "
          f"single event {inproc_single:.3f} ms")  # fmt: skip

    results = {
        "model": name,
        "score": label,
        "in_process_events_per_s": inproc,
        "in_process_single_ms": inproc_single,
    }
    one = json.dumps({"events": [kin[0].tolist()]}).encode()
    batch_body = json.dumps({"events": kin[: a.batch].tolist()}).encode()
    for delay in ("500", "0"):
        proc, port, gport = start(a.run, ["--max-batch-delay-us", delay])
        try:
            rows = []
            clients = {
                "REST": lambda port=port: rest_client(port, one),
                "OIP-HTTP": lambda port=port: oip_http_client(port, kin[:1], name),
                "OIP-gRPC": lambda gport=gport: grpc_client(gport, kin[:1], name),
            }
            for proto, make in clients.items():
                for n in (1, 10, 50) if delay == "500" else (50,):
                    r = load(make, n, a.requests if n < 50 else max(20, a.requests // 5))
                    rows.append({"protocol": proto, "delay_us": int(delay), **r})
                    print(f"[delay {delay:>3} us] {proto:8s} {n:2d} clients: p50 {r['p50_ms']:.2f} ms, p99 "
                          f"{r['p99_ms']:.2f} ms, {r['requests_per_s']:,.0f} req/s ({r['errors']} errors)")  # fmt: skip
            if delay == "500":
                for proto, make in {"REST": lambda port=port: rest_client(port, batch_body),
                                    "OIP-HTTP": lambda port=port: oip_http_client(port, kin[: a.batch], name),
                                    "OIP-gRPC": lambda gport=gport: grpc_client(gport, kin[: a.batch], name)}.items():  # fmt: skip
                    r = load(make, 2, 10)
                    eps = r["requests_per_s"] * a.batch
                    rows.append({"protocol": proto, "batched": a.batch, "events_per_s": eps, **r})
                    print(
                        f"batched {a.batch}: {proto:8s} {eps:,.0f} events/s = {eps / inproc:.0%} of in-process"
                    )
            results[f"delay_{delay}"] = rows
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
