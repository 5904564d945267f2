"""The shadow scorer: the second model scores in a process of its own.

A thread of the serving process would share its interpreter lock with the event
loop: every model call hands the lock back and forth hundreds of times (one
tree after another), and the answers wait at each hand-over. A child process
scores on the other core instead; the serving process only sends the rows and
reads the scores back. The child runs at a lower priority (serve.shadow_nice;
null: only on idle CPU time, SCHED_IDLE), so when the cores are busy the answers
come first and the second model falls behind (its rows are then logged as
skipped) rather than the other way round.

The child holds the last few models it was sent, by key; a model is sent once,
before its first rows (a second model as soon as it is loaded, so that one the
child cannot load is refused like one that fails the probe).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from driftloop.core.predictor import Predictor, Scores

log = logging.getLogger("driftloop.serve")
# champion, challenger and previous: what the child may need at once
KEEP = 3
# with no nice level set the child runs only on idle CPU time (SCHED_IDLE), or
# at the lowest priority where there is no SCHED_IDLE
NICE = 19
POLL_SECONDS = 0.25
STOP_SECONDS = 5.0


@dataclass(frozen=True)
class Scored:
    """The micro-batches of one call: the scores of those that succeeded, one
    after the other; per batch, the model's time for it (seconds) or why it failed."""

    scores: Scores | None
    seconds: list[float | None]
    errors: list[str | None]


# --- in the child ----------------------------------------------------------------------

_models: dict[str, Predictor] = {}


def _serve(conn: Connection, threads: int, nice: int | None) -> None:
    """The child: answer each request (kind, arguments) with (ok, result or why)."""
    _start(threads, nice)
    handlers: dict[str, Callable[..., Any]] = {"load": _load, "score": _score}
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the serving process is gone
            return
        if message is None:
            return
        kind, args = message
        try:
            reply = (True, handlers[kind](*args))
        except Exception as exc:  # the message crosses back, not the exception
            reply = (False, f"{type(exc).__name__}: {exc}")
        conn.send(reply)


def _start(threads: int, nice: int | None) -> None:
    """The child's set-up: a lower priority, the model's threads, and no signals
    of its own: the serving process stops it once the rows in flight are scored."""
    if nice is not None:
        os.nice(nice)
    else:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except (AttributeError, OSError):  # not Linux
            os.nice(NICE)
    threadpool_limits(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _load(key: str, model: Any, plan: Any, problem: Any, probe: Any, keep: list[str]) -> bool:
    predictor = Predictor(model, plan, problem)
    predictor.check_compiled(probe)
    _models[key] = predictor
    for old in [k for k in _models if k not in keep]:
        del _models[old]
    return predictor.compiled


def _score(key: str, columns: Mapping[str, np.ndarray], sizes: list[int]) -> Scored:
    """Each micro-batch scored on its own, as the answering model scored it, so
    that the two models' times per row compare; a batch that fails fails alone.

    The time is the child's CPU time: at the lowest priority it may wait for a
    core in the middle of a call, which says nothing about the model."""
    predictor, start = _models[key], 0
    done: list[Scores] = []
    seconds: list[float | None] = []
    errors: list[str | None] = []
    for size in sizes:
        part = {name: values[start : start + size] for name, values in columns.items()}
        started = time.process_time()
        try:
            done.append(predictor.predict(part))
        except Exception as exc:  # the message crosses back, not the exception
            seconds.append(None)
            errors.append(f"{type(exc).__name__}: {exc}")
        else:
            seconds.append(time.process_time() - started)
            errors.append(None)
        start += size
    return Scored(_join(done), seconds, errors)


def _join(parts: list[Scores]) -> Scores | None:
    """One Scores for all (one array each crosses back, not one per batch)."""
    if not parts:
        return None
    proba = None if parts[0].proba is None else np.concatenate([p.proba for p in parts])
    return Scores(np.concatenate([p.label for p in parts]), proba, parts[0].classes)


# --- in the serving process -----------------------------------------------------------------


class ShadowProcessError(RuntimeError):
    """The child failed the request, or is gone."""


class Abandoned(RuntimeError):
    """The service stops and would not wait any longer for the child."""


class ChildScorer:
    """Scores with models held in one child process (started on first use).

    One request at a time: the loader thread (a new second model) and the shadow
    thread (rows) take turns."""

    def __init__(
        self, threads: int, probe: Mapping[str, np.ndarray], nice: int | None = None
    ) -> None:
        self.threads = threads
        self.nice = nice
        self.probe = probe
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._sent: list[str] = []  # keys the child holds, oldest first
        self._lock = threading.Lock()
        self._abandoned = threading.Event()

    def load(self, key: str, predictor: Predictor) -> None:
        """Send a model to the child (once); raises why the child could not load it."""
        with self._lock:
            if key in self._sent:
                return
            keep = [*self._sent[-(KEEP - 1) :], key]
            self._call("load", (key, predictor.model, predictor.plan, predictor.problem,
                                self.probe, keep))  # fmt: skip
            self._sent = keep

    def predict(
        self, key: str, predictor: Predictor, columns: Mapping[str, np.ndarray], sizes: list[int]
    ) -> Scored:
        """The micro-batches (``sizes`` rows each, one after the other in ``columns``)
        scored in one round trip, each on its own."""
        self.load(key, predictor)
        with self._lock:
            result: Scored = self._call("score", (key, columns, sizes))
        return result

    def _call(self, kind: str, args: tuple[Any, ...]) -> Any:
        if self._abandoned.is_set():
            raise Abandoned("the service is stopping")
        conn = self._conn if self._conn is not None else self._start()
        try:
            conn.send((kind, args))
            while not conn.poll(POLL_SECONDS):
                if self._abandoned.is_set():
                    raise Abandoned("the service stopped waiting for the shadow scoring process")
            ok, result = conn.recv()
        except (OSError, EOFError) as exc:
            self._stop_child()
            raise ShadowProcessError("the shadow scoring process is gone; a new one starts "
                                     "with the next rows") from exc  # fmt: skip
        if not ok:
            raise ShadowProcessError(result)
        return result

    def _start(self) -> Connection:
        """A child forked from a fork server that imported the scoring code once (a
        fork of the serving process itself would copy its threads' state)."""
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_serve,
            args=(theirs, self.threads, self.nice),
            name="driftloop-shadow",
            daemon=True,
        )
        process.start()
        theirs.close()
        self._process, self._conn, self._sent = process, ours, []
        return ours

    def abandon(self) -> None:
        """Stop waiting for the child: a call in flight raises Abandoned, and so do
        the next ones."""
        self._abandoned.set()

    def close(self) -> None:
        """Stop the child (after the request in flight, if it was not abandoned)."""
        with self._lock:
            self._stop_child()

    def _stop_child(self) -> None:
        process, conn = self._process, self._conn
        self._process, self._conn, self._sent = None, None, []
        if conn is not None:
            with suppress(OSError):  # already gone
                conn.send(None)
        if process is not None:
            process.join(STOP_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()
        if conn is not None:
            conn.close()
