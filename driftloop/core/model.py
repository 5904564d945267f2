"""The model: its inputs (columns, frame to model input), the estimator built
from conf/model, the preprocessing fitted with it, its bytes and its card."""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.base import is_classifier, is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from driftloop.adapters import parquet
from driftloop.config.instantiate import instantiate
from driftloop.config.schema import DataConfig, DriftloopConfig, ModelConfig, Problem
from driftloop.core.plan import plan
from driftloop.errors import ConfigError, DataError

MODEL_FILE = "model.pkl"


CARD_FILE = "card.json"


@dataclass(frozen=True)
class Columns:
    numeric: list[str]
    categorical: list[str]
    target: str

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical


def columns(config: DriftloopConfig) -> Columns:
    """Model inputs: numeric and derived features, categoricals, and the target."""
    derived = plan(config.features, config.data).names
    cols = config.data.columns
    return Columns(cols.numeric + derived, list(cols.categorical), cols.target)


def build_estimator(model: ModelConfig, problem: Problem) -> Any:
    """Instantiate and check the estimator; errors name the config file and key."""
    where = f"conf/model/{model.name}.yaml"
    estimator = instantiate(model.estimator, f"{where}: model.estimator")
    if not hasattr(estimator, "fit"):
        raise ConfigError(f"{where}: model.estimator._target_ is not an estimator (no fit)")
    _check_params(estimator, where)
    fits = is_regressor(estimator) if problem is Problem.regression else is_classifier(estimator)
    if not fits:
        raise ConfigError(
            f"{where}: {type(estimator).__name__} does not fit a {problem.value} problem"
        )
    return estimator


def _check_params(estimator: Any, where: str) -> None:
    """scikit-learn checks hyperparameter values at fit; check them now instead."""
    validate = getattr(estimator, "_validate_params", None)
    if validate is None:
        return
    try:
        validate()
    except (ValueError, TypeError) as exc:
        key = re.search(r"The '(\w+)' parameter", str(exc))
        name = f"model.estimator.{key.group(1)}" if key else "model.estimator"
        raise ConfigError(f"{where}: {name}: {exc}") from exc


def build_pipeline(estimator: Any, cols: Columns, data: DataConfig, scale: bool) -> Pipeline:
    """Preprocessing fitted with the model: impute, scale, one-hot encode."""
    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy="median"))]
    if scale:
        numeric_steps.append(("scale", StandardScaler()))
    categories = [data.categories.get(c, "auto") for c in cols.categorical]
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent")),
            ("onehot", OneHotEncoder(categories=categories, handle_unknown="ignore")),
        ]
    )
    transformers: list[tuple[str, Any, list[str]]] = [
        ("numeric", Pipeline(numeric_steps), cols.numeric)
    ]
    if cols.categorical:
        transformers.append(("categorical", categorical, cols.categorical))
    prep = ColumnTransformer(transformers, sparse_threshold=0.0)
    return Pipeline([("prep", prep), ("model", estimator)])


def split_xy(frame: pd.DataFrame, cols: Columns, where: str) -> tuple[pd.DataFrame, pd.Series]:
    missing = [c for c in [*cols.features, cols.target] if c not in frame.columns]
    if missing:
        raise DataError(f"{where}: missing feature column(s) {', '.join(missing)}")
    labelled = frame[frame[cols.target].notna()]
    if labelled.empty:
        raise DataError(f"{where}: no labelled rows to train on")
    return model_input(labelled, cols.numeric, cols.categorical), labelled[cols.target]


def model_input(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """The model's input columns: numbers as float64, a missing category as NaN.

    The categorical imputer fills NaN; a None (how parquet and JSON give a
    missing string) would pass it as one more unknown category.
    """
    x = frame[numeric + categorical].astype({c: "float64" for c in numeric})
    for name in categorical:
        column = x[name].astype(object)
        x[name] = column.where(column.notna(), np.nan)
    return x


def model_bytes(model: Pipeline) -> bytes:
    """Pickled model: the same fitted model gives the same bytes."""
    return pickle.dumps(model, protocol=5)


def card(
    config: DriftloopConfig, cols: Columns, model: Pipeline, extra: dict[str, Any]
) -> dict[str, Any]:
    """What a reader needs to know about the model, deterministic for a fixed seed."""
    classes = getattr(model, "classes_", None)
    return {
        "model": config.model.name,
        "estimator": config.model.estimator,
        "problem": config.data.problem.value,
        "data": config.data.name,
        "target": cols.target,
        "numeric": cols.numeric,
        "categorical": cols.categorical,
        "classes": None if classes is None else np.asarray(classes).tolist(),
        "seed": config.train.seed,
        "sklearn": sklearn.__version__,
        **extra,
    }


def run_file(model_dir: Path) -> Path:
    """MLflow run of a model folder; kept beside it, outside DVC (run ids are random)."""
    return model_dir.parent / f"{model_dir.name}.mlflow.json"


def read_features(folder: Path, max_rows: int | None) -> pd.DataFrame:
    if not folder.exists():
        raise DataError(f"{folder}: features not found (run the featurize stage)")
    frame: pd.DataFrame = parquet.read_table(folder).to_pandas()
    return frame.head(max_rows) if max_rows else frame


def load_model(folder: Path) -> Any | None:
    path = folder / MODEL_FILE
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        return pickle.load(handle)
