"""The HTTP API: /predict, /health, /ready, /model, /metrics and /docs.

``create_app(settings)`` builds the app; ``driftloop.serve.asgi:app`` builds it
from the environment for any uvicorn or gunicorn command line.
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse, Response
from threadpoolctl import threadpool_limits

from driftloop.serve.batcher import ScoringError
from driftloop.serve.metrics import CONTENT_TYPE
from driftloop.serve.request import RequestError
from driftloop.serve.responses import Invalid, PredictResponse, Problem
from driftloop.serve.service import Service, Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
REQUEST_ID = "driftloop.request_id"
RECORD_REF = "#/components/schemas/Record"
PATHS = {"/predict", "/health", "/ready", "/model", "/metrics"}


def create_app(settings: Settings) -> FastAPI:
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        limits = threadpool_limits(service.config.serve.model_threads)
        service.log.start()
        await service.refresh()
        service.batcher.start()
        # Everything loaded so far lives as long as the process: keep it out of
        # the collector's full passes, which otherwise stall requests for tens of ms.
        gc.collect()
        gc.freeze()
        watcher = asyncio.get_running_loop().create_task(service.watch())
        try:
            yield
        finally:
            watcher.cancel()
            await service.batcher.stop()
            service.log.close()
            service.metrics.close()
            limits.restore_original_limits()
            gc.unfreeze()

    app = FastAPI(
        title="driftloop",
        summary=f"Predictions of the champion model for {settings.config.data.name}",
        lifespan=lifespan,
    )
    app.state.service = service
    _routes(app, service)
    _document_record(app, service)
    _errors(app)
    app.add_middleware(Guard, service=service)
    return app


def _routes(app: FastAPI, service: Service) -> None:
    body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": service.request.schema(RECORD_REF),
                "examples": {
                    "one": {"summary": "one record", "value": service.request.example},
                    "many": {"summary": "a list of records", "value": [service.request.example]},
                },
            }
        },
    }

    @app.post(
        "/predict",
        openapi_extra={"requestBody": body},
        response_model=None,
        responses={
            200: {"model": PredictResponse, "description": "one prediction per record, in order"},
            401: {"model": Problem, "description": "missing or wrong API key"},
            413: {"model": Problem, "description": "body larger than serve.max_body_bytes"},
            415: {"model": Problem, "description": "body is not JSON"},
            422: {"model": Invalid, "description": "which record, which field, what was expected"},
            503: {"model": Problem, "description": "no model loaded yet"},
        },
    )
    async def predict(request: Request) -> Response:
        """Score one record or a list of records with the champion."""
        rid = request.scope[REQUEST_ID]
        _require_key(service, request)
        if service.champion is None:
            raise HTTPException(503, "no model is loaded yet")
        kind = request.headers.get("content-type", "application/json")
        if not kind.startswith("application/json"):
            raise HTTPException(415, "send the records as application/json")
        records = service.request.parse(await request.body())
        answer = await service.batcher.submit(records, rid)
        payload = {
            "request_id": rid,
            "model_version": answer.version,
            "predictions": answer.predictions,
        }
        return Response(
            orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY),
            media_type="application/json",
            headers={"x-model-version": answer.version},
        )

    @app.get("/health")
    async def health() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/ready", responses={503: {"description": "no model answers the probe"}})
    async def ready() -> JSONResponse:
        """A model is loaded and answers a probe record."""
        current = service.champion
        if current is None or not service.ready():
            return JSONResponse({"status": "not ready"}, status_code=503)
        return JSONResponse({"status": "ready", "model_version": current.version})

    @app.get(
        "/model",
        responses={
            401: {"description": "missing or wrong API key"},
            503: {"description": "no model loaded yet"},
        },
    )
    async def model(request: Request) -> dict[str, Any]:
        """The served model: name, version, run id, when trained, holdout metrics."""
        _require_key(service, request)
        current = service.champion
        if current is None:
            raise HTTPException(503, "no model is loaded yet")
        return {**current.info, "compiled_preprocessing": current.predictor.compiled}

    @app.get("/metrics", response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format."""
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)


def _document_record(app: FastAPI, service: Service) -> None:
    """Put the record schema in components, where the body's references point."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            schemas["Record"] = service.request.record_schema()
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _require_key(service: Service, request: Request) -> None:
    if not service.key_ok(request.headers.get("x-api-key")):
        raise HTTPException(401, "missing or wrong API key (header X-API-Key)")


def _errors(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def invalid(request: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse(
            {"detail": exc.errors, "request_id": request.scope.get(REQUEST_ID)}, status_code=422
        )

    @app.exception_handler(ScoringError)
    async def failed(request: Request, exc: ScoringError) -> JSONResponse:
        return JSONResponse(
            {
                "detail": "the model could not score this request; the server log has details",
                "request_id": request.scope.get(REQUEST_ID),
            },
            status_code=500,
        )


class Guard:
    """Pure ASGI middleware: request id, body size limit, metrics of every request."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service
        self.limit = service.config.serve.max_body_bytes

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
            path = scope["path"] if scope["path"] in PATHS else "other"
            self.service.metrics.observe_request(path, status, time.perf_counter() - started)

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
