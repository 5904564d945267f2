"""Response bodies, as documented in the OpenAPI document (the service writes
them directly; these models describe them for /docs and for clients)."""

from __future__ import annotations

from pydantic import BaseModel


class Prediction(BaseModel):
    # the class label (classification) or the value (regression)
    prediction: int | float | str | bool
    # binary: probability of the positive class
    probability: float | None = None
    # multiclass: probability of each class
    probabilities: dict[str, float] | None = None


class PredictResponse(BaseModel):
    request_id: str
    model_version: str
    predictions: list[Prediction]


class FieldError(BaseModel):
    record: int | None
    field: str | None
    error: str


class Invalid(BaseModel):
    detail: list[FieldError]
    request_id: str | None = None


class Problem(BaseModel):
    detail: str
    request_id: str | None = None
