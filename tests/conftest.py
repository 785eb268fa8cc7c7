"""Shared fixtures: deterministic seeds, single-threaded numerics, small valid event arrays."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import logging  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from l1ad.events import schema  # noqa: E402


def make_particles(n: int, seed: int = 0) -> np.ndarray:
    """Random but valid L1-layout events: MET, 1-2 electrons or muons, a few jets, pT-ordered."""
    rng = np.random.default_rng(seed)
    p = np.zeros((n, schema.N_OBJECTS, schema.N_FEATURES), dtype=np.float32)
    p[:, 0, schema.PT] = rng.exponential(30, n)
    p[:, 0, schema.PHI] = rng.uniform(-np.pi, np.pi, n)
    p[:, 0, schema.CLASS] = schema.MET_CLASS
    for t, n_max in ((schema.EGAMMA, 2), (schema.MUON, 2), (schema.JET, 5)):
        k = rng.integers(0, n_max + 1, n)
        pts = np.sort(t.pt_min + rng.exponential(20, (n, n_max)), axis=1)[:, ::-1]
        for j in range(n_max):
            on = j < k
            s = t.first_slot + j
            p[on, s, schema.PT] = pts[on, j]
            p[on, s, schema.ETA] = rng.uniform(-t.eta_max, t.eta_max, on.sum()) * 0.99
            p[on, s, schema.PHI] = rng.uniform(-np.pi, np.pi, on.sum())
            p[on, s, schema.CLASS] = t.code
    # the lepton pre-filter: make sure e1 exists above 23 GeV where no lepton does
    no_lep = p[:, schema.LEPTON_SLOTS, schema.PT].max(axis=1) <= schema.LEPTON_TRIGGER_PT
    p[no_lep, 1] = [30.0, 0.3, 1.0, schema.EGAMMA_CLASS]
    return p


@pytest.fixture
def particles() -> np.ndarray:
    return make_particles(2000, seed=7)


@pytest.fixture(autouse=True)
def _fail_on_error_logs(request, caplog):
    """A test that logs at ERROR has swallowed a failure somewhere: fail it (as conifer does).

    Tests that check an error is logged on purpose carry ``@pytest.mark.allow_error_logs``.
    """
    yield
    if request.node.get_closest_marker("allow_error_logs"):
        return
    records = caplog.get_records("setup") + caplog.get_records("call")
    errors = [r.getMessage() for r in records if r.levelno >= logging.ERROR]
    if errors:
        pytest.fail("ERROR logged during the test: " + "; ".join(errors))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items) -> None:
    """After selection (``-k``, ``-m``, node ids): start the background work of the selected tests only
    (a module exposing ``start_background()``, e.g. the QKeras-style subprocess)."""
    started = set()
    for item in items:
        module = getattr(item, "module", None)
        start = getattr(module, "start_background", None)
        if start is not None and module not in started:
            started.add(module)
            start()
