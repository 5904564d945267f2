"""Real models that misbehave: a fitted pipeline with one more step between its
preprocessing and its estimator, a FunctionTransformer that is slow or fails.
The step's function lives here so that the pickled model can be loaded."""

from __future__ import annotations

import time
from typing import Any

from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

SLOW_SECONDS = 1.0


def fragile(x: Any) -> Any:
    """Scores one row (the probe), fails on more."""
    if len(x) > 1:
        raise ValueError("this model cannot score more than one row")
    return x


def slow(x: Any) -> Any:
    """Scores one row at once (the probe), takes a second for more."""
    if len(x) > 1:
        time.sleep(SLOW_SECONDS)
    return x


def failing(x: Any) -> Any:
    """Fails everything, the probe too."""
    raise ValueError("this model fails on every row")


def with_step(model: Pipeline, step: Any) -> Pipeline:
    """``model`` (preprocessing, estimator) with ``step`` between the two."""
    (prep_name, prep), (name, estimator) = model.steps
    return Pipeline([(prep_name, prep), ("step", FunctionTransformer(step)), (name, estimator)])
