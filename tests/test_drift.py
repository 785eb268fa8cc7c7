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
from l1ad.models.ebm.toydata import TINY_CONFIG
from l1ad.serving import drift, drift_flags
from l1ad.serving.drift_monitor import DriftConfig, _Ring

WINDOW = 10_000


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
    assert "e4_pt" in {t.feature for t in skipped}  # fewer than 20 present objects
    # the same jet1 pT with its padded zeros: KS would call it drift (at Bonferroni's level)
    j1 = schema.slot_names().index("jet1")
    _, p_zeros = drift.ks_test(np.sort(p[:, j1, schema.PT]), np.sort(ref_particles[:, j1, schema.PT]))
    assert p_zeros < 0.01 / len(res.ran)


def test_calibration_counts_are_recovered_exactly_from_rate_table_rows() -> None:
    """The rate table stores achieved rates and their binomial errors, not counts: both counts come back
    exactly, at 40 MHz and at an HLT input rate, with continuous scores and with ties."""
    from l1ad.serving import thresholds as thr

    rng = np.random.default_rng(6)
    for n, input_khz in ((8000, 40_000.0), (123_457, 40_000.0), (1_000_003, 40_000.0), (50_000, 100.0)):
        for scores in (
            rng.normal(size=n),
            rng.integers(0, 400, n).astype(np.float64),
        ):  # ties at the threshold
            rates = (1.0, 5.0, 10.0, 50.0) if input_khz > 1000 else (0.1, 1.0, 5.0)
            for t in thr.recalibrate(scores, rates, input_khz, "test").thresholds:
                k = int(np.sum(scores > t.value))
                assert drift_flags.calibration_counts(t, input_khz) == ((k, n) if k else None)
    assert drift_flags.calibration_counts(thr.RateThreshold(5.0, 1.0), 40_000.0) is None  # no achieved rate


def test_flag_rate_alerts_beyond_the_factor_with_enough_statistics() -> None:
    k_cal, n_cal, n = 200, 100_000, 100_000  # 0.2% calibrated, 200 flags expected
    up, down, same = (drift_flags.flag_rate_test(n, k, k_cal, n_cal) for k in (800, 40, 200))
    assert up.enough and up.ratio == pytest.approx(4.0) and up.alert  # 4x up
    assert down.alert and down.ratio == pytest.approx(0.2)  # 5x down
    assert same.enough and not same.alert and same.verdict == "ok"
    within = drift_flags.flag_rate_test(n, 400, k_cal, n_cal)  # 2x: significant, but inside the 3x rule
    assert within.p < 1e-6 and not within.alert
    assert drift_flags.flag_rate_test(n, 400, k_cal, n_cal, factor=1.5).alert
    # the ratio is to the calibration's achieved rate k_cal / n_cal, whatever the counts behind it
    assert drift_flags.flag_rate_test(n, 800, 50, 25_000).ratio == pytest.approx(4.0)
    short = drift_flags.flag_rate_test(500, 4, k_cal, n_cal)  # 4x, but 1 flag expected
    assert short.ratio == pytest.approx(4.0) and not short.enough and not short.alert
    assert "too short" in short.verdict
    with pytest.raises(ValueError, match="factor"):
        drift_flags.flag_rate_test(n, 1, k_cal, n_cal, factor=1.0)


def test_flag_rate_needs_enough_calibration_events_above_threshold() -> None:
    """In the limit of an endless window only the calibration count is uncertain: a factor-F rise means
    k_cal is low against a Poisson mean F k_cal, a drop that it is high against k_cal / F. The fewest
    k_cal for which both two-sided p-values (all outcomes no likelier than the observed one, as
    binomtest sums them) fall below alpha -- computed here from that Poisson limit, independently of
    the binomial tests -- is the minimum the check requires; below it nothing alarms."""
    from scipy.stats import poisson

    def p_two_sided(k: int, mu: float) -> float:
        j = np.arange(0, int(mu + 50 * np.sqrt(mu) + 50))
        pmf = poisson.pmf(j, mu)
        return float(min(1.0, pmf[pmf <= poisson.pmf(k, mu) * (1 + 1e-7)].sum()))

    for factor, alpha in ((3.0, 0.005), (3.0, 0.01), (2.0, 0.005), (1.5, 0.005)):
        k = 1
        while not (p_two_sided(k, factor * k) < alpha and p_two_sided(k, k / factor) < alpha):
            k += 1
        m = drift_flags.min_calibration_count(factor, alpha)
        assert m == k, (factor, alpha, m, k)
        few = drift_flags.flag_rate_test(10**9, 10**6, m - 1, 10**6, factor, alpha)  # 1000x, endless window
        assert few.p < 1e-100 and not few.alert and "calibration has" in few.verdict
        assert drift_flags.flag_rate_test(10**9, 10**6, m, 10**6, factor, alpha).alert


