"""Adaptive micro-batching: concurrent requests share one model call.

A model call costs about the same for one row as for a few hundred (the
per-call overhead of the estimator dominates), so the service does not call
the model once per request. Requests queue their records; one task takes
everything queued when it runs and scores it in a single call. Under light
load a batch is one request and adds no wait; under heavy load batches grow
by themselves, with no timer to tune.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Job:
    """One request's records and where its result goes."""

    records: list[dict[str, Any]]
    request_id: str
    future: asyncio.Future[Any] = field(repr=False)


class MicroBatcher(Generic[T]):
    """Runs ``score(jobs) -> one result per job`` on everything queued at once."""

    def __init__(self, score: Callable[[list[Job]], Sequence[T]], max_rows: int) -> None:
        self.score = score
        self.max_rows = max_rows
        self._queue: deque[Job] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.on_batch: Callable[[int], None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="micro-batcher")

    async def stop(self) -> None:
        """Finish what is queued, then stop."""
        while self._queue:
            await asyncio.sleep(0.001)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def submit(self, records: list[dict[str, Any]], request_id: str) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(Job(records, request_id, future))
        self._wake.set()
        return await future

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                self._run(self._take())
                await asyncio.sleep(0)  # let waiting requests reply and new ones queue

    def _take(self) -> list[Job]:
        jobs: list[Job] = []
        rows = 0
        while self._queue and (not jobs or rows + len(self._queue[0].records) <= self.max_rows):
            job = self._queue.popleft()
            jobs.append(job)
            rows += len(job.records)
        return jobs

    def _run(self, jobs: list[Job]) -> None:
        if self.on_batch is not None:
            self.on_batch(sum(len(j.records) for j in jobs))
        try:
            results = self.score(jobs)
        except Exception:
            if len(jobs) == 1:
                log.exception("scoring failed (request %s)", jobs[0].request_id)
                _settle(jobs[0], error=True)
                return
            for job in jobs:  # one bad request must not fail the others
                self._run([job])
            return
        for job, result in zip(jobs, results, strict=True):
            _settle(job, result=result)


def _settle(job: Job, result: Any = None, error: bool = False) -> None:
    if job.future.done():  # the client went away
        return
    if error:
        job.future.set_exception(ScoringError(job.request_id))
    else:
        job.future.set_result(result)


class ScoringError(RuntimeError):
    """The model failed on a request; details go to the server log only."""
