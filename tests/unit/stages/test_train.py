"""train: estimators from Hydra `_target_` nodes, the fitted pipeline, errors."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from driftloop.config.schema import DriftloopConfig, ModelConfig, Problem
from driftloop.core import data, plan
from driftloop.core import model as model_core
from driftloop.errors import ConfigError, DataError


def model(estimator: dict[str, object], problems: list[Problem] | None = None) -> ModelConfig:
    return ModelConfig(name="m", problems=problems or [Problem.binary], estimator=estimator)


@pytest.fixture(scope="module")
def features(config: DriftloopConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The default data featurized in-process and split by the pipeline's rule."""
    frame, _ = data.load_source(config.data, Path("unused"))
    raw = data.combine([data.conform(frame, config.data, "ref")], config.data)
    table = plan.featurize_pandas(raw, plan.plan(config.features, config.data))
    holdout = plan.holdout_mask(table["id"], config.features.split)
    return table[~holdout], table[holdout]


def test_estimator_from_target() -> None:
    est = model_core.build_estimator(
        model({"_target_": "sklearn.linear_model.LogisticRegression", "C": 0.5}), Problem.binary
    )
    assert type(est).__name__ == "LogisticRegression" and est.C == 0.5


@pytest.mark.parametrize(
    ("estimator", "problem", "message"),
    [
        (
            {"_target_": "sklearn.linear_model.Nope"},
            Problem.binary,
            r"_target_: cannot import 'sklearn.linear_model.Nope'",
        ),
        (
            {"_target_": "sklearn.linear_model.LogisticRegression", "CC": 1},
            Problem.binary,
            r"key CC: .*no such",
        ),
        (
            {"_target_": "sklearn.linear_model.LogisticRegression", "C": -1.0},
            Problem.binary,
            r"model\.estimator\.C: ",
        ),
        (
            {"_target_": "sklearn.linear_model.LogisticRegression"},
            Problem.regression,
            r"does not fit a regression",
        ),
        ({"_target_": "collections.OrderedDict"}, Problem.binary, r"not an estimator"),
    ],
)
def test_bad_model_config_names_file_and_key(
    estimator: dict[str, object], problem: Problem, message: str
) -> None:
    with pytest.raises(ConfigError, match=rf"conf/model/m\.yaml: .*{message}"):
        model_core.build_estimator(model(estimator, [problem]), problem)


def test_missing_feature_columns_are_named(
    config: DriftloopConfig, features: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    cols = model_core.columns(config)
    with pytest.raises(DataError, match=r"missing feature column\(s\) loan_burden"):
        model_core.split_xy(features[0].drop(columns=["loan_burden"]), cols, "data/features/train")


@pytest.mark.slow
def test_default_model_is_accurate_and_deterministic(
    config: DriftloopConfig, features: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    cols = model_core.columns(config)
    fitted = []
    for _ in range(2):
        estimator = model_core.build_estimator(config.model, config.data.problem)
        pipeline = model_core.build_pipeline(
            estimator, cols, config.data, config.train.scale_numeric
        )
        x, y = model_core.split_xy(features[0], cols, "train")
        fitted.append(pipeline.fit(x, y))
    assert model_core.model_bytes(fitted[0]) == model_core.model_bytes(fitted[1])
    x_hold, y_hold = model_core.split_xy(features[1], cols, "holdout")
    auc = roc_auc_score(y_hold, fitted[0].predict_proba(x_hold)[:, 1])
    assert auc >= 0.965, f"holdout ROC AUC {auc:.4f}"


def test_card_describes_inputs(
    config: DriftloopConfig, features: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    cfg = copy.deepcopy(config)
    cfg.model.estimator = {"_target_": "sklearn.linear_model.LogisticRegression", "max_iter": 200}
    cols = model_core.columns(cfg)
    pipeline = model_core.build_pipeline(
        model_core.build_estimator(cfg.model, cfg.data.problem), cols, cfg.data, True
    )
    x, y = model_core.split_xy(features[0].head(2000), cols, "train")
    info = model_core.card(
        cfg, cols, pipeline.fit(x, y), {"inputs": {"data/features/train": "abc.dir"}}
    )
    assert info["classes"] == [0, 1]
    assert info["categorical"] == ["salary_range", "size_of_downpayment"]
    assert "log_car_value" in info["numeric"] and info["inputs"]["data/features/train"] == "abc.dir"
