"""What the monitor hands NannyML: production batches with their labels joined,
the reference and analysis frames scored by the champion, and the signals
run on them (driftloop.adapters.nml)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftloop.adapters import nml
from driftloop.config.schema import ColumnType, DataConfig, DriftloopConfig, Problem
from driftloop.core.data import batch_data, batch_labels, conform
from driftloop.core.plan import plan
from driftloop.core.predictor import Outputs, Predictor, frame_columns, input_columns


def frames_spec(config: DriftloopConfig, outputs: Outputs, classes: list[Any]) -> nml.Frames:
    data = config.data
    inputs = input_columns(data, plan(config.features, data))
    categorical = [c for c in inputs if data.schema[c] in (ColumnType.string, ColumnType.bool)]
    proba: str | dict[str, str] | None = None
    if data.problem is Problem.binary:
        proba = outputs.proba
    elif data.problem is Problem.multiclass:
        proba = dict(zip(map(str, classes), outputs.class_columns(classes), strict=True))
    return nml.Frames(
        problem=data.problem.value,
        features=inputs,
        categorical=categorical,
        target=data.columns.target,
        y_pred=outputs.label,
        y_pred_proba=proba,
        timestamp=data.columns.timestamp,
    )


def scored(
    frame: pd.DataFrame,
    predictor: Predictor,
    outputs: Outputs,
    names: list[str],
    config: DriftloopConfig,
    version: str | None = None,
) -> pd.DataFrame:
    """The frame with the champion's prediction columns. Rows the champion
    ``version`` scored already (the prediction log says so) keep their logged
    predictions; the rest (older models, dropped-in batches) are scored now."""
    wanted = outputs.names(predictor.classes)
    logged = np.zeros(len(frame), dtype=bool)
    if version is not None and "model_version" in frame and all(c in frame for c in wanted):
        logged = (frame["model_version"].astype("string") == version).fillna(False).to_numpy()
    if logged.all():
        return frame
    todo = frame[~logged]
    predictions = outputs.columns(predictor.predict(frame_columns(todo, names, config.data.schema)))
    columns = {}
    for name, values in predictions.items():
        new = np.asarray(values)
        column = (
            frame[name].to_numpy(copy=True) if logged.any() else np.empty(len(frame), new.dtype)
        )
        column[~logged] = new
        columns[name] = column
    return frame.assign(**columns)


def batch_rows(batch: Path, data: DataConfig, keep: list[str]) -> pd.DataFrame:
    """One batch conformed to the data set's schema, labels joined where they
    arrived (the target is missing elsewhere), plus the ``keep`` columns it has."""
    target = data.columns.target
    rows = batch_data(batch).drop(columns=[target], errors="ignore")
    labels = batch_labels(batch, data)
    if labels is not None:
        rows = rows.merge(labels, on=data.columns.id, how="left")
    else:
        rows[target] = np.nan
    schema = {k: v for k, v in data.schema.items() if k != target}
    kept = conform(rows, replace(data, schema=schema), str(batch))
    extra = {name: rows[name].to_numpy() for name in keep if name in rows}
    return kept.assign(**{target: rows[target].to_numpy()}, **extra)


def recent_batches(
    incoming: Path, data: DataConfig, count: int, keep: list[str]
) -> tuple[list[str], pd.DataFrame] | None:
    """The ``count`` newest batches under data/incoming (by name), as one frame."""
    batches = sorted(p for p in incoming.iterdir() if p.is_dir()) if incoming.is_dir() else []
    if not batches:
        return None
    chosen = batches[-count:]
    frames = [batch_rows(batch, data, keep) for batch in chosen]
    return [b.name for b in chosen], pd.concat(frames, ignore_index=True)


def run_signals(
    config: DriftloopConfig, reference: pd.DataFrame, analysis: pd.DataFrame, frames: nml.Frames
) -> nml.Signals:
    monitor_cfg = config.monitor
    return nml.monitor(
        reference,
        analysis,
        frames,
        nml.Chunking(
            monitor_cfg.chunk_period, monitor_cfg.chunk_size, monitor_cfg.domain_classifier_rows
        ),
        (monitor_cfg.continuous_methods, monitor_cfg.categorical_methods),
        metrics_for(config),
    )


def metrics_for(config: DriftloopConfig) -> list[str]:
    base = ["rmse", "mae"] if config.data.problem is Problem.regression else ["roc_auc", "f1"]
    primary_metric = config.monitor.primary_metric
    return [primary_metric, *[m for m in base if m != primary_metric]]
