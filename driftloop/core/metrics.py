"""The metrics by problem type, and which of them are better lower."""

from __future__ import annotations

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


def compute_metrics(
    problem: Problem, y: pd.Series, out: np.ndarray, classes: list[Any]
) -> dict[str, float]:
    if problem is Problem.regression:
        return {
            "rmse": float(np.sqrt(skm.mean_squared_error(y, out))),
            "mae": float(skm.mean_absolute_error(y, out)),
            "r2": float(skm.r2_score(y, out)),
        }
    predicted = np.asarray(classes)[out.argmax(axis=1)]
    result = {
        "accuracy": float(skm.accuracy_score(y, predicted)),
        "log_loss": float(skm.log_loss(y, out, labels=classes)),
    }
    if problem is Problem.binary:
        positive = (np.asarray(y) == classes[1]).astype(int)
        result |= {
            "roc_auc": float(skm.roc_auc_score(positive, out[:, 1])),
            "pr_auc": float(skm.average_precision_score(positive, out[:, 1])),
            "f1": float(skm.f1_score(positive, (out[:, 1] >= 0.5).astype(int))),
            "brier": float(skm.brier_score_loss(positive, out[:, 1])),
        }
    else:
        result |= {
            "roc_auc": float(skm.roc_auc_score(y, out, multi_class="ovr", labels=classes)),
            "f1": float(skm.f1_score(y, predicted, average="macro")),
        }
    return {key: round(value, 6) for key, value in result.items()}
