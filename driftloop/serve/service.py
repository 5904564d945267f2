"""What one serving process holds per data set: the champion (and a second
model beside it), the batcher, the log, the metrics.

The HTTP layer (``driftloop.serve.app``) is thin over this. A request's records
are validated, queued for the micro-batcher, scored with the champion of the
moment, logged and answered; a watcher swaps in a new model when a role's key
changes (driftloop.serve.roles), and the batch in flight finishes on the models
it began with.

A second model (a challenger, else the previous champion) scores every record
too: in shadow, off the answer's path (driftloop.serve.shadow), or, for a
canary challenger, by answering the records whose key falls in its share while
the champion scores those in shadow. Each log row carries both models' outputs.
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
from driftloop.core import rollout
from driftloop.core.champion import CHAMPION, PARAMS_FILE, ROLES
from driftloop.core.plan import plan
from driftloop.core.predictor import Outputs, Scores, input_columns, to_columns
from driftloop.core.rollout import in_canary
from driftloop.errors import ConfigError
from driftloop.serve import champion as champions
from driftloop.serve import request as requests
from driftloop.serve.batcher import Job, MicroBatcher
from driftloop.serve.child import ChildScorer
from driftloop.serve.metrics import ModelMetrics
from driftloop.serve.predlog import Entry, PredictionLog, log_schema
from driftloop.serve.roles import Roles
from driftloop.serve.shadow import ShadowJob, ShadowWorker, shadow_fields

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
        self.id_column = data.columns.id
        self.outputs = Outputs.of(data)
        self.metrics = metrics
        sources = {
            role: champions.source(config, settings.root, settings.models, role) for role in ROLES
        }
        self.roles = Roles(sources, self.probe, self._loaded, metrics)
        schema = log_schema(
            {c: data.schema[c] for c in [*inputs, *self.extras]}, self.outputs.arrow_types(data)
        )
        self.log = PredictionLog(
            settings.log_dir / data.name,
            schema,
            config.serve.flush_seconds,
            self.metrics.logged.inc,
        )
        serve = config.serve
        probe = to_columns([self.request.example], self.request.inputs, self.request.types)
        scorer = ChildScorer(serve.model_threads, probe, serve.shadow_nice)
        capacity = 2 * serve.max_batch_rows
        self.shadow = ShadowWorker(
            self.outputs, self.log.append, metrics.shadowed, capacity, scorer
        )
        self.batcher: MicroBatcher[Answer] = MicroBatcher(self.score, serve.max_batch_rows)
        self.batcher.on_batch = self.metrics.batch_rows.observe
        self.api_key = _api_key(config)

    @property
    def champion(self) -> champions.Champion | None:
        return self.roles.champion

    @property
    def second(self) -> champions.Champion | None:
        """The challenger, else the previous champion: scores beside the champion."""
        return self.roles.second

    async def start(self) -> None:
        self.log.start()
        self.shadow.start()
        await self.refresh()
        self.batcher.start()

    async def stop(self) -> None:
        """Answer what is queued, let the second model score it, write the log."""
        await self.batcher.stop()
        await asyncio.to_thread(self.shadow.close)
        self.log.close()

    # --- scoring ---------------------------------------------------------------------

    def score(self, jobs: list[Job]) -> list[Answer]:
        """Score every job's records in one model call (two for a canary) and log them."""
        current, second = self.champion, self.second
        if current is None:
            raise RuntimeError("no model loaded")
        records = [r for job in jobs for r in job.records]
        columns = to_columns(records, self.request.inputs, self.request.types)
        if second is not None and second.rollout.canary:
            return self._canary(jobs, records, columns, current, second)
        scores, ms = _timed(current, columns)
        answers, start = [], 0
        for job in jobs:
            stop = start + len(job.records)
            answers.append(Answer(current.version, self.outputs.rows(scores, start, stop)))
            start = stop
        rows = len(records)
        entry = self._entry(jobs, records, columns) | self._answered(current, scores, ms, rows)
        if second is None:
            self.log.append(Entry(entry, rows))
        else:
            self.shadow.submit(ShadowJob(entry, rows, columns, second))
        self.metrics.observe_scores(scores.label, scores.proba)
        self.metrics.answered(CHAMPION, rows)
        return answers

    def _entry(
        self, jobs: list[Job], records: list[dict[str, Any]], columns: dict[str, np.ndarray]
    ) -> dict[str, Any]:
        """The log columns of the records themselves: ids, time, inputs."""
        rows = len(records)
        ids = [job.request_id for job in jobs for _ in job.records]
        index = np.concatenate([np.arange(len(job.records), dtype="int32") for job in jobs])
        stamp = np.full(rows, np.datetime64(time.time_ns() // 1000, "us"))
        return {
            "request_id": ids,
            "record": index,
            "logged_at": stamp,
            **columns,
            **{c: [r.get(c) for r in records] for c in self.extras if c not in columns},
        }

    def _answered(
        self, model: champions.Champion, scores: Scores, ms: float, rows: int
    ) -> dict[str, Any]:
        """The log columns of the answer: which model gave it, how fast, what it said."""
        return {
            "model_version": [model.version] * rows,
            rollout.ROLE: [model.role] * rows,
            rollout.MODEL_MS: np.full(rows, ms),
            **self.outputs.columns(scores),
        }

    # --- a canary ---------------------------------------------------------------------

    def _canary(
        self,
        jobs: list[Job],
        records: list[dict[str, Any]],
        columns: dict[str, np.ndarray],
        champion: champions.Champion,
        challenger: champions.Champion,
    ) -> list[Answer]:
        """The challenger answers the records whose key falls in its share, the
        champion the others; each model scores the other's rows in shadow."""
        share = challenger.rollout.canary_share
        picked = np.fromiter((in_canary(k, share) for k in self._keys(jobs)), bool, len(records))
        base = self._entry(jobs, records, columns)
        predictions: list[dict[str, Any]] = [{} for _ in records]
        groups = ((champion, challenger, ~picked), (challenger, champion, picked))
        for answering, other, mask in groups:
            index = np.flatnonzero(mask)
            if len(index):
                group = Group(index, _rows(columns, index), _rows(base, index))
                self._answer_group(group, answering, other, predictions)
        answers, start = [], 0
        for job in jobs:
            stop = start + len(job.records)
            answers.append(Answer(champion.version, predictions[start:stop]))
            start = stop
        return answers

    def _keys(self, jobs: list[Job]) -> list[str]:
        """Each record's canary key: its id when it has one, else its request's id."""
        column = self.id_column
        keys = []
        for job in jobs:
            for record in job.records:
                value = record.get(column) if column else None
                keys.append(job.request_id if value is None else str(value))
        return keys

    def _answer_group(
        self,
        group: Group,
        answering: champions.Champion,
        other: champions.Champion,
        predictions: list[dict[str, Any]],
    ) -> None:
        rows = len(group.index)
        try:
            scores, ms = _timed(answering, group.columns)
        except Exception as exc:
            if answering.role == CHAMPION:
                raise
            scores = self._canary_failed(group, answering, other, exc)
            answering = other
        else:
            entry = group.entry | self._answered(answering, scores, ms, rows)
            self.shadow.submit(ShadowJob(entry, rows, group.columns, other))
        answered = self.outputs.rows(scores, 0, rows)
        if answering.role != CHAMPION:  # the response names the model of these answers
            for each in answered:
                each["model_version"] = answering.version
        for position, each in zip(group.index.tolist(), answered, strict=True):
            predictions[position] = each
        self.metrics.observe_scores(scores.label, scores.proba)
        self.metrics.answered(answering.role, rows)

    def _canary_failed(
        self,
        group: Group,
        canary: champions.Champion,
        champion: champions.Champion,
        exc: Exception,
    ) -> Scores:
        """A canary that fails never fails a request: the champion answers its
        rows, which are logged with the canary's status ``error``."""
        rows = len(group.index)
        log.warning(
            "serve: the %s (version %s) failed to answer %d canary record(s): %s: %s; "
            "the champion answered them", canary.role, canary.version, rows,
            type(exc).__name__, exc,
        )  # fmt: skip
        scores, ms = _timed(champion, group.columns)
        entry = group.entry | self._answered(champion, scores, ms, rows)
        self.log.append(Entry(entry | shadow_fields(canary, rollout.ERROR, rows), rows))
        self.metrics.shadowed(canary.role, rollout.ERROR, rows)
        return scores

    # --- the models ------------------------------------------------------------------

    def probe(self, predictor: Any) -> None:
        """The example record must score to finite numbers."""
        columns = to_columns([self.request.example], self.request.inputs, self.request.types)
        predictor.check_compiled(columns)
        scores = predictor.predict(columns)
        numbers = scores.proba if scores.proba is not None else scores.label
        if not np.isfinite(np.asarray(numbers, dtype="float64")).all():
            raise ValueError("the model gave a non-finite answer to the probe record")

    def _loaded(self, loaded: champions.Champion) -> None:
        """Before a model is swapped in: a second model goes to the shadow scoring
        process; a multiclass model's class columns (as the answer's and as the
        second model's) join the log."""
        if loaded.role != CHAMPION:
            self.shadow.prepare(loaded)
        if self.outputs.problem is Problem.multiclass:
            names = self.outputs.class_columns(loaded.predictor.classes)
            columns = [*names, *(rollout.shadow_column(name) for name in names)]
            self.log.add_columns({name: pa.float64() for name in columns})

    async def refresh(self) -> bool:
        """Load whichever role's model changed; True when the champion was swapped."""
        return await self.roles.refresh()

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


@dataclass(frozen=True)
class Group:
    """The rows of a micro-batch one model answers (a canary splits it in two)."""

    index: np.ndarray  # positions in the micro-batch
    columns: dict[str, np.ndarray]  # their inputs
    entry: dict[str, Any]  # their log columns so far


def _timed(model: champions.Champion, columns: dict[str, np.ndarray]) -> tuple[Scores, float]:
    """The model's scores and its time per row, ms."""
    started = time.perf_counter()
    scores = model.predictor.predict(columns)
    return scores, (time.perf_counter() - started) * 1e3 / len(next(iter(columns.values())))


def _rows(columns: dict[str, Any], index: np.ndarray) -> dict[str, Any]:
    """The rows at ``index`` of every column (numpy arrays or lists)."""
    out: dict[str, Any] = {}
    for name, values in columns.items():
        if isinstance(values, np.ndarray):
            out[name] = values[index]
        else:
            out[name] = [values[i] for i in index.tolist()]
    return out


def _api_key(config: DriftloopConfig) -> str | None:
    serve = config.serve
    from_env = os.environ.get(serve.api_key_env) if serve.api_key_env else None
    return from_env or serve.api_key or None
