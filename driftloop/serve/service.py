"""What one serving process holds per data set: the champion, the batcher, the
log, the metrics.

The HTTP layer (``driftloop.serve.app``) is thin over this. A request's records
are validated, queued for the micro-batcher, scored with the champion of the
moment, logged and answered; a watcher swaps in a new champion when the
source's key changes, and the batch in flight finishes on the model it began
with.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from driftloop.config.compose import load
from driftloop.config.schema import DriftloopConfig, Problem
from driftloop.core.champion import PARAMS_FILE
from driftloop.core.plan import plan
from driftloop.core.predictor import Outputs, Scores, input_columns, to_columns
from driftloop.errors import ConfigError
from driftloop.serve import champion as champions
from driftloop.serve import request as requests
from driftloop.serve.batcher import Job, MicroBatcher
from driftloop.serve.metrics import ModelMetrics
from driftloop.serve.predlog import Entry, PredictionLog, log_schema

log = logging.getLogger("driftloop.serve")


@dataclass(frozen=True)
class Settings:
    config: DriftloopConfig
    root: Path
    models: Path
    log_dir: Path


@dataclass(frozen=True)
class Answer:
    version: str
    predictions: list[dict[str, Any]]


def data_sets(settings: Settings) -> dict[str, DriftloopConfig]:
    """What each served data set is, the composed one (the default) first.

    Another data set's data, features and expectations are those its champion
    was trained with (the params.yaml beside it); the process's serve and
    tracking settings apply to all."""
    composed = settings.config
    found = {composed.data.name: composed}
    for name in composed.serve.models:
        if name in found:
            continue
        params = settings.models / name / "champion" / PARAMS_FILE
        if not params.is_file():
            raise ConfigError(
                f"serve.models lists '{name}', but {params} is missing: promote a champion of "
                f"'{name}' first (compose it and run `dvc repro`)"
            )
        config = load(params, name=f"serve.models '{name}': {params}")
        found[name] = replace(config, serve=composed.serve, tracking=composed.tracking)
    return found


class Service:
    def __init__(self, config: DriftloopConfig, settings: Settings, metrics: ModelMetrics) -> None:
        self.config = config
        data = config.data
        feature_plan = plan(config.features, data)
        inputs = input_columns(data, feature_plan)
        self.request = requests.build(data, inputs, config.expectations, config.serve.max_records)
        self.extras = [c for c in (data.columns.id, data.columns.timestamp) if c]
        self.outputs = Outputs.of(data)
        self.metrics = metrics
        self.source = champions.source(config, settings.root, settings.models)
        self.champion: champions.Champion | None = None
        self._failed_key: str | None = None
        schema = log_schema(
            {c: data.schema[c] for c in [*inputs, *self.extras]}, self.outputs.arrow_types(data)
        )
        self.log = PredictionLog(
            settings.log_dir / data.name,
            schema,
            config.serve.flush_seconds,
            self.metrics.logged.inc,
        )
        self.batcher: MicroBatcher[Answer] = MicroBatcher(self.score, config.serve.max_batch_rows)
        self.batcher.on_batch = self.metrics.batch_rows.observe
        self.api_key = _api_key(config)

    # --- scoring ---------------------------------------------------------------------

    def score(self, jobs: list[Job]) -> list[Answer]:
        """Score every job's records in one model call and log them."""
        current = self.champion
        if current is None:
            raise RuntimeError("no model loaded")
        records = [r for job in jobs for r in job.records]
        columns = to_columns(records, self.request.inputs, self.request.types)
        scores = current.predictor.predict(columns)
        answers, start = [], 0
        for job in jobs:
            stop = start + len(job.records)
            answers.append(Answer(current.version, self.outputs.rows(scores, start, stop)))
            start = stop
        self.log.append(self._entry(jobs, records, columns, scores, current.version))
        self.metrics.observe_scores(scores.label, scores.proba)
        return answers

    def _entry(
        self,
        jobs: list[Job],
        records: list[dict[str, Any]],
        columns: dict[str, np.ndarray],
        scores: Scores,
        version: str,
    ) -> Entry:
        rows = len(records)
        ids = [job.request_id for job in jobs for _ in job.records]
        index = np.concatenate([np.arange(len(job.records), dtype="int32") for job in jobs])
        stamp = np.full(rows, np.datetime64(time.time_ns() // 1000, "us"))
        out: dict[str, Any] = {
            "request_id": ids,
            "record": index,
            "logged_at": stamp,
            "model_version": [version] * rows,
            **columns,
            **{c: [r.get(c) for r in records] for c in self.extras if c not in columns},
            **self.outputs.columns(scores),
        }
        return Entry(out, rows)

    def probe(self, predictor: Any) -> None:
        """The example record must score to finite numbers."""
        columns = to_columns([self.request.example], self.request.inputs, self.request.types)
        predictor.check_compiled(columns)
        scores = predictor.predict(columns)
        numbers = scores.proba if scores.proba is not None else scores.label
        if not np.isfinite(np.asarray(numbers, dtype="float64")).all():
            raise ValueError("the model gave a non-finite answer to the probe record")

    # --- the champion ------------------------------------------------------------------

    async def refresh(self) -> bool:
        """Load the champion if the source points somewhere new; True on a swap."""
        key = await asyncio.to_thread(self.source.key)
        current = self.champion
        if key is None or key == self._failed_key or (current and current.key == key):
            return False
        try:
            loaded = await asyncio.to_thread(self._load, key)
        except Exception as exc:
            self._failed_key = key
            self.metrics.reloaded("failed")
            log.error("serve: cannot load the new champion (%s): %s; keeping the old one", key, exc)
            return False
        if self.outputs.problem is Problem.multiclass:
            names = self.outputs.class_columns(loaded.predictor.classes)
            self.log.add_columns({name: pa.float64() for name in names})
        self.champion = loaded
        self.metrics.reloaded("loaded")
        self.metrics.serving(loaded.version)
        log.info("serve: now serving version %s (%s)", loaded.version, loaded.info.get("source"))
        return True

    def _load(self, key: str) -> champions.Champion:
        loaded = self.source.load(key)
        self.probe(loaded.predictor)
        return loaded

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(self.config.serve.reload_seconds)
            try:
                await self.refresh()
            except Exception:
                log.exception("serve: checking for a new champion failed")

    def version(self) -> str | None:
        current = self.champion
        return None if current is None else current.version

    def ready(self) -> bool:
        current = self.champion
        if current is None:
            return False
        try:
            self.probe(current.predictor)
        except Exception:
            return False
        return True

    def key_ok(self, given: str | None) -> bool:
        if self.api_key is None:
            return True
        return given is not None and hmac.compare_digest(given.encode(), self.api_key.encode())


def _api_key(config: DriftloopConfig) -> str | None:
    serve = config.serve
    from_env = os.environ.get(serve.api_key_env) if serve.api_key_env else None
    return from_env or serve.api_key or None
