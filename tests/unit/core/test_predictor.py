"""The predictor's compiled paths give scikit-learn's exact output, for every
kind of model and with missing values, on one row and on many."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression

from driftloop.config.schema import DriftloopConfig, Problem
from driftloop.core import predictor as predictor_module
from driftloop.core.data import conform, load_source
from driftloop.core.model import build_pipeline, columns, model_input, split_xy
from driftloop.core.plan import featurize_pandas, plan
from driftloop.core.predictor import Predictor, input_columns, to_columns
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def raw(config: DriftloopConfig) -> pd.DataFrame:
    frame, _ = load_source(config.data, ROOT / config.data.source.path)
    return conform(frame, config.data, "test").head(4000)


def with_gaps(raw: pd.DataFrame, names: list[str], seed: int) -> pd.DataFrame:
    """A copy with about a tenth of every input missing."""
    rng = np.random.default_rng(seed)
    out = raw[names].copy()
    for name in names:
        out[name] = out[name].astype(object).where(rng.random(len(out)) > 0.1, None)
    return out


def fitted(config: DriftloopConfig, raw: pd.DataFrame, estimator: Any, target: Any = None) -> Any:
    cols = columns(config)
    frame = featurize_pandas(raw, plan(config.features, config.data))
    x, y = split_xy(frame, cols, "test")
    return build_pipeline(estimator, cols, config.data, scale=True).fit(
        x, y if target is None else target(x, y)
    )


def sklearn_output(model: Any, config: DriftloopConfig, records: pd.DataFrame) -> np.ndarray:
    cols = columns(config)
    frame = featurize_pandas(records.reset_index(drop=True), plan(config.features, config.data))
    x = model_input(frame, cols.numeric, cols.categorical)
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(x))
    return np.asarray(model.predict(x))


MODELS = {
    "hgb": (lambda: HistGradientBoostingClassifier(max_iter=60, random_state=0), None),
    "logreg": (lambda: LogisticRegression(max_iter=500), None),
    "rf": (lambda: RandomForestClassifier(n_estimators=20, random_state=0), None),
    "hgb-multiclass": (
        lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0),
        lambda x, y: pd.cut(x["car_value"], 3, labels=["low", "mid", "high"]).astype(str),
    ),
    "hgb-regression": (
        lambda: HistGradientBoostingRegressor(max_iter=40, random_state=0),
        lambda x, y: x["car_value"] * 0.01 + y,
    ),
}


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("rows", [1, 7, 48, 300])
def test_compiled_scoring_equals_the_fitted_pipeline(
    config: DriftloopConfig, raw: pd.DataFrame, name: str, rows: int
) -> None:
    make, target = MODELS[name]
    model = fitted(config, raw, make(), target)
    problem = Problem.regression if name.endswith("regression") else Problem.binary
    if name.endswith("multiclass"):
        problem = Problem.multiclass
    feature_plan = plan(config.features, config.data)
    names = input_columns(config.data, feature_plan)
    records = with_gaps(raw, names, seed=rows).head(rows)
    predictor = Predictor(model, feature_plan, problem)
    columns_ = to_columns(records.to_dict("records"), names, config.data.schema)
    assert predictor.compiled
    assert predictor.check_compiled(columns_)
    scores = predictor.predict(columns_)
    expected = sklearn_output(model, config, records)
    got = scores.label if problem is Problem.regression else scores.proba
    assert np.array_equal(got, expected)


def test_large_batches_use_scikit_learns_tree_walk(
    config: DriftloopConfig, raw: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fitted(config, raw, HistGradientBoostingClassifier(max_iter=20, random_state=0))
    feature_plan = plan(config.features, config.data)
    names = input_columns(config.data, feature_plan)
    columns_ = to_columns(raw[names].head(100).to_dict("records"), names, config.data.schema)
    predictor = Predictor(model, feature_plan, Problem.binary)
    flat = predictor.predict(columns_)
    monkeypatch.setattr(predictor_module, "FOREST_MAX_ROWS", 0)
    walked = predictor.predict(columns_)
    assert np.array_equal(flat.proba, walked.proba)


def test_input_columns_are_what_the_model_and_features_read(config: DriftloopConfig) -> None:
    names = input_columns(config.data, plan(config.features, config.data))
    assert names == [
        "car_value",
        "salary_range",
        "debt_to_income_ratio",
        "loan_length",
        "repaid_loan_on_prev_car",
        "size_of_downpayment",
        "driver_tenure",
    ]


def test_to_columns_types_and_nulls(config: DriftloopConfig) -> None:
    records = [{"car_value": 1, "salary_range": None}, {"car_value": None, "salary_range": "x"}]
    out = to_columns(records, ["car_value", "salary_range"], config.data.schema)
    assert out["car_value"].dtype == np.float64 and np.isnan(out["car_value"][1])
    assert out["salary_range"].dtype == object
    assert pd.isna(out["salary_range"][0]) and out["salary_range"][1] == "x"
