"""The routes: /predict, /health, /ready, /model and /metrics.

They are module-level and reach the app's Service through a dependency
(``ServiceDep``): ``create_app`` puts one Service in ``app.state`` and includes
``router``. /predict reads the raw body and validates it with the service's
own request model, which is faster than FastAPI's; its request body is
therefore documented by ``request_body`` rather than by a parameter.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse, Response

from driftloop.serve.guard import REQUEST_ID
from driftloop.serve.metrics import CONTENT_TYPE
from driftloop.serve.responses import Invalid, PredictResponse, Problem
from driftloop.serve.service import Service

PREDICT = "/predict"
RECORD_REF = "#/components/schemas/Record"


# The dependencies are coroutines: FastAPI would run plain functions in a thread.
# Each costs a few microseconds a request, so a route takes one, not a chain.


async def get_service(request: Request) -> Service:
    """The app's Service."""
    service: Service = request.app.state.service
    return service


async def get_keyed_service(request: Request) -> Service:
    """The app's Service, for a request with the right API key (401 otherwise)."""
    service: Service = request.app.state.service  # no second await on /predict's path
    if not service.key_ok(request.headers.get("x-api-key")):
        raise HTTPException(401, "missing or wrong API key (header X-API-Key)")
    return service


ServiceDep = Annotated[Service, Depends(get_service)]
KeyedServiceDep = Annotated[Service, Depends(get_keyed_service)]


router = APIRouter()


@router.post(
    PREDICT,
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
async def predict(request: Request, service: KeyedServiceDep) -> Response:
    """Score one record or a list of records with the champion."""
    rid = request.scope[REQUEST_ID]
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


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "no model answers the probe"}})
async def ready(service: ServiceDep) -> JSONResponse:
    """A model is loaded and answers a probe record."""
    current = service.champion
    if current is None or not service.ready():
        return JSONResponse({"status": "not ready"}, status_code=503)
    return JSONResponse({"status": "ready", "model_version": current.version})


@router.get(
    "/model",
    responses={
        401: {"description": "missing or wrong API key"},
        503: {"description": "no model loaded yet"},
    },
)
async def model(service: KeyedServiceDep) -> dict[str, Any]:
    """The served model: name, version, run id, when trained, holdout metrics."""
    current = service.champion
    if current is None:
        raise HTTPException(503, "no model is loaded yet")
    return {**current.info, "compiled_preprocessing": current.predictor.compiled}


@router.get("/metrics", response_class=Response)
async def metrics(service: ServiceDep) -> Response:
    """Prometheus text format."""
    return Response(service.metrics.render(), media_type=CONTENT_TYPE)


def request_body(service: Service) -> dict[str, Any]:
    """/predict's request body for the OpenAPI document: one record or a list."""
    example = service.request.example
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": service.request.schema(RECORD_REF),
                "examples": {
                    "one": {"summary": "one record", "value": example},
                    "many": {"summary": "a list of records", "value": [example]},
                },
            }
        },
    }
