"""The HTTP API: /predict, /health, /ready, /model, /metrics and /docs, and
/predict/<name> and /model/<name> for every served data set.

``create_app(settings)`` builds the app: one Service per data set in
``app.state`` (the composed one is the default), the routes of
``driftloop.serve.routes``, the Guard middleware, the lifespan that loads and
watches each champion, and the error handlers.
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
from driftloop.serve.metrics import ServiceMetrics
from driftloop.serve.request import RequestError
from driftloop.serve.routes import PREDICT, data_set_router, record_ref, request_body, router
from driftloop.serve.service import Service, Settings, data_sets


def create_app(settings: Settings) -> FastAPI:
    metrics = ServiceMetrics()
    services = {
        name: Service(config, settings, metrics.of(name))
        for name, config in data_sets(settings).items()
    }
    default = settings.config.data.name
    app = FastAPI(
        title="driftloop",
        summary=f"Predictions of the champion models for {', '.join(services)}",
        lifespan=lifespan,
        exception_handlers={RequestError: invalid, ScoringError: failed},
    )
    app.state.service = services[default]
    app.state.services = services
    app.state.metrics = metrics
    app.include_router(router)
    for name in services:
        app.include_router(data_set_router(name))
    _document_records(app, services, default)
    app.add_middleware(
        Guard, metrics=metrics, limit=settings.config.serve.max_body_bytes, names=list(services)
    )
    return app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    services: dict[str, Service] = app.state.services
    limits = threadpool_limits(app.state.service.config.serve.model_threads)
    for service in services.values():
        await service.start()
    # Everything loaded so far lives as long as the process: keep it out of
    # the collector's full passes, which otherwise stall requests for tens of ms.
    gc.collect()
    gc.freeze()
    loop = asyncio.get_running_loop()
    watchers = [loop.create_task(service.watch()) for service in services.values()]
    try:
        yield
    finally:
        for service, watcher in zip(services.values(), watchers, strict=True):
            watcher.cancel()
            await service.stop()
        app.state.metrics.close()
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


def _document_records(app: FastAPI, services: dict[str, Service], default: str) -> None:
    """Each /predict's request body and the record schemas its references point to."""
    generate = app.openapi
    bodies = {PREDICT: (services[default], record_ref(None))}
    bodies |= {f"{PREDICT}/{name}": (each, record_ref(name)) for name, each in services.items()}
    bodies[f"{PREDICT}/{default}"] = bodies[PREDICT]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = generate()
            for path, (service, ref) in bodies.items():
                spec["paths"][path]["post"]["requestBody"] = request_body(service, ref)
            # FastAPI's own last pass, as for a route's openapi_extra: the same document
            spec = jsonable_encoder(OpenAPI(**spec), by_alias=True, exclude_none=True)
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            for service, ref in bodies.values():
                schemas[ref.rpartition("/")[2]] = service.request.record_schema()
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
