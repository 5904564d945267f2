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
import os
import time
from pathlib import Path

import pandas as pd
import yaml
from sklearn.pipeline import Pipeline

from driftloop.adapters import tracking
from driftloop.config.compose import find_root
from driftloop.config.schema import DriftloopConfig
from driftloop.core import lineage, runner
from driftloop.core.model import (
    CARD_FILE,
    MODEL_FILE,
    build_estimator,
    build_pipeline,
    card,
    columns,
    model_bytes,
    read_features,
    run_file,
    split_xy,
)
from driftloop.core.outputs import atomic_dir, write_json


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
