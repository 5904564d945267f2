"""The service's Prometheus metrics (the one module that uses prometheus_client).

One process (the default): each app gets its own registry, so several apps in
one process (tests) do not collide.

Several worker processes: prometheus_client's multiprocess mode. It is on when
PROMETHEUS_MULTIPROC_DIR names a folder before prometheus_client is first
imported (`driftloop serve --workers N` sets it to a fresh folder before it
starts the workers; other servers, e.g. gunicorn, need it set in their
environment). Every process then writes its values to files in that folder and
/metrics, from whichever worker answers, merges all of them: counters and
histograms are the sums over every worker that ever ran, and
``driftloop_model_info`` lists, per live worker (label ``pid``), the version it
serves.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric

from driftloop.core.host import alive

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SCORE_BUCKETS = tuple(round(0.1 * i, 1) for i in range(1, 11))
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096)
CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MODEL_INFO = "driftloop_model_info"
ROLE_INFO = "driftloop_model_role_info"
# the *_created series double the output for no use here
disable_created_metrics()  # type: ignore[no-untyped-call]


def shared_folder() -> Path | None:
    """The multiprocess folder when prometheus_client runs in multiprocess mode.

    The mode is fixed when prometheus_client is imported; a folder named later
    is not used by the values, so it is not read either."""
    if not getattr(values.ValueClass, "_multiprocess", False):
        return None
    folder = Path(os.environ.get(MULTIPROC_ENV, ""))
    if not str(folder) or not folder.is_dir():
        raise RuntimeError(
            f"{MULTIPROC_ENV}={os.environ.get(MULTIPROC_ENV, '')!r} is not a folder: set it to "
            "an empty folder before the server starts (each start a fresh one)"
        )
    return folder


class ServiceMetrics:
    """The process's metrics: requests by path, and per data set (label ``data``)
    the model's scores, calls, version, reloads and logged rows."""

    def __init__(self) -> None:
        self.folder = shared_folder()
        self.registry = CollectorRegistry()
        # multiprocess mode: the values live in the folder's files, which Workers reads
        r = self.registry if self.folder is None else None
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
            ["data"],
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.value = Histogram(
            "driftloop_prediction_value", "Predicted value (regression)", ["data"], registry=r
        )
        self.batch_rows = Histogram(
            "driftloop_batch_rows",
            "Rows per model call",
            ["data"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.model = Gauge(
            MODEL_INFO,
            "The model version being served, per data set",
            ["data", "version"],
            registry=r,
            multiprocess_mode="liveall",
        )
        self.reloads = Counter(
            "driftloop_model_reloads", "Model reloads by outcome", ["data", "outcome"], registry=r
        )
        self.logged = Counter(
            "driftloop_prediction_log_rows",
            "Rows written to the prediction log",
            ["data"],
            registry=r,
        )
        self._rollout(r)
        if self.folder is not None:
            self.registry.register(Workers(self.folder))
        self._children: dict[tuple[str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    def _rollout(self, r: CollectorRegistry | None) -> None:
        """The series of the roles: champion, challenger, previous."""
        self.predictions = Counter(
            "driftloop_predictions",
            "Predictions answered, by the role of the model that answered",
            ["data", "role"],
            registry=r,
        )
        self.shadow_rows = Counter(
            "driftloop_shadow_rows",
            "Rows a second model scored off the answer's path, by its role and status "
            "(ok; error: it failed; skipped: it was too far behind)",
            ["data", "role", "status"],
            registry=r,
        )
        self.reload_failures = Counter(
            "driftloop_model_reload_failures",
            "Models refused on (re)load (load or probe failed), by role",
            ["data", "role"],
            registry=r,
        )
        self.roles = Gauge(
            ROLE_INFO,
            "The model version loaded in each role, per data set",
            ["data", "role", "version"],
            registry=r,
            multiprocess_mode="liveall",
        )

    def of(self, data: str) -> ModelMetrics:
        """The series of one data set's model."""
        return ModelMetrics(self, data)

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

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def close(self) -> None:
        """The process stops serving: its model versions leave the merged info gauge."""
        if self.folder is not None:
            multiprocess.mark_process_dead(os.getpid(), str(self.folder))  # type: ignore[no-untyped-call]


class ModelMetrics:
    """One data set's series, their label bound once (not on every request)."""

    def __init__(self, metrics: ServiceMetrics, data: str) -> None:
        self.metrics = metrics
        self.data = data
        self.score = metrics.score.labels(data)
        self.value = metrics.value.labels(data)
        self.batch_rows = metrics.batch_rows.labels(data)
        self.logged = metrics.logged.labels(data)
        self._version: str | None = None
        self._roles: dict[str, str] = {}
        self._children: dict[tuple[object, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        """A series of this data set, its labels bound once."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(self.data, *labels)
        return child

    def answered(self, role: str, rows: int) -> None:
        self._child(self.metrics.predictions, role).inc(rows)

    def shadowed(self, role: str, status: str, rows: int) -> None:
        self._child(self.metrics.shadow_rows, role, status).inc(rows)

    def refused(self, role: str) -> None:
        self._child(self.metrics.reload_failures, role).inc()

    def role(self, role: str, version: str | None) -> None:
        """The version loaded in ``role`` now (None: none)."""
        gauge, old = self.metrics.roles, self._roles.pop(role, None)
        if old is not None and old != version:
            if self.metrics.folder is None:
                gauge.remove(self.data, role, old)
            else:  # a file's entries cannot be removed: 0 marks it no longer loaded
                gauge.labels(self.data, role, old).set(0)
        if version is not None:
            gauge.labels(self.data, role, version).set(1)
            self._roles[role] = version

    def observe_scores(self, label: np.ndarray, proba: np.ndarray | None) -> None:
        if proba is None:
            for value in label.tolist():
                self.value.observe(value)
            return
        primary = proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
        for value in primary.tolist():
            self.score.observe(value)

    def reloaded(self, outcome: str) -> None:
        self.metrics.reloads.labels(self.data, outcome).inc()

    def serving(self, version: str) -> None:
        model = self.metrics.model
        if self._version is not None and self._version != version:
            if self.metrics.folder is None:
                model.remove(self.data, self._version)
            else:  # a file's entries cannot be removed: 0 marks the version no longer served
                model.labels(self.data, self._version).set(0)
        model.labels(self.data, version).set(1)
        self._version = version


class Workers:
    """Every worker's values, merged from the multiprocess folder.

    A worker that died without stopping (killed) leaves its live gauge file: it
    is removed here, so the info gauges show live workers only. Versions set to
    0 (no longer served) are left out."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.merged = multiprocess.MultiProcessCollector(None, str(folder))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Metric]:
        forget_dead_workers(self.folder)
        for metric in self.merged.collect():  # type: ignore[no-untyped-call]
            if metric.name in (MODEL_INFO, ROLE_INFO):
                metric.samples = [s for s in metric.samples if s.value]
            yield metric


def forget_dead_workers(folder: Path) -> None:
    for name in glob.glob(str(folder / "gauge_live*_*.db")):
        pid = int(Path(name).stem.rsplit("_", 1)[1])
        if not alive(pid):
            multiprocess.mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]
