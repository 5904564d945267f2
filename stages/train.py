"""train: fit the model declared in conf/model on data/features/train.

The estimator comes from its Hydra ``_target_`` node (any scikit-learn
estimator or pipeline). Imputation, one-hot encoding and scaling are fitted
inside one scikit-learn pipeline and saved with the model, so serving gets
them for free. Every run is tracked in MLflow; the model file and its card
are deterministic for a fixed seed.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import pickle
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import yaml
from sklearn.base import is_classifier, is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from stages import lineage, runner
from stages.adapters import parquet, tracking
from stages.config.compose import find_root
from stages.config.schema import DataConfig, DriftloopConfig, ModelConfig, Problem
from stages.errors import ConfigError, DataError
from stages.featurize import plan
from stages.outputs import atomic_dir, write_json

log = logging.getLogger(__name__)
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


# --- core -----------------------------------------------------------------------


def columns(config: DriftloopConfig) -> Columns:
    """Model inputs: numeric and derived features, categoricals, and the target."""
    derived = plan(config.features, config.data).names
    cols = config.data.columns
    return Columns(cols.numeric + derived, list(cols.categorical), cols.target)


def build_estimator(model: ModelConfig, problem: Problem) -> Any:
    """Instantiate and check the estimator; errors name the config file and key."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    where = f"conf/model/{model.name}.yaml"
    try:
        estimator = instantiate(model.estimator, _convert_="all")
    except InstantiationException as exc:
        raise ConfigError(f"{where}: model.estimator: {_instantiation_reason(exc)}") from exc
    if not hasattr(estimator, "fit"):
        raise ConfigError(f"{where}: model.estimator._target_ is not an estimator (no fit)")
    _check_params(estimator, where)
    fits = is_regressor(estimator) if problem is Problem.regression else is_classifier(estimator)
    if not fits:
        raise ConfigError(
            f"{where}: {type(estimator).__name__} does not fit a {problem.value} problem"
        )
    return estimator


def _instantiation_reason(exc: Exception) -> str:
    text = str(exc)
    unexpected = re.search(r"unexpected keyword argument '(\w+)'", text)
    if unexpected:
        return f"key {unexpected.group(1)}: the estimator takes no such hyperparameter"
    located = re.search(r"Error locating target '([^']+)'", text)
    if located:
        return f"_target_: cannot import '{located.group(1)}'"
    return text.strip().splitlines()[0]


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


# --- wrapper ---------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--train", type=Path, required=True, help="training features folder")
    parser.add_argument("--lock", type=Path, default=Path("dvc.lock"), help="for feature hashes")
    parser.add_argument("--model", type=Path, required=True, help="candidate model folder")
    parser.add_argument("--metrics", type=Path, required=True)


def main(args: argparse.Namespace) -> None:
    config = runner.params(args.params)
    estimator = build_estimator(config.model, config.data.problem)
    cols = columns(config)
    with runner.timed("train") as say:
        say.step(f"reading {args.train}")
        frame = read_features(args.train, config.train.max_rows)
        x, y = split_xy(frame, cols, str(args.train))
        pipeline = build_pipeline(estimator, cols, config.data, config.train.scale_numeric)
        say.step(f"fitting {config.model.name} on {len(x)} rows x {len(cols.features)} features")
        started = time.perf_counter()
        pipeline.fit(x, y)
        fit_seconds = time.perf_counter() - started
        inputs = lineage.stage_outputs(args.lock, "featurize")
        metrics = {"train_rows": len(x), "features": len(cols.features)}
        say.step("saving the model and logging the MLflow run")
        with atomic_dir(args.model) as folder:
            (folder / MODEL_FILE).write_bytes(model_bytes(pipeline))
            write_json(folder / CARD_FILE, card(config, cols, pipeline, {"inputs": inputs}))
            run = log_training(
                config, args.params, pipeline, x, {**metrics, "fit_seconds": fit_seconds}, inputs
            )
        write_json(run_file(args.model), run)
        write_json(args.metrics, metrics)
        say(f"{config.model.name} on {len(x)} rows x {len(cols.features)} features")
        say(f"fit {fit_seconds:.1f} s, MLflow run {run['run_id']}")


def run_file(model_dir: Path) -> Path:
    """MLflow run of a model folder; kept beside it, outside DVC (run ids are random)."""
    return model_dir.parent / f"{model_dir.name}.mlflow.json"


def log_training(
    config: DriftloopConfig,
    params: Path,
    model: Pipeline,
    x: pd.DataFrame,
    metrics: dict[str, float],
    inputs: dict[str, str],
) -> dict[str, str]:
    """One MLflow run: composed config as params, metrics, the model, lineage tags."""
    root = find_root(params.resolve().parent)
    tracking.configure(config.tracking, root)
    tags = {"driftloop.stage": "train", "git.commit": lineage.git_commit(root)}
    tags.update({f"dvc.{path}": md5 for path, md5 in inputs.items()})
    if os.environ.get("DVC_EXP_NAME"):  # a queued experiment: its name in `dvc exp show`
        tags["dvc.experiment"] = os.environ["DVC_EXP_NAME"]
    raw = yaml.safe_load(params.read_text())
    with tracking.run(f"train-{config.model.name}", tags) as run_id:
        tracking.log_params(tracking.flatten(raw))
        tracking.log_metrics(metrics)
        uri = tracking.log_sklearn_model(model, x.head(5))
    return {
        "run_id": run_id,
        "model_uri": uri,
        "model_md5": hashlib.md5(model_bytes(model)).hexdigest(),
        "tracking_uri": tracking.tracking_uri(config.tracking, root),
        "trained_at": lineage.now(),
    }


def read_features(folder: Path, max_rows: int | None) -> pd.DataFrame:
    if not folder.exists():
        raise DataError(f"{folder}: features not found (run the featurize stage)")
    frame: pd.DataFrame = parquet.read_table(folder).to_pandas()
    return frame.head(max_rows) if max_rows else frame
