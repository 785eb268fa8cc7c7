"""Prometheus metrics of the service (base units, conventional names), in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

#: Request latency buckets, 10 us .. 100 ms (and beyond), in seconds.
LATENCY_BUCKETS = (
    1e-5,
    2.5e-5,
    5e-5,
    1e-4,
    2.5e-4,
    5e-4,
    1e-3,
    2.5e-3,
    5e-3,
    1e-2,
    2.5e-2,
    5e-2,
    0.1,
    0.25,
    1.0,
)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "l1ad_requests", "Requests by endpoint and status code", ["endpoint", "code"], registry=r
        )
        self.duration = Histogram("l1ad_request_duration_seconds", "Request latency", ["endpoint"],
                                  buckets=LATENCY_BUCKETS, registry=r)  # fmt: skip
        self.events = Counter("l1ad_events_scored", "Events scored", ["model"], registry=r)
        self.flagged = Counter("l1ad_flagged_events", "Events flagged (score > threshold)", ["model", "rate_khz"],
                               registry=r)  # fmt: skip
        self.flag_rate = Gauge("l1ad_flag_ratio", "Flagged fraction of the events scored since start",
                               ["model", "rate_khz"], registry=r)  # fmt: skip
        self.batch_events = Histogram("l1ad_batch_events", "Events per model call (dynamic batching)",
                                      buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384, 65536), registry=r)  # fmt: skip
        self.shadow_corr = Gauge("l1ad_shadow_score_correlation", "Pearson correlation of primary and shadow scores",
                                 registry=r)  # fmt: skip
        self.shadow_disagree = Gauge("l1ad_shadow_flag_disagreement_ratio",
                                     "Fraction of events whose flag differs between primary and shadow", registry=r)  # fmt: skip
        self.shadow_events = Counter("l1ad_shadow_events", "Events scored by the shadow model", registry=r)
        self.shadow_skipped = Counter("l1ad_shadow_skipped_events", "Events the shadow skipped (backlog full)",
                                      registry=r)  # fmt: skip
        self.reloads = Counter("l1ad_model_reloads", "Model reloads by outcome", ["outcome"], registry=r)
        self.build = Info("l1ad_build", "Served model and l1ad version", registry=r)
        # drift monitor (l1ad.serving.drift_monitor): values of the last evaluated window
        self.drift_features = Gauge("l1ad_drift_features_drifted",
                                    "Input-drift tests with Holm-corrected p below alpha", registry=r)  # fmt: skip
        self.drift_min_p = Gauge("l1ad_drift_min_corrected_p", "Smallest Holm-corrected input-drift p-value",
                                 registry=r)  # fmt: skip
        self.drift_alert = Gauge("l1ad_drift_alert", "1 when drift is detected (kind: input, output)", ["kind"],
                                 registry=r)  # fmt: skip
        self.drift_window = Gauge("l1ad_drift_window_events", "Events in the input-drift window", registry=r)
        self.drift_evaluations = Counter("l1ad_drift_evaluations", "Drift evaluations run", registry=r)
        self.drift_seconds = Gauge("l1ad_drift_evaluation_seconds", "CPU seconds of the last drift evaluation",
                                   registry=r)  # fmt: skip
        self.flag_rate_ratio = Gauge("l1ad_flag_rate_ratio", "Observed / expected flag rate in the flag-rate window",
                                     registry=r)  # fmt: skip
        self.flag_rate_window = Gauge(
            "l1ad_flag_rate_window_events", "Events in the flag-rate window", registry=r
        )
        self.flag_rate_expected = Gauge("l1ad_flag_rate_expected_events",
                                        "Flags expected in the flag-rate window at the calibration's rate",
                                        registry=r)  # fmt: skip
        self.flag_rate_tested = Gauge("l1ad_flag_rate_tested",
                                      "1 when the flag-rate window resolves a factor-F change both ways",
                                      registry=r)  # fmt: skip
