"""The second model's scoring, off the answer's path.

A micro-batch answered by one model is handed here with the rows it logs; one
background thread has them scored by the other model (a challenger in shadow,
the previous champion during its watch, or the champion beside a canary's
answers) in a child process (driftloop.serve.child), adds that model's
outputs, status and time to the rows and appends them to the prediction log.
The answer never waits for any of it.

The thread lets rows gather before it sends them (``call_rows``, or
``linger_seconds`` at most), so the serving process pays one round trip per
couple of thousand rows; the child scores each micro-batch on its own, as the
answering model did, so that the two models' times per row compare. The queue
is bounded (``capacity`` rows): a batch that finds it full is logged at once
without the second model's outputs (status ``skipped``), so a slow second model
costs memory and log rows, never answers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from driftloop.core import rollout
from driftloop.core.predictor import Outputs
from driftloop.serve.champion import Champion
from driftloop.serve.child import Abandoned, ChildScorer
from driftloop.serve.predlog import Entry

log = logging.getLogger("driftloop.serve")
# rows per second-model call the thread waits for, and how long it waits at most:
# at 3,000 rows/s a call every 0.7 s (the log is written every serve.flush_seconds)
CALL_ROWS = 2048
LINGER_SECONDS = 1.0
# a failing second model is reported once per version per this many seconds
ERROR_LOG_SECONDS = 60.0
# on stopping, how long the rows still queued may take to score (uvicorn waits 30 s)
CLOSE_SECONDS = 20.0


@dataclass(frozen=True)
class ShadowJob:
    """One micro-batch's rows (or one canary group's) as answered and logged."""

    entry: dict[str, Any]  # the log columns of the rows, the answering model's included
    rows: int
    columns: Mapping[str, np.ndarray]  # the inputs the second model scores
    model: Champion  # the second model


Append = Callable[[Entry], None]
Count = Callable[[str, str, int], None]  # role, status, rows


def shadow_fields(model: Champion, status: str, rows: int) -> dict[str, Any]:
    """Who scored the rows off the answer's path, and how it went."""
    return {
        rollout.SHADOW_ROLE: [model.role] * rows,
        rollout.SHADOW_VERSION: [model.version] * rows,
        rollout.SHADOW_STATUS: [status] * rows,
    }


