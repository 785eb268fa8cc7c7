"""``l1ad serve`` started as a real server (subprocess, loopback ports): the REST API, the Open Inference
Protocol over HTTP (driven with ``tritonclient.http``) and gRPC (``tritonclient.grpc``), bad inputs,
reload under load, shadow agreement and metrics. Scores equal the registry's (what ``l1ad evaluate``
computes) bit for bit, and flags equal the evaluation's rate table."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from toy_runs import toy_runs

from l1ad.events import schema
from l1ad.events.io import read_events
from l1ad.models import registry
from l1ad.models.ebm.toydata import toy_events

slow = pytest.mark.slow  # the tests that train models and start the server


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two runs with an energy model each; run A evaluated (rate table) on toy background + signal."""
    root = tmp_path_factory.mktemp("serve")
    out = toy_runs(root, (("a", 0), ("b", 1)))  # 8000 test events: the 10 and 50 kHz rates resolve
    broken = root / "broken" / "ebm-float"
    broken.mkdir(parents=True)
    (broken / "meta.json").write_text('{"model": "ebm", "quantization": "float", "framework": "torch"}')
    out["broken"] = root / "broken"
    return out


@pytest.fixture(scope="module")
def server(runs):
    port, grpc_port = _port(), _port()
    cmd = [sys.executable, "-m", "l1ad.cli.main", "serve", "--run", str(runs["a"]), "--port", str(port),
           "--grpc-port", str(grpc_port), "--shadow", str(runs["b"]), "--max-events", "1000",
           "--max-batch-delay-us", "2000", "--max-body-bytes", "2000000"]  # fmt: skip
    log = open(runs["a"].parent / "server.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {(runs['a'].parent / 'server.log').read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("server did not start")
    yield {"url": url, "grpc": f"127.0.0.1:{grpc_port}", "proc": proc}
    proc.terminate()
    try:
        rc = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "hung"
    log.close()
    # a clean shutdown within the timeout: no thread (batcher, shadow, retiring model) keeps the process
    # alive (uvicorn re-raises the SIGTERM it handled after its graceful shutdown: exit -15)
    assert rc in (0, -signal.SIGTERM), (
        f"server exit {rc}: {(runs['a'].parent / 'server.log').read_text()[-3000:]}"
    )


def _post(url: str, body, raw: bool = False) -> tuple[int, dict]:
    data = body if raw else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def _kinematics(p: np.ndarray) -> list:
    return schema.kinematics(p).astype(np.float64).tolist()


@slow
def test_score_equals_registry_and_flags_equal_the_rate_table(server, runs) -> None:
    events = read_events(runs["test"])[:300]
    ref = registry.score(registry.find(runs["a"], "ebm/float"), events)["ebm/float"]
    table = json.loads((runs["a"] / "evaluation.json").read_text())["rates"]["ebm/float"]
    resolved = [r for r in table if r["resolved"]]
    assert [r["target_rate_khz"] for r in resolved] == [5.0, 10.0, 50.0]
    for row in resolved:
        code, out = _post(
            server["url"] + f"/api/v1/score?rate_khz={row['target_rate_khz']}",
            {"events": _kinematics(events)},
        )
        assert code == 200, out
        np.testing.assert_array_equal(np.array(out["scores"]), ref)  # bit-identical
        np.testing.assert_array_equal(np.array(out["flags"]), ref > row["threshold"])
        assert out["threshold"]["value"] == row["threshold"] and out["threshold"]["input_rate_khz"] == 40000.0
    meta = registry.open_model(runs["a"] / "ebm-float")
    assert out["model"]["name"] == "ebm-float" and out["model"]["hash"] == registry.model_hash(meta.path)
    # one event alone, and as [19 x 3] triples: the same bits
    code, one = _post(
        server["url"] + "/api/v1/score",
        {"events": [schema.kinematics(events[7:8])[0].reshape(19, 3).tolist()]},
    )
    assert code == 200 and one["scores"] == [ref[7]]


@slow
def test_models_health_and_explain(server) -> None:
    assert _get(server["url"] + "/healthz")["status"] == "ok"
    info = _get(server["url"] + "/api/v1/models")
    m = info["models"][0]
    assert m["name"] == "ebm-float" and m["score"] == "ebm/float" and len(m["inputs"]["features"]) == 57
    assert m["input_rate_khz"] == 40000.0 and m["thresholds"]
    assert info["shadow"]["run_dir"].endswith("b")
    p = toy_events(1, seed=3)
    code, ex = _post(server["url"] + "/api/v1/explain?top=5", {"events": _kinematics(p)})
    assert code == 200 and len(ex["features"]) == 5
    names = set(schema.flat_feature_names())
    assert all(f["name"] in names for f in ex["features"]) and "MET_pt" in names and "jet3_phi" in names
    assert abs(ex["features"][0]["value"]) >= abs(ex["features"][-1]["value"])


BAD = [
    ({"events": [[1.0] * 56]}, 422, "event 0: 56 features, expected 57"),
    (
        {"events": [[10.0] * 57, [1.0, "x"] + [0.0] * 55]},
        422,
        "event 1, feature 1 (MET_eta): 'x' is not a number",
    ),
    ({"events": []}, 422, "'events' is empty"),
    ({"events": "nope"}, 422, "must be a list"),
    ({"events": [[float("nan")] + [0.0] * 56]}, 422, None),
    ({"evts": []}, 422, "'events' list"),
    ({"events": [[10.0, 0.0, 0.0, -5.0] + [0.0] * 53]}, 422, "event 0, feature 3 (e1_pt)"),
    ({"events": [[10.0, 0.0, 0.0, 30.0, 9.0, 0.0] + [0.0] * 51]}, 422, "feature 4 (e1_eta)"),
    ({"events": [[10.0, 0.0, 0.0] * 19] * 1001}, 413, "limit is 1000"),
    ({"events": [[10.0, True] + [0.0] * 55]}, 422, "event 0, feature 1 (MET_eta): True is not a number"),
    ({"events": [[10.0, "1.5"] + [0.0] * 55]}, 422, "'1.5' is not a number"),
    ({"events": [[10**400] + [0.0] * 56]}, 422, "is not finite"),
]


@slow
@pytest.mark.parametrize(("body", "code", "message"), BAD, ids=range(len(BAD)))
def test_bad_rest_inputs_are_4xx_naming_the_problem(server, body, code, message) -> None:
    raw = json.dumps(body).encode()  # NaN is written as the token NaN, which the server must refuse
    got, out = _post(server["url"] + "/api/v1/score", raw, raw=True)
    assert got == code, out
    assert "error" in out and (message is None or message in out["error"]), out


@slow
def test_bad_requests_other_than_events(server) -> None:
    assert _post(server["url"] + "/api/v1/score", b"{not json", raw=True)[0] == 400
    # a body over the limit is refused from its Content-Length, before it is read
    host, port = server["url"].removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"POST /api/v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 2000001\r\n\r\n{")  # fmt: skip
        reply = ""
        for _ in range(20):
            chunk = s.recv(65536).decode()
            reply += chunk
            if not chunk or "exceeds" in reply:
                break
    assert reply.startswith("HTTP/1.1 413") and "exceeds the limit of 2000000" in reply, reply[:300]
    code, out = _post(server["url"] + "/api/v1/score?rate_khz=3.3", {"events": [[10.0, 0.0, 0.0] * 19]})
    assert code == 400 and "no threshold for 3.3 kHz" in out["error"]
    code, out = _post(server["url"] + "/api/v1/score?rate_khz=abc", {"events": [[10.0, 0.0, 0.0] * 19]})
    assert code == 422 and "rate_khz" in out["error"]
    code, out = _post(server["url"] + "/v2/models/nope/infer", {"inputs": []})
    assert code == 404 and "unknown model 'nope'" in out["error"]
    bad_dtype = {"inputs": [{"name": "events", "shape": [1, 57], "datatype": "INT32", "data": [1] * 57}]}
    code, out = _post(server["url"] + "/v2/models/ebm-float/infer", bad_dtype)
    assert code == 400 and "datatype 'INT32'" in out["error"]
    bad_shape = {"inputs": [{"name": "events", "shape": [1, 50], "datatype": "FP32", "data": [1.0] * 50}]}
    code, out = _post(server["url"] + "/v2/models/ebm-float/infer", bad_shape)
    assert code == 400 and "shape" in out["error"]


