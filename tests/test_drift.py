"""Drift monitoring (:mod:`l1ad.serving.drift` and friends) on generator events: a jet-energy-scale shift
and extra pileup are found, unshifted samples alarm at most at the configured rate, occupancy drift is
found by the occupancy tests alone (KS sees present objects only), the flag-rate monitor alerts beyond
its factor with its statistical guard, ``l1ad monitor`` exits 1/0 and plots, and the service publishes
the drift gauges.

Shifts are made inside the generator (:mod:`l1ad.events.generator.detector`), so they act before the
L1 thresholds and on MET as a real detector change would: the jet energy scale multiplies every smeared
jet pT (jets migrate across 15 GeV, MET gets the mismeasurement, HT follows), and pileup raises the mean
number of soft pileup jets per event.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from l1ad.events import schema
from l1ad.events.generator import detector, generate_background, generate_signal
from l1ad.serving import drift
from l1ad.serving.drift_monitor import DriftConfig, _Ring

WINDOW = 10_000
TINY = {"hidden": 16, "n_blocks": 1, "n_frequencies": 4, "n_levels": 4, "ms_batch": 8, "batch_size": 128,
        "epochs": 1, "gmm_components": 2, "score_batch": 64}  # fmt: skip


@contextmanager
def detector_shift(jes: float = 1.0, pileup_mean: float | None = None):
    """Generate with the jet energy scale multiplied by ``jes`` and ``pileup_mean`` soft jets per event."""
    smear, mean = detector._smear_jet, detector.PILEUP_MEAN

    def scaled(rng, pt, eta, phi):
        pt_s, eta_s, phi_s = smear(rng, pt, eta, phi)
        return pt_s * np.float32(jes), eta_s, phi_s

    detector._smear_jet = scaled
    if pileup_mean is not None:
        detector.PILEUP_MEAN = pileup_mean
    try:
        yield
    finally:
        detector._smear_jet, detector.PILEUP_MEAN = smear, mean


def shifted(n: int, seed: int, **shift) -> np.ndarray:
    with detector_shift(**shift):
        return generate_background(n, seed=seed)


@pytest.fixture(scope="module")
def reference() -> tuple[np.ndarray, drift.Summary]:
    particles = generate_background(100_000, seed=1)
    return particles, drift.Summary.of(particles, "generator seed 1")


def test_ks_equals_scipy_with_ties_and_unequal_sizes() -> None:
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(3)
    for n, m, shift in ((50, 3000, 0.0), (700, 200, 0.2), (1000, 1000, 0.05)):
        a = np.sort(rng.normal(shift, 1.0, n).round(1).astype(np.float32))  # rounding: many ties
        b = np.sort(rng.normal(0.0, 1.0, m).round(1).astype(np.float32))
        d, p = drift.ks_test(a, b)
        ref = ks_2samp(a, b, method="asymp")
        np.testing.assert_allclose([d, p], [ref.statistic, ref.pvalue], rtol=1e-12, atol=1e-15)


def test_holm_rejects_what_the_step_down_procedure_rejects() -> None:
    rng = np.random.default_rng(4)
    for _ in range(50):
        p = np.concatenate([rng.uniform(0, 1, 30), rng.uniform(0, 1e-3, rng.integers(0, 5))])
        adj = drift.holm(p)
        for alpha in (0.01, 0.05):
            order = np.argsort(p)
            rejected = np.zeros(len(p), bool)
            for i, j in enumerate(order):  # Holm: reject p_(i) while p_(i) <= alpha / (m - i)
                if p[j] > alpha / (len(p) - i):
                    break
                rejected[j] = True
            assert_array_equal(adj <= alpha, rejected)
        assert np.all(adj >= p) and np.all(adj <= 1.0)


@pytest.mark.parametrize("shift", [{"jes": 1.03}, {"pileup_mean": 5.0}], ids=["jes+3%", "pileup+0.5"])
def test_jes_shift_and_pileup_are_detected(reference, shift) -> None:
    """Measured power at W = 10k, alpha = 0.01: 100% for JES +3% and for 0.5 more pileup jets per event
    (20 of 20 windows each; JES +2%: 95%, +1%: 40%)."""
    _, ref = reference
    for seed in range(3):
        res = drift.compare(drift.Summary.of(shifted(WINDOW, 100 + seed, **shift)), ref, alpha=0.01)
        assert res.drift, drift.format_table(res, all_tests=True)
        names = [t.feature for t in res.drifted]
        if "jes" in shift:  # only what the scale touches: jets, and through them HT and MET
            assert all(n.startswith(("jet", "HT", "n_jet", "MET")) for n in names), names
            assert any(n.endswith("_pt") for n in names), names
        else:  # more jets (and a few more fake e/gamma from them)
            assert "n_jet" in names, names


def test_false_alarm_rate_of_unshifted_samples_is_within_alpha(reference) -> None:
    """20 independent unshifted windows at alpha = 0.05: a correct family-wise test alarms
    X ~ Binomial(20, <= 0.05) times; P(X >= 4) = 1.6%, so 4 or more alarms fail."""
    from scipy.stats import binom

    _, ref = reference
    alpha, n = 0.05, 20
    assert binom.sf(3, n, alpha) < 0.02
    alarms = 0
    for seed in range(n):
        res = drift.compare(drift.Summary.of(generate_background(WINDOW, seed=1000 + seed)), ref, alpha)
        alarms += res.drift
        assert len(res.ran) > 60  # the family: KS, occupancy and multiplicity tests that ran
    assert alarms <= 3, f"{alarms} false alarms in {n} unshifted windows at alpha = {alpha}"


def test_occupancy_drift_alone_is_found_and_ks_ignores_padded_zeros(reference) -> None:
    """20% of the events lose all their jets (0.6 fewer jets per event on average): the jets left are
    drawn exactly from the reference distribution, so the occupancy and multiplicity tests must fire
    and no KS test may -- while KS on the zero-padded values would."""
    ref_particles, ref = reference
    p = generate_background(WINDOW, seed=77)
    rng = np.random.default_rng(78)
    gone = rng.random(len(p)) < 0.2
    before = schema.present(p)[:, schema.JET.slots].sum(axis=1).mean()
    p[np.ix_(gone, np.arange(schema.JET.first_slot, schema.N_OBJECTS))] = 0.0
    assert before - schema.present(p)[:, schema.JET.slots].sum(axis=1).mean() > 0.5
    res = drift.compare(drift.Summary.of(p), ref, alpha=0.01)
    hit = {t.feature: t.test for t in res.drifted}
    assert "n_jet" in hit and "jet1_occupancy" in hit, drift.format_table(res, all_tests=True)
    assert set(hit.values()) <= {"occupancy", "chi2"}, hit
    skipped = [t for t in res.tests if t.skipped]
    assert skipped and all(t.p_corrected is None for t in skipped)
    assert {"e4_pt", "jet10_pt"} <= {t.feature for t in skipped}  # fewer than 20 present objects
    # the same jet1 pT with its padded zeros: KS would call it drift (at Bonferroni's level)
    j1 = schema.slot_names().index("jet1")
    _, p_zeros = drift.ks_test(np.sort(p[:, j1, schema.PT]), np.sort(ref_particles[:, j1, schema.PT]))
    assert p_zeros < 0.01 / len(res.ran)


def test_flag_rate_monitor_factor_and_guard() -> None:
    from scipy.stats import poisson

    frac = 1e-3  # 40 kHz of a 40 MHz input
    n = 50_000  # 50 flags expected
    assert drift.flag_rate_test(n, 200, frac).alert  # 4x up
    assert drift.flag_rate_test(n, 10, frac).alert  # 5x down
    assert not drift.flag_rate_test(n, 50, frac).alert
    within = drift.flag_rate_test(n, 100, frac)  # 2x: significant, but inside the 3x rule
    assert within.p < 1e-6 and not within.alert
    assert drift.flag_rate_test(n, 100, frac, factor=1.5).alert
    few = drift.flag_rate_test(2000, 8, frac)  # 4x, but 2 flags expected: below the guard
    assert few.ratio == pytest.approx(4.0) and not few.enough and not few.alert
    # beyond the factor but not significant: 1 flag where 5 are expected (two-sided p ~ 0.08)
    weak = drift.flag_rate_test(5000, 1, frac, alpha=0.05, min_expected=5)
    assert weak.ratio < 1 / 3 and weak.p == pytest.approx(2 * poisson.cdf(1, 5), rel=0.05)
    assert not weak.alert
    assert drift.flag_rate_test(5000, 0, frac, alpha=0.05, min_expected=5).alert
    with pytest.raises(ValueError, match="factor"):
        drift.flag_rate_test(n, 1, frac, factor=1.0)


def test_ring_buffer_holds_the_last_window_and_its_count() -> None:
    rng = np.random.default_rng(5)
    ring, flags = _Ring(1000, (), bool), _Ring(1000, (2,), np.float32)
    seen, seen_rows, count = [], [], 0
    for _ in range(60):
        k = int(rng.integers(1, 700))
        f = rng.random(k) < 0.3
        rows = rng.random((k, 2)).astype(np.float32)
        count += int(f[-1000:].sum()) - ring.push(f)
        flags.push(rows)
        seen.append(f)
        seen_rows.append(rows)
        assert_array_equal(ring.snapshot(), np.concatenate(seen)[-1000:])
        assert count == int(np.concatenate(seen)[-1000:].sum())
    assert_array_equal(flags.snapshot(), np.concatenate(seen_rows)[-1000:])
    assert ring.filled == 1000


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    """A tiny energy model trained on 20k generator events (its drift reference), with a rate table."""
    from l1ad.evaluation.evaluate import evaluate_run
    from l1ad.events.io import write_events
    from l1ad.events.sources import write_parquet_events
    from l1ad.models.ebm.train import train_model

    root = tmp_path_factory.mktemp("drift")
    bkg = write_events(root / "bkg.h5", generate_background(20_000, seed=11))
    test = write_events(root / "test.h5", generate_background(8000, seed=12))
    sig = write_events(root / "sig.h5", generate_signal("Ato4l", 500, seed=13))
    train_model("ebm", bkg, root / "run", config=TINY, seed=0)
    evaluate_run(root / "run", test, {"Ato4l": sig})
    return {"run": root / "run", "root": root,
            "ok": write_events(root / "ok.h5", generate_background(WINDOW, seed=21)),
            "jes": write_parquet_events(root / "jes.parquet", shifted(WINDOW, 22, jes=1.03))}  # fmt: skip


def test_monitor_cli_exit_status_table_and_plot(run, capsys) -> None:
    from l1ad.cli.main import main

    png = run["root"] / "jes.png"
    assert main(["monitor", str(run["jes"]), "--run", str(run["run"]), "--plot", str(png)]) == 1
    out = capsys.readouterr().out
    assert "DRIFT (input)" in out and "jet2_pt" in out and "corrected p" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["monitor", str(run["ok"]), "--run", str(run["run"]), "--json", "--rate-khz", "50"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["drift"] is False and doc["input"]["drifted"] == []
    assert doc["output"]["n_events"] == WINDOW and doc["output"]["expected"] == pytest.approx(
        WINDOW * 50 / 40_000
    )
    assert "bkg.h5" in doc["reference"]  # the training file is the default reference


@pytest.mark.allow_error_logs
def test_monitor_cli_refuses_a_changed_training_file(run, tmp_path) -> None:
    import shutil

    from l1ad.cli.main import main
    from l1ad.events.io import read_events, write_events
    from l1ad.serving.drift_reference import load_reference

    run_dir = tmp_path / "run"
    shutil.copytree(run["run"], run_dir)
    meta = json.loads((run_dir / "ebm-float" / "meta.json").read_text())
    edited = read_events(meta["data"])
    edited[123, 0, schema.PT] += 1.0  # one MET value changed since training
    meta["data"] = str(write_events(tmp_path / "edited.h5", edited))
    (run_dir / "ebm-float" / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="data_sha256"):
        load_reference(run_dir)
    assert main(["monitor", str(run["ok"]), "--run", str(run_dir)]) == 2
    assert main(["monitor", str(run["ok"]), "--run", str(run_dir), "--reference", meta["data"]]) == 0


def test_service_metrics_expose_drift_gauges(run) -> None:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from l1ad.serving.service import Service
    from l1ad.serving.state import ServeConfig

    service = Service(ServeConfig(run_dir=run["run"], max_delay_us=0.0))
    try:
        service.enable_drift(DriftConfig(window=2000, alpha=0.01, min_interval_s=0.0))

        def scrape() -> dict:
            text = generate_latest(service.metrics.registry).decode()
            return {(s.name, s.labels.get("kind")): s.value
                    for f in text_string_to_metric_families(text) for s in f.samples}  # fmt: skip

        flagged = 0
        for i, events in enumerate((generate_background(2000, seed=31), shifted(2000, 32, pileup_mean=6.5))):
            for lo in range(0, 2000, 500):  # four requests per window
                flagged += int(service.score_sync(events[lo : lo + 500], None).flags.sum())
            assert service.drift.wait(i + 1), "no drift evaluation ran"
            m = scrape()
            assert m[("l1ad_drift_window_events", None)] == 2000
            assert m[("l1ad_drift_alert", "input")] == i  # unshifted: 0, pileup: 1
            assert (m[("l1ad_drift_features_drifted", None)] > 0) == bool(i)
            t = service.model.threshold(None)
            expected = 2000 * (i + 1) * t.rate_khz / 40_000
            assert m[("l1ad_flag_rate_ratio", None)] == pytest.approx(flagged / expected)
            assert m[("l1ad_flag_rate_window_events", None)] == 2000 * (i + 1)
            assert m[("l1ad_drift_alert", "output")] == 0  # 0.1-0.2 flags expected: below the guard
        assert m[("l1ad_drift_min_corrected_p", None)] < 0.01
        assert m[("l1ad_drift_evaluations_total", None)] == 2
    finally:
        service.close()
