"""The routes: /predict, /health, /ready, /model and /metrics, and per data set
/predict/<name> and /model/<name>.

The common ones are module-level and reach the default data set's Service
through a dependency (``ServiceDep``): ``create_app`` puts the Services in
``app.state`` and includes ``router`` and one ``data_set_router`` per data set.
/predict reads the raw body and validates it with the service's own request
model, which is faster than FastAPI's; its request body is therefore
documented by ``request_body`` rather than by a parameter.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse, Response

from driftloop.serve import roles
from driftloop.serve.guard import REQUEST_ID
from driftloop.serve.metrics import CONTENT_TYPE
from driftloop.serve.responses import Invalid, ModelResponse, PredictResponse, Problem
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
    return keyed(request, request.app.state.service)  # no second await on /predict's path


def keyed(request: Request, service: Service) -> Service:
    if not service.key_ok(request.headers.get("x-api-key")):
        raise HTTPException(401, "missing or wrong API key (header X-API-Key)")
    return service


ServiceDep = Annotated[Service, Depends(get_service)]
KeyedServiceDep = Annotated[Service, Depends(get_keyed_service)]


router = APIRouter()
PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": PredictResponse, "description": "one prediction per record, in order"},
    401: {"model": Problem, "description": "missing or wrong API key"},
    413: {"model": Problem, "description": "body larger than serve.max_body_bytes"},
    415: {"model": Problem, "description": "body is not JSON"},
    422: {"model": Invalid, "description": "which record, which field, what was expected"},
    503: {"model": Problem, "description": "no model loaded yet"},
}
MODEL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": ModelResponse, "description": "the champion, and the model of every role"},
    401: {"description": "missing or wrong API key"},
    503: {"description": "no model loaded yet"},
}


@router.post(PREDICT, response_model=None, responses=PREDICT_RESPONSES)
async def predict(request: Request, service: KeyedServiceDep) -> Response:
    """Score one record or a list of records with the default data set's champion."""
    return await answer(request, service)


async def answer(request: Request, service: Service) -> Response:
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


@router.get("/ready", responses={503: {"description": "a data set's model is not ready"}})
async def ready(request: Request, service: ServiceDep) -> JSONResponse:
    """Every served data set has a model loaded that answers a probe record."""
    services: dict[str, Service] = request.app.state.services
    current = service.champion
    if current is None or not all(each.ready() for each in services.values()):
        return JSONResponse({"status": "not ready"}, status_code=503)
    body: dict[str, Any] = {"status": "ready", "model_version": current.version}
    if len(services) > 1:
        body["models"] = {name: each.version() for name, each in services.items()}
    return JSONResponse(body)


@router.get("/model", response_model=None, responses=MODEL_RESPONSES)
async def model(service: KeyedServiceDep) -> dict[str, Any]:
    """The default data set's champion: name, version, run id, when trained, holdout
    metrics; and the model of each role (challenger, previous) beside it."""
    return describe(service)


def describe(service: Service) -> dict[str, Any]:
    current, second = service.champion, service.second
    if current is None:
        raise HTTPException(503, "no model is loaded yet")
    body = {**roles.describe(current), "roles": service.roles.describe()}
    if second is not None:
        body["rollout"] = second.rollout.to_json()
    return body


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)


def data_set_router(name: str) -> APIRouter:
    """/predict/<name> and /model/<name>: one data set's Service."""
    named = APIRouter(tags=[name])

    async def keyed_service(request: Request) -> Service:
        return keyed(request, request.app.state.services[name])

    # a default value, not an annotation: the dependency is local to this router
    # and the module's annotations are strings FastAPI resolves in its globals
    keyed_dependency = Depends(keyed_service)

    @named.post(
        f"{PREDICT}/{name}",
        response_model=None,
        responses=PREDICT_RESPONSES,
        description=f"Score one record or a list of records with the champion of {name}.",
    )
    async def predict_data_set(request: Request, service: Service = keyed_dependency) -> Response:
        return await answer(request, service)

    @named.get(
        f"/model/{name}",
        response_model=None,
        responses=MODEL_RESPONSES,
        description=f"The champion of {name}, and the model of each role beside it.",
    )
    async def model_of_data_set(service: Service = keyed_dependency) -> dict[str, Any]:
        return describe(service)

    return named


def record_ref(name: str | None) -> str:
    """The OpenAPI component of a data set's record (None: the default's)."""
    return RECORD_REF if name is None else f"{RECORD_REF}_{name}"


def request_body(service: Service, ref: str) -> dict[str, Any]:
    """A /predict request body for the OpenAPI document: one record or a list."""
    example = service.request.example
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": service.request.schema(ref),
                "examples": {
                    "one": {"summary": "one record", "value": example},
                    "many": {"summary": "a list of records", "value": [example]},
                },
            }
        },
    }