@slow
def test_oip_http_with_tritonclient(server, runs) -> None:
    import tritonclient.http as httpclient

    events = read_events(runs["sig"])[:100]
    ref = registry.score(registry.find(runs["a"], "ebm/float"), events)["ebm/float"]
    client = httpclient.InferenceServerClient(server["url"].removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("ebm-float")
    md = client.get_model_metadata("ebm-float")
    assert md["inputs"][0]["name"] == "events" and md["outputs"][0]["name"] == "scores"
    for binary in (True, False):
        inp = httpclient.InferInput("events", [len(events), 57], "FP32")
        inp.set_data_from_numpy(schema.kinematics(events).astype(np.float32), binary_data=binary)
        outs = [httpclient.InferRequestedOutput(n, binary_data=binary) for n in ("scores", "flags")]
        res = client.infer("ebm-float", [inp], outputs=outs, request_id="req-7")
        np.testing.assert_array_equal(res.as_numpy("scores"), ref)
        assert res.as_numpy("flags").dtype == bool and res.get_response()["id"] == "req-7"
    with pytest.raises(Exception, match="unknown model"):
        client.infer("nope", [inp])


@slow
def test_oip_grpc_with_tritonclient(server, runs) -> None:
    import tritonclient.grpc as grpcclient

    events = read_events(runs["sig"])[:50]
    ref = registry.score(registry.find(runs["a"], "ebm/float"), events)["ebm/float"]
    client = grpcclient.InferenceServerClient(server["grpc"])
    assert client.is_server_live() and client.is_model_ready("ebm-float")
    assert client.get_model_metadata("ebm-float").inputs[0].name == "events"
    inp = grpcclient.InferInput("events", [len(events), 57], "FP32")
    inp.set_data_from_numpy(schema.kinematics(events).astype(np.float32))
    res = client.infer("ebm-float", [inp], request_id="g1")
    np.testing.assert_array_equal(res.as_numpy("scores"), ref)
    bad = grpcclient.InferInput("events", [1, 56], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 56), np.float32))
    with pytest.raises(Exception, match="shape"):
        client.infer("ebm-float", [bad])


