"""A small load generator for tests: threads with keep-alive connections, each
sending requests back to back and recording every answer."""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Tally:
    ok: int = 0
    errors: list[str] = field(default_factory=list)
    # (seconds since start, model version) per answered request, per thread
    versions: list[list[tuple[float, str]]] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def post(connection: http.client.HTTPConnection, body: bytes) -> tuple[int, dict[str, Any]]:
    connection.request("POST", "/predict", body, {"content-type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def run(
    port: int,
    record: Any,
    threads: int,
    stop: threading.Event,
    limit: int | None = None,
    keepalive: bool = True,
) -> Tally:
    """Send until ``stop`` is set (or each thread sent ``limit`` requests); without
    keep-alive each request opens a new connection."""
    tally = Tally(versions=[[] for _ in range(threads)])
    body = json.dumps(record).encode()
    started = time.monotonic()

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        sent = 0
        while not stop.is_set() and (limit is None or sent < limit):
            sent += 1
            try:
                status, payload = post(connection, body)
            except (OSError, http.client.HTTPException) as exc:
                with tally.lock:
                    tally.errors.append(repr(exc))
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            with tally.lock:
                if status == 200:
                    tally.ok += 1
                    tally.request_ids.append(payload["request_id"])
                    tally.versions[index].append(
                        (time.monotonic() - started, payload["model_version"])
                    )
                else:
                    tally.errors.append(f"{status}: {payload}")
            if not keepalive:
                connection.close()
        connection.close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return tally


class Background:
    """``run`` in a thread for the length of a ``with`` block; ``tally`` after it."""

    def __init__(self, port: int, record: Any, threads: int, keepalive: bool = True) -> None:
        self.stop = threading.Event()
        self.result: list[Tally] = []
        self.thread = threading.Thread(
            target=lambda: self.result.append(
                run(port, record, threads, self.stop, keepalive=keepalive)
            )
        )

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()

    @property
    def tally(self) -> Tally:
        return self.result[0]
