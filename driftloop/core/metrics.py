"""The metrics by problem type, and which of them are better lower."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from driftloop.config.schema import Problem

LOWER_IS_BETTER = {"log_loss", "brier", "rmse", "mae"}


def scores(model: Any, x: pd.DataFrame, problem: Problem) -> np.ndarray:
    """Class probabilities (classification) or predictions (regression)."""
    out = model.predict(x) if problem is Problem.regression else model.predict_proba(x)
    return np.asarray(out, dtype="float64")


Metric = Callable[[np.ndarray, np.ndarray, list[Any]], float]


def _positive(y: np.ndarray, classes: list[Any]) -> np.ndarray:
    return np.asarray(np.asarray(y) == classes[1], dtype=int)


def _predicted(out: np.ndarray, classes: list[Any]) -> np.ndarray:
    return np.asarray(np.asarray(classes)[out.argmax(axis=1)])


REGRESSION: dict[str, Metric] = {
    "rmse": lambda y, out, _: float(np.sqrt(skm.mean_squared_error(y, out))),
    "mae": lambda y, out, _: float(skm.mean_absolute_error(y, out)),
    "r2": lambda y, out, _: float(skm.r2_score(y, out)),
}
CLASSIFICATION: dict[str, Metric] = {
    "accuracy": lambda y, out, c: float(skm.accuracy_score(y, _predicted(out, c))),
    "log_loss": lambda y, out, c: float(skm.log_loss(y, out, labels=c)),
}
BINARY: dict[str, Metric] = {
    **CLASSIFICATION,
    "roc_auc": lambda y, out, c: float(skm.roc_auc_score(_positive(y, c), out[:, 1])),
    "pr_auc": lambda y, out, c: float(skm.average_precision_score(_positive(y, c), out[:, 1])),
    "f1": lambda y, out, c: float(skm.f1_score(_positive(y, c), (out[:, 1] >= 0.5).astype(int))),
    "brier": lambda y, out, c: float(skm.brier_score_loss(_positive(y, c), out[:, 1])),
}
MULTICLASS: dict[str, Metric] = {
    **CLASSIFICATION,
    "roc_auc": lambda y, out, c: float(skm.roc_auc_score(y, out, multi_class="ovr", labels=c)),
    "f1": lambda y, out, c: float(skm.f1_score(y, _predicted(out, c), average="macro")),
}
BY_PROBLEM = {
    Problem.regression: REGRESSION,
    Problem.binary: BINARY,
    Problem.multiclass: MULTICLASS,
}


def compute_metrics(
    problem: Problem, y: pd.Series, out: np.ndarray, classes: list[Any]
) -> dict[str, float]:
    labels = np.asarray(y)
    return {name: round(fn(labels, out, classes), 6) for name, fn in BY_PROBLEM[problem].items()}


def compute_metric(
    problem: Problem, name: str, y: np.ndarray, out: np.ndarray, classes: list[Any]
) -> float:
    """One of compute_metrics' figures, computed alone (a bootstrap takes thousands)."""
    return round(BY_PROBLEM[problem][name](np.asarray(y), out, classes), 6)
