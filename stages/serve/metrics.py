"""The service's Prometheus metrics (the one module that uses prometheus_client).

Each app gets its own registry, so several apps in one process (tests) do not
collide.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SCORE_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096)
CONTENT_TYPE = CONTENT_TYPE_LATEST
# the *_created series double the output for no use here
disable_created_metrics()  # type: ignore[no-untyped-call]


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "driftloop_requests", "HTTP requests by path and status", ["path", "status"], registry=r
        )
        self.latency = Histogram(
            "driftloop_request_seconds",
            "Request latency (server side) by path",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.score = Histogram(
            "driftloop_prediction_score",
            "Predicted score: probability of the positive (binary) or chosen (multiclass) class",
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.value = Histogram(
            "driftloop_prediction_value", "Predicted value (regression)", registry=r
        )
        self.batch_rows = Histogram(
            "driftloop_batch_rows", "Rows per model call", buckets=BATCH_BUCKETS, registry=r
        )
        self.model = Gauge(
            "driftloop_model_info", "The model version being served", ["version"], registry=r
        )
        self.reloads = Counter(
            "driftloop_model_reloads", "Model reloads by outcome", ["outcome"], registry=r
        )
        self.logged = Counter(
            "driftloop_prediction_log_rows", "Rows written to the prediction log", registry=r
        )
        self._children: dict[tuple[str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        key = (path, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.requests.labels(path, str(status))
        child.inc()
        timer = self._timers.get(path)
        if timer is None:
            timer = self._timers[path] = self.latency.labels(path)
        timer.observe(seconds)

    def observe_scores(self, label: np.ndarray, proba: np.ndarray | None) -> None:
        if proba is None:
            for value in label.tolist():
                self.value.observe(value)
            return
        primary = proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
        for value in primary.tolist():
            self.score.observe(value)

    def serving(self, version: str) -> None:
        self.model.clear()
        self.model.labels(version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