@slow
def test_reload_under_load_and_broken_run_refused(server, runs) -> None:
    url = server["url"]
    body = {"events": _kinematics(toy_events(4, seed=9))}
    failures, codes, stop = [], [], threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                codes.append(_post(url + "/api/v1/score", body)[0])
            except Exception as exc:  # a dropped connection is a failed request too
                failures.append(repr(exc))

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    before = _get(url + "/healthz")["model"]
    code, out = _post(url + "/admin/reload", {"run_dir": str(runs["b"])})
    assert code == 200, out
    time.sleep(0.5)
    code, refused = _post(url + "/admin/reload", {"run_dir": str(runs["broken"])})
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join()
    assert not failures and codes and set(codes) == {200}, (failures[:3], set(codes))
    after = _get(url + "/healthz")["model"]
    assert after["hash"] != before["hash"] and int(after["version"]) == int(before["version"]) + 1
    assert code == 409 and "reload refused" in refused["error"]
    assert _get(url + "/healthz")["model"] == after  # the broken run did not replace it
    # SIGHUP reloads the current run (a new version, same content)
    server["proc"].send_signal(signal.SIGHUP)
    deadline = time.time() + 30
    while _get(url + "/healthz")["model"]["version"] == after["version"] and time.time() < deadline:
        time.sleep(0.2)
    hup = _get(url + "/healthz")["model"]
    assert int(hup["version"]) == int(after["version"]) + 1 and hup["hash"] == after["hash"]
    assert _post(url + "/admin/reload", {"run_dir": str(runs["a"])})[0] == 200  # back for the other tests


@slow
def test_metrics_and_shadow_agreement(server) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def scrape() -> dict[str, list]:
        with urllib.request.urlopen(server["url"] + "/metrics", timeout=10) as r:
            text = r.read().decode()
        return {f.name: f.samples for f in text_string_to_metric_families(text)}

    before = scrape()
    _post(server["url"] + "/api/v1/score", {"events": _kinematics(toy_events(50, seed=2))})
    deadline = time.time() + 20
    while time.time() < deadline:  # the shadow scores in the background
        after = scrape()
        if (
            sum(s.value for s in after["l1ad_shadow_events"])
            >= sum(s.value for s in before["l1ad_shadow_events"]) + 50
        ):
            break
        time.sleep(0.2)

    def total(m: dict, name: str, **labels) -> float:
        return sum(
            s.value
            for s in m[name]
            if s.name.endswith("_total") and all(s.labels.get(k) == v for k, v in labels.items())
        )

    assert (
        total(after, "l1ad_events_scored", model="ebm-float")
        - total(before, "l1ad_events_scored", model="ebm-float")
        == 50
    )
    assert total(after, "l1ad_requests", endpoint="/api/v1/score", code="200") > total(
        before, "l1ad_requests", endpoint="/api/v1/score", code="200"
    )
    assert total(after, "l1ad_shadow_events") >= total(before, "l1ad_shadow_events") + 50
    buckets = [s for s in after["l1ad_request_duration_seconds"] if s.name.endswith("_bucket")]
    assert {"1e-05", "0.1"} <= {s.labels["le"] for s in buckets}
    assert any(s.labels["model"] == "ebm-float" for s in after["l1ad_flag_ratio"])
    assert after["l1ad_build_info"][0].labels["model"] == "ebm-float"
    batches = [s for s in after["l1ad_batch_events"] if s.name.endswith("_count")]
    assert batches and batches[0].value > 0  # one observation per model call
    shadow = _get(server["url"] + "/api/v1/models")["shadow"]["agreement"]
    corr = after["l1ad_shadow_score_correlation"][0].value
    assert shadow["events"] >= 50 and -1.0 <= corr <= 1.0 and corr != 0.0
    assert shadow["flag_events"] >= 50 and 0.0 <= shadow["flag_disagreement_ratio"] <= 1.0, shadow


