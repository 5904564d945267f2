"""The HTTP API: /predict, /health, /ready, /model, /metrics and /docs.

``create_app(settings)`` builds the app: one Service in ``app.state``, the
routes of ``driftloop.serve.routes``, the Guard middleware, the lifespan that
loads and watches the champion, and the error handlers.
``driftloop.serve.asgi:app`` builds it from the environment for any uvicorn or
gunicorn command line.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.models import OpenAPI
from fastapi.responses import JSONResponse
from threadpoolctl import threadpool_limits

from driftloop.serve.batcher import ScoringError
from driftloop.serve.guard import REQUEST_ID, Guard
from driftloop.serve.request import RequestError
from driftloop.serve.routes import PREDICT, request_body, router
from driftloop.serve.service import Service, Settings


def create_app(settings: Settings) -> FastAPI:
    service = Service(settings)
    app = FastAPI(
        title="driftloop",
        summary=f"Predictions of the champion model for {settings.config.data.name}",
        lifespan=lifespan,
        exception_handlers={RequestError: invalid, ScoringError: failed},
    )
    app.state.service = service
    app.include_router(router)
    _document_records(app, service)
    app.add_middleware(Guard, service=service)
    return app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    service: Service = app.state.service
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


async def invalid(request: Request, exc: RequestError) -> JSONResponse:
    return JSONResponse(
        {"detail": exc.errors, "request_id": request.scope.get(REQUEST_ID)}, status_code=422
    )


async def failed(request: Request, exc: ScoringError) -> JSONResponse:
    return JSONResponse(
        {
            "detail": "the model could not score this request; the server log has details",
            "request_id": request.scope.get(REQUEST_ID),
        },
        status_code=500,
    )


def _document_records(app: FastAPI, service: Service) -> None:
    """/predict's request body and the record schema its references point to."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            spec["paths"][PREDICT]["post"]["requestBody"] = request_body(service)
            # FastAPI's own last pass, as for a route's openapi_extra: the same document
            spec = jsonable_encoder(OpenAPI(**spec), by_alias=True, exclude_none=True)
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            schemas["Record"] = service.request.record_schema()
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