class ShadowWorker:
    """A bounded queue of micro-batches and the one thread that scores them."""

    def __init__(
        self, outputs: Outputs, append: Append, count: Count, capacity: int, scorer: ChildScorer
    ) -> None:
        self.outputs = outputs
        self.append = append
        self.count = count
        self.capacity = capacity
        self.scorer = scorer
        self.call_rows = CALL_ROWS
        self.linger_seconds = LINGER_SECONDS
        self.max_call_rows = max(capacity // 2, 1)
        self._jobs: deque[ShadowJob] = deque()
        self._queued = 0
        self._ready = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._reported: dict[str, float] = {}

    # --- the answer's side -------------------------------------------------------------

    def submit(self, job: ShadowJob) -> None:
        """Queue the rows for the second model, or log them as skipped when the
        queue is full (or closed)."""
        with self._ready:
            full = self._closed or (self._queued and self._queued + job.rows > self.capacity)
            if not full:
                self._jobs.append(job)
                self._queued += job.rows
                # wake the thread for the first rows (it then lingers) and once enough gathered
                if len(self._jobs) == 1 or self._queued >= self.call_rows:
                    self._ready.notify()
        if full:
            self._finish(job.model, [job], rollout.SKIPPED)

    # --- the thread ----------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="shadow-scoring", daemon=True)
        self._thread.start()

    def prepare(self, model: Champion) -> None:
        """Hand a newly loaded second model to the scoring process now (not with its
        first rows): one that process cannot load is refused; raises why."""
        self.scorer.load(model.key, model.predictor)

    def close(self) -> None:
        """Score and log everything queued, then stop the thread and the process. A
        second model still busy after CLOSE_SECONDS is not waited for: what it has
        not scored is logged as skipped."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        if self._thread is not None:
            self._thread.join(CLOSE_SECONDS)
            if self._thread.is_alive():
                log.error(
                    "serve: the second model is still scoring %d queued row(s) after %.0f s; "
                    "they are logged without its outputs (status skipped)",
                    self.queued_rows, CLOSE_SECONDS,
                )  # fmt: skip
                self.scorer.abandon()
                self._thread.join()
        self.scorer.close()

    @property
    def queued_rows(self) -> int:
        with self._ready:
            return self._queued

    def _run(self) -> None:
        while jobs := self._take():
            for model, group in _by_model(jobs):
                try:
                    self._score(model, group)
                except Exception:  # never lose the rows: log them without the outputs
                    log.exception("serve: shadow scoring failed outside the model")
                    self._finish(model, group, rollout.ERROR)

    def _take(self) -> list[ShadowJob]:
        """What has gathered, once there are ``call_rows`` rows or the oldest has
        waited ``linger_seconds``; nothing when closed and empty."""
        with self._ready:
            while not self._jobs and not self._closed:
                self._ready.wait()
            deadline = time.monotonic() + self.linger_seconds
            while self._queued < self.call_rows and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._ready.wait(left)
            taken: list[ShadowJob] = []
            rows = 0
            while self._jobs and (not taken or rows + self._jobs[0].rows <= self.max_call_rows):
                job = self._jobs.popleft()
                taken.append(job)
                rows += job.rows
            self._queued -= rows
            return taken

    def _score(self, model: Champion, jobs: list[ShadowJob]) -> None:
        columns = _concat([job.columns for job in jobs])
        try:
            scored = self.scorer.predict(
                model.key, model.predictor, columns, [job.rows for job in jobs]
            )
        except Abandoned:
            self._finish(model, jobs, rollout.SKIPPED)
            return
        except Exception as exc:  # the call itself failed: every batch in it
            self._report(model, f"{type(exc).__name__}: {exc}")
            self._finish(model, jobs, rollout.ERROR)
            return
        for why in dict.fromkeys(e for e in scored.errors if e is not None):
            self._report(model, why)
        done = [(job, s) for job, s in zip(jobs, scored.seconds, strict=True) if s is not None]
        if scored.scores is not None:
            outputs = self.outputs.columns(scored.scores)
            named = {rollout.shadow_column(k): v for k, v in outputs.items()}
            per_row = np.repeat([s * 1e3 / job.rows for job, s in done], [j.rows for j, _ in done])
            oks = [job for job, _ in done]
            self._finish(model, oks, rollout.OK, named | {rollout.SHADOW_MS: per_row})
        failed = [job for job, s in zip(jobs, scored.seconds, strict=True) if s is None]
        if failed:
            self._finish(model, failed, rollout.ERROR)

    def _finish(
        self,
        model: Champion,
        jobs: list[ShadowJob],
        status: str,
        outputs: dict[str, Any] | None = None,
    ) -> None:
        """Log the jobs' rows (as one entry) with what the second model did."""
        rows = sum(job.rows for job in jobs)
        entry = _join([job.entry for job in jobs])
        self.append(Entry({**entry, **shadow_fields(model, status, rows), **(outputs or {})}, rows))
        self.count(model.role, status, rows)

    def _report(self, model: Champion, why: str) -> None:
        """One line per failing version now and then, not one per batch."""
        now = time.monotonic()
        if now - self._reported.get(model.version, -ERROR_LOG_SECONDS) < ERROR_LOG_SECONDS:
            return
        self._reported[model.version] = now
        log.warning(
            "serve: the %s (version %s) failed to score in shadow: %s; its rows are "
            "logged with status error (reported again in %.0f s if it goes on)",
            model.role, model.version, why, ERROR_LOG_SECONDS,
        )  # fmt: skip


def _by_model(jobs: list[ShadowJob]) -> list[tuple[Champion, list[ShadowJob]]]:
    """The jobs of each second model (a canary has two: champion and challenger)."""
    groups: dict[int, tuple[Champion, list[ShadowJob]]] = {}
    for job in jobs:
        groups.setdefault(id(job.model), (job.model, []))[1].append(job)
    return list(groups.values())


def _concat(parts: list[Mapping[str, np.ndarray]]) -> Mapping[str, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _join(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Log columns of several batches as one (fewer, larger entries to write)."""
    if len(parts) == 1:
        return parts[0]
    out: dict[str, Any] = {}
    for name, first in parts[0].items():
        values = [part[name] for part in parts]
        if isinstance(first, np.ndarray) and all(isinstance(v, np.ndarray) for v in values):
            out[name] = np.concatenate(values)
        else:
            out[name] = [x for v in values for x in _listed(v)]
    return out


def _listed(values: Any) -> list[Any]:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)