def test_thresholds_recalibrated_at_the_stated_input_rate() -> None:
    """HLT input: thresholds at rate r pass r / input_rate of the calibration background."""
    from l1ad.serving.thresholds import flags, recalibrate

    scores = np.arange(100_000, dtype=np.float64)
    table = recalibrate(scores, (1.0, 10.0), input_rate_khz=100.0, source="toy")
    assert table.input_rate_khz == 100.0 and "100 kHz" in table.calibration
    for rate in (1.0, 10.0):
        t = table.get(rate)
        assert flags(scores, t).mean() == pytest.approx(rate / 100.0, abs=1e-5)
    with pytest.raises(KeyError, match="no threshold for 3 kHz"):
        table.get(3.0)


def test_grafana_dashboard_queries_the_service_metrics() -> None:
    from l1ad.serving.metrics import ServiceMetrics

    doc = json.loads((Path(__file__).resolve().parents[1] / "serving" / "grafana_dashboard.json").read_text())
    exprs = " ".join(t["expr"] for p in doc["panels"] for t in p["targets"])
    names = {m.name for m in ServiceMetrics().registry.collect()}
    used = {n for n in names if n in exprs}
    assert {"l1ad_request_duration_seconds", "l1ad_events_scored", "l1ad_shadow_score_correlation",
            "l1ad_drift_alert", "l1ad_flag_rate_ratio", "l1ad_flag_rate_tested"} <= used  # fmt: skip
    for token in ("l1ad_requests_total", "l1ad_flagged_events_total", "l1ad_model_reloads_total"):
        assert token in exprs


def test_batcher_gathers_concurrent_requests_and_slices_results() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from l1ad.serving.batching import Batcher

    calls: list[int] = []

    def score(p: np.ndarray) -> dict[str, np.ndarray]:
        calls.append(len(p))
        time.sleep(0.01)
        return {"s": p[:, 0, 0].astype(np.float64) * 2.0}

    b = Batcher(score, max_batch_events=1000, max_delay_us=20_000)
    events = [np.full((3, 19, 4), float(i), np.float32) for i in range(40)]
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(b.score, events))
    for i, r in enumerate(results):
        np.testing.assert_array_equal(r["s"], np.full(3, 2.0 * i))
    assert sum(calls) == 120 and len(calls) < 40  # gathered: fewer model calls than requests
    b.close()
    with pytest.raises(RuntimeError, match="closed"):
        b.submit(events[0])


def test_inputs_reject_what_is_not_an_event() -> None:
    from l1ad.serving.inputs import InputError, events_from_json, events_from_tensor
    from l1ad.serving.oip_http import parse_request, requested_outputs

    ok = [[10.0, 0.0, 0.5] + [0.0] * 54]
    assert events_from_json(ok).shape == (1, 19, 4)
    with pytest.raises(InputError, match="True is not a number"):
        events_from_json([[10.0, True] + [0.0] * 55], strict=True)
    with pytest.raises(InputError, match="not supported"):
        events_from_tensor([1, 57], ["FP32"], [0.0] * 57)
    with pytest.raises(InputError, match="numbers"):
        events_from_tensor([1, 57], "FP32", ["a"] * 57)
    with pytest.raises(InputError, match="'parameters' must be an object"):
        parse_request({"inputs": [{"name": "events", "shape": [1, 57], "datatype": "FP32", "data": ok[0],
                                   "parameters": 3}]}, b"", 10)  # fmt: skip
    with pytest.raises(InputError, match="unknown output 'x'"):
        requested_outputs({"outputs": [{"name": "x"}]})
    assert requested_outputs({"parameters": {"binary_data_output": True}}) == {"scores": True, "flags": True}
    try:
        events_from_tensor([1, 50], "FP32", [0.0] * 50)
    except InputError as exc:
        assert exc.status == 400 and "shape" in str(exc)
