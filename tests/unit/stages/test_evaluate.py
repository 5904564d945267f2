"""evaluate: metrics by problem type, slices, behaviour and the plot data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.adapters import gx
from driftloop.config.schema import Problem
from driftloop.core import evaluation, metrics

rng = np.random.default_rng(0)


def test_binary_metrics() -> None:
    y = pd.Series([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.35, 0.65], [0.2, 0.8]])
    got = metrics.compute_metrics(Problem.binary, y, proba, [0, 1])
    assert got["roc_auc"] == 1.0 and got["accuracy"] == 1.0 and got["f1"] == 1.0
    assert set(got) == {"accuracy", "log_loss", "roc_auc", "pr_auc", "f1", "brier"}
    assert 0 < got["brier"] < 0.2


def test_multiclass_and_regression_metrics() -> None:
    y = pd.Series(["a", "b", "c", "a"])
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2]])
    got = metrics.compute_metrics(Problem.multiclass, y, proba, ["a", "b", "c"])
    assert got["accuracy"] == 1.0 and got["roc_auc"] == 1.0 and "f1" in got
    reg = metrics.compute_metrics(
        Problem.regression, pd.Series([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]), []
    )
    assert reg == {
        "rmse": pytest.approx(np.sqrt(1 / 3), abs=1e-6),
        "mae": pytest.approx(1 / 3, abs=1e-6),
        "r2": 0.5,
    }


def test_curves_are_on_fixed_grids() -> None:
    y = pd.Series(rng.integers(0, 2, 500))
    score = np.clip(y * 0.6 + rng.normal(0.2, 0.2, 500), 0, 1)
    plots = evaluation.curves(y, np.column_stack([1 - score, score]), [0, 1], 10)
    assert list(plots) == ["confusion", "roc", "precision_recall", "calibration"]
    assert (
        len(plots["roc"]) == evaluation.CURVE_POINTS and plots["roc"]["tpr"].is_monotonic_increasing
    )
    assert len(plots["confusion"]) == 500
    assert plots["calibration"]["mean_predicted"].between(0, 1).all()


def test_prediction_suite_catches_bad_probabilities() -> None:
    good = evaluation.predictions_frame(np.array([[0.2, 0.8], [0.5, 0.5]]), [0, 1])
    specs = evaluation.prediction_specs(2, Problem.binary, list(good.columns))
    assert gx.validate(good, "p", specs, None).success
    bad = evaluation.predictions_frame(np.array([[np.nan, 1.2], [0.5, np.inf]]), [0, 1])
    outcome = gx.validate(bad, "p", specs, None)
    assert not outcome.success
    assert {f["expectation"] for f in outcome.failures} == {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_between",
    }
