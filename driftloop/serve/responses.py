"""Response bodies, as documented in the OpenAPI document (the service writes
them directly; these models describe them for /docs and for clients)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Prediction(BaseModel):
    # the class label (classification) or the value (regression)
    prediction: int | float | str | bool
    # binary: probability of the positive class
    probability: float | None = None
    # multiclass: probability of each class
    probabilities: dict[str, float] | None = None
    model_version: str | None = Field(
        None,
        description="only on a record a canary challenger answered: its version "
        "(every other record is answered by the champion, the response's model_version)",
    )


class PredictResponse(BaseModel):
    request_id: str
    model_version: str = Field(description="the champion's version")
    predictions: list[Prediction]


class ModelInfo(BaseModel):
    """A loaded model: registered name and version, where it comes from, how it was made."""

    model_config = ConfigDict(extra="allow")
    name: str
    version: str
    source: str = Field(description="its folder, or 'registry'")
    run_id: str | None = None
    trained_at: str | None = None
    promoted_at: str | None = None
    holdout_metrics: dict[str, float] | None = None
    model: str | None = None
    data: str | None = None
    compiled_preprocessing: bool


class Roles(BaseModel):
    """The model loaded in each role (null: none)."""

    champion: ModelInfo
    challenger: ModelInfo | None = None
    previous: ModelInfo | None = None


class Rollout(BaseModel):
    """How the second model takes part: the previous champion always in shadow."""

    strategy: Literal["shadow", "canary"]
    canary_share: float = Field(description="the share of records a canary answers (0: shadow)")


class ModelResponse(ModelInfo):
    """The champion (as ever, at the top level), every role, and the rollout of
    the second model when one is loaded."""

    roles: Roles
    rollout: Rollout | None = Field(None, description="present when a second model is loaded")


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