def test_flag_rate_false_alarm_rate_is_within_alpha_under_the_exact_null() -> None:
    """The threshold is the calibration's (k+1)-th highest score, so under no drift the window's count is
    exactly BetaBinomial(n_w, k+1, n_cal-k) (distribution-free for continuous scores). Summing that
    distribution over the counts that alarm gives the exact false-alarm rate: at most alpha for the new
    test, far above it for a binomial test against the achieved rate taken as exact (the old test)."""
    from scipy.stats import betabinom, binom

    alpha = 0.01
    for k, n_cal, n_w in ((1, 8000, 100_000), (10, 8000, 100_000), (30, 20_000, 200_000)):
        null = betabinom(n_w, k + 1, n_cal - k)
        counts = np.arange(0, int(null.mean() + 25 * null.std()) + 20)
        pmf = null.pmf(counts)
        assert pmf.sum() > 1 - 1e-9
        res = [drift_flags.flag_rate_test(n_w, int(c), k, n_cal, factor=1.5, alpha=alpha) for c in counts]
        p_alarm = float(pmf[[r.p < alpha for r in res]].sum())
        alert = float(pmf[[r.alert for r in res]].sum())
        frac = k / n_cal
        old_p = np.minimum(1, 2 * np.minimum(binom.sf(counts - 1, n_w, frac), binom.cdf(counts, n_w, frac)))
        assert p_alarm <= alpha and alert <= p_alarm, (k, p_alarm)
        assert float(pmf[old_p < alpha].sum()) > 5 * alpha  # what the old test did


def test_no_flag_rate_alert_from_calibration_noise_alone() -> None:
    """A calibration on 8000 events at 5 kHz puts one event above the threshold. Pick one whose true rate
    (exponential scores: exp(-threshold)) came out 3.5x the target; a million monitored events at that
    true rate -- nothing drifted -- made the old test (binomial against the target rate, 3x rule, 10
    expected flags) alarm; the new test must not."""
    from scipy.stats import binom

    from l1ad.serving import thresholds as thr

    for seed in range(100):
        rng = np.random.default_rng(seed)
        t = thr.recalibrate(rng.exponential(size=8000), (5.0,), 40_000.0, "exponential").thresholds[0]
        if np.exp(-t.value) > 3.5 * 5.0 / 40_000:
            break
    else:
        raise AssertionError("no fluctuated calibration in 100 seeds")
    n = 1_000_000
    k = int(np.sum(rng.exponential(size=n) > t.value))  # the monitored events: the calibration's true rate
    frac = t.rate_khz / 40_000
    old_p = 2 * min(binom.sf(k - 1, n, frac), binom.cdf(k, n, frac))
    assert k / (n * frac) > 3 and n * frac >= 10 and old_p < 0.01  # the old test alarms
    res = drift_flags.flag_rate_test(n, k, *drift_flags.calibration_counts(t, 40_000.0), alpha=0.01)
    assert res.k_calibration == 1 and not res.alert and res.verdict.startswith("not tested")


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
    train_model("ebm", bkg, root / "run", config=TINY_CONFIG, seed=0)
    evaluate_run(root / "run", test, {"Ato4l": sig})
    return {"run": root / "run", "root": root,
            "test": test, "ok": write_events(root / "ok.h5", generate_background(WINDOW, seed=21)),
            "jes": write_parquet_events(root / "jes.parquet", shifted(WINDOW, 22, jes=1.03))}  # fmt: skip


