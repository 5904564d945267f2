"""The pure ASGI middleware in front of every route: request id, body size
limit, and the request metrics (path, status, seconds) of every request."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson

from driftloop.serve.metrics import ServiceMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
REQUEST_ID = "driftloop.request_id"
PATHS = {"/predict", "/health", "/ready", "/model", "/metrics"}
NAMED = ("predict", "model")


class Guard:
    """Pure ASGI middleware: request id, body size limit, metrics of every request."""

    def __init__(
        self, app: ASGIApp, metrics: ServiceMetrics, limit: int, names: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.limit = limit
        # each data set's routes are counted under their own path; others as "other"
        self.paths = PATHS | {f"/{route}/{name}" for name in names for route in NAMED}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = uuid.uuid4().hex
        scope[REQUEST_ID] = rid
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            body = await self._body(scope, receive)
            if body is None:
                await _too_large(send_wrapper, rid, self.limit)
            else:
                await self.app(scope, _replay(body), send_wrapper)
        finally:
            path = scope["path"] if scope["path"] in self.paths else "other"
            self.metrics.observe_request(path, status, time.perf_counter() - started)

    async def _body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None when it is over the limit."""
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return None
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # like a client that stays connected
        return {"type": "http.disconnect"}

    return receive


async def _too_large(send: Send, rid: str, limit: int) -> None:
    payload = orjson.dumps(
        {"detail": f"request body is larger than {limit} bytes", "request_id": rid}
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