def _table_features(out: str) -> list[str]:
    """The feature column of the drift table in ``l1ad monitor``'s text report (rows after its header)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:2] == ["feature", "test"])
    rows = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        rows.append(line.split()[0])
    return rows


def test_monitor_cli_exit_status_table_and_plot(run, capsys) -> None:
    import matplotlib.pyplot as plt

    import l1ad.serving.drift_plot  # noqa: F401  (it selects the Agg backend: before the snapshot)
    from l1ad.cli.main import main

    png = run["root"] / "jes.png"
    style = dict(plt.rcParams)
    args = ["monitor", str(run["jes"]), "--run", str(run["run"])]
    assert main([*args, "--plot", str(png)]) == 1
    assert dict(plt.rcParams) == style  # the CMS style stayed inside the drift figure
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = capsys.readouterr().out
    assert main([*args, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    inp = doc["input"]
    assert doc["alpha"] == 0.01 and inp["alpha"] == 0.005  # Bonferroni: half of alpha for each family
    below = {
        t["feature"] for t in inp["tests"] if t["p_corrected"] is not None and t["p_corrected"] < inp["alpha"]
    }
    listed = _table_features(text)
    assert listed and len(listed) == len(set(listed)) and set(listed) == below == set(inp["drifted"])
    # only the jet energy scale moved: jets drift, and through them HT and MET -- a jet or HT test among them
    assert all(n.startswith(("jet", "HT", "n_jet", "MET")) for n in listed), listed
    assert any(n.startswith(("jet", "HT")) for n in listed), listed
    assert "DRIFT (input)" in text


def test_monitor_cli_caps_the_events_and_counts_flags_against_the_calibration(run, capsys) -> None:
    from l1ad.cli.main import main
    from l1ad.events.io import read_events
    from l1ad.serving.offline import OfflineScorer, ScorerSpec

    args = ["monitor", str(run["ok"]), "--run", str(run["run"]), "--rate-khz", "50", "--max-events", "4000"]
    assert main(args) == 0
    assert f"first 4000 of {WINDOW} events" in capsys.readouterr().out
    assert main([*args, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["drift"] is False and doc["input"]["drifted"] == []
    assert doc["n_file_events"] == WINDOW and doc["input"]["n_window"] == doc["output"]["n_events"] == 4000
    assert "bkg.h5" in doc["reference"]  # the training file is the default reference
    score = doc["model"]["score"]
    row = next(r for r in json.loads((run["run"] / "evaluation.json").read_text())["rates"][score]
               if r["target_rate_khz"] == 50)  # fmt: skip
    out = doc["output"]
    assert out["expected"] == pytest.approx(4000 * row["achieved_rate_khz"] / 40_000, rel=1e-12)
    scorer = OfflineScorer(ScorerSpec(str(run["run"]), rate_khz=50))  # the calibration, counted here
    try:
        calibration = scorer(read_events(run["test"]))[0]
        monitored = scorer(read_events(run["ok"])[:4000])[1]
    finally:
        scorer.close()
    assert (out["k_calibration"], out["n_calibration"]) == (int(np.sum(calibration > row["threshold"])), 8000)
    assert out["n_flagged"] == int(monitored.sum())


@pytest.mark.allow_error_logs
def test_monitor_cli_refuses_a_changed_training_file_and_bad_input(run, tmp_path) -> None:
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
    assert main(["monitor", str(run["ok"]), "--run", str(run["run"]), "--max-events", "-1"]) == 2


def test_service_metrics_expose_drift_gauges(run) -> None:
    import threading

    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from l1ad.serving.service import Service
    from l1ad.serving.state import ServeConfig

    def monitors() -> set:
        return {t for t in threading.enumerate() if t.name == "drift-monitor" and t.is_alive()}

    service = Service(ServeConfig(run_dir=run["run"], max_delay_us=0.0))
    before = monitors()
    try:
        cfg = DriftConfig(window=2000, alpha=0.01, min_interval_s=0.0)
        service.enable_drift(cfg)
        first = service.drift
        service.enable_drift(cfg)  # a second call replaces the monitor and stops the first one's thread
        assert service.drift is not first and monitors() - before == {service.drift._thread}

        def scrape() -> dict:
            text = generate_latest(service.metrics.registry).decode()
            return {(s.name, s.labels.get("kind")): s.value
                    for f in text_string_to_metric_families(text) for s in f.samples}  # fmt: skip

        t = service.model.threshold(None)
        k_cal, n_cal = drift_flags.calibration_counts(t, service.model.table.input_rate_khz)
        # the tiny run's rate table: its lowest rate has too few calibration events above threshold
        assert k_cal < drift_flags.min_calibration_count(cfg.flag_rate_factor, cfg.alpha)
        for i, events in enumerate((generate_background(2000, seed=31), shifted(2000, 32, pileup_mean=6.5))):
            flagged = 0
            for lo in range(0, 2000, 500):  # four requests per window
                flagged += int(service.score_sync(events[lo : lo + 500], None).flags.sum())
            assert service.drift.wait(i + 1), "no drift evaluation ran"
            m = scrape()
            assert m[("l1ad_drift_window_events", None)] == 2000
            assert m[("l1ad_drift_alert", "input")] == i  # unshifted: 0, pileup: 1
            assert (m[("l1ad_drift_features_drifted", None)] > 0) == bool(i)
            # no length resolves a factor 3 from such a calibration: the flag window is the input window's
            assert m[("l1ad_flag_rate_window_events", None)] == 2000
            assert m[("l1ad_flag_rate_ratio", None)] == pytest.approx(flagged / (2000 * k_cal / n_cal))
            assert m[("l1ad_flag_rate_tested", None)] == 0 and m[("l1ad_drift_alert", "output")] == 0
        assert m[("l1ad_drift_min_corrected_p", None)] < 0.01
        assert m[("l1ad_drift_evaluations_total", None)] == 2
    finally:
        service.close()
    assert not monitors() - before


class _Model:
    """What :meth:`DriftMonitor.observe` reads of a served model: a threshold whose rate-table row says
    200 of 100k calibration events lie above it."""

    name, version = "fake", 1
    table = type("Table", (), {"input_rate_khz": 40_000.0})()

    def threshold(self, rate_khz):
        from l1ad.serving.thresholds import RateThreshold

        p = 200 / 100_000
        return RateThreshold(80.0, 0.5, p * 40_000, np.sqrt(p * (1 - p) / 100_000) * 40_000)


def test_monitor_sizes_the_flag_window_to_resolve_the_factor_and_alerts(reference) -> None:
    from prometheus_client import generate_latest

    from l1ad.serving.drift_monitor import DriftMonitor
    from l1ad.serving.metrics import ServiceMetrics

    cfg = DriftConfig(window=2000, alpha=0.01)
    metrics = ServiceMetrics()
    mon = DriftMonitor(cfg, reference[1], metrics, start=False)
    events = generate_background(2000, seed=41)
    rng = np.random.default_rng(42)
    mon.observe(events, np.zeros(2000), _Model())
    size = len(mon._flags.ring.data)
    assert cfg.window < size <= cfg.max_flag_window and all(
        drift_flags.resolves(size, 200, 100_000, 3.0, 0.01)
    )
    assert not all(drift_flags.resolves(cfg.window, 200, 100_000, 3.0, 0.01))  # the input window is too short
    for _ in range(-(-size // 2000)):  # a full flag window at 4x the calibrated 0.2%
        mon.observe(events, (rng.random(2000) < 0.008).astype(np.float64), _Model())
    out = mon.evaluate()["output"]
    assert out.n_events == size and out.enough and out.ratio > 3 and out.alert
    text = generate_latest(metrics.registry).decode()
    assert 'l1ad_drift_alert{kind="output"} 1.0' in text and "l1ad_flag_rate_tested 1.0" in text
    mon.close()


def test_summaries_of_chunks_combine_to_the_summary_of_the_whole() -> None:
    p = generate_background(7000, seed=51)
    whole = drift.Summary.of(p)
    parts = drift.Summary.combine(
        [drift.Summary.of(p[a:b]) for a, b in ((0, 3000), (3000, 3001), (3001, 7000))]
    )
    assert parts.n_events == whole.n_events
    assert_array_equal(parts.present, whole.present)
    assert (
        parts.values.keys() == whole.values.keys() and parts.multiplicity.keys() == whole.multiplicity.keys()
    )
    for name in whole.values:
        assert_array_equal(parts.values[name], whole.values[name])
    for name in whole.multiplicity:
        assert_array_equal(parts.multiplicity[name], whole.multiplicity[name])


def test_reference_hash_of_the_training_rows_equals_data_hash(tmp_path, monkeypatch) -> None:
    """The reference hashes the training rows block by block; it must equal ``data_hash`` of those rows
    (what training recorded), for any block size and a row count that is not a block multiple."""
    from l1ad.events.io import data_hash, read_events, write_events
    from l1ad.serving import drift_reference

    path = write_events(tmp_path / "bkg.h5", generate_background(5000, seed=61))
    particles = read_events(path)
    monkeypatch.setattr(drift_reference, "CHUNK", 1234)
    rows = 3001
    sample = drift_reference.sample_events(path, 500, 0, rows, data_hash(particles[:rows]))
    assert len(sample) == 500
    for wrong in (data_hash(particles[: rows - 1]), data_hash(particles[: rows + 1]), data_hash(particles)):
        with pytest.raises(ValueError, match="data_sha256"):
            drift_reference.sample_events(path, 500, 0, rows, wrong)
