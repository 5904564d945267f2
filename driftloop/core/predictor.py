"""Scoring with a trained model: the one path the API and batch scoring share.

Inputs are raw columns (numpy arrays by name). The declared features are
computed in-process by the same rules as the Spark pipeline, then the model
scores them. For the model's own preprocessing (impute, scale, one-hot inside
a ColumnTransformer) the predictor compiles a numpy path from the fitted
parameters: on one row scikit-learn's pandas-based transform costs several
times the estimator itself. The compiled path is checked against the fitted
pipeline on a probe when the model is loaded and is used only when both give
the same bytes; anything it does not know runs through scikit-learn.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from sklearn.pipeline import Pipeline

from driftloop.config.schema import ColumnType, DataConfig, Problem
from driftloop.core import fastpath
from driftloop.core.data import ARROW_TYPES
from driftloop.core.features.expressions import columns_used
from driftloop.core.model import model_input
from driftloop.core.plan import FeaturePlan, feature_columns

log = logging.getLogger(__name__)
# above this many rows scikit-learn's own tree walk is faster than the flat one
FOREST_MAX_ROWS = 48


@dataclass(frozen=True)
class Scores:
    """Predicted label (or value) per row; class probabilities for classifiers."""

    label: np.ndarray
    proba: np.ndarray | None
    classes: list[Any]


# --- the predictor ------------------------------------------------------------------------


class Predictor:
    """A fitted model plus the feature plan it was trained with."""

    def __init__(self, model: Any, feature_plan: FeaturePlan, problem: Problem) -> None:
        self.model = model
        self.plan = feature_plan
        self.problem = problem
        self.classes: list[Any] = (
            [] if problem is Problem.regression else np.asarray(model.classes_).tolist()
        )
        pipeline = isinstance(model, Pipeline) and len(model.steps) >= 2
        prep = model.steps[0][1] if pipeline else None
        self.numeric, self.categorical = fastpath.model_columns(prep)
        self._blocks = fastpath.compile_prep(prep)
        self._rest = model[1:] if pipeline else None
        final = model.steps[-1][1] if pipeline and len(model.steps) == 2 else None
        self._final = final
        self._forest = fastpath.compile_forest(final)

    @property
    def compiled(self) -> bool:
        return self._blocks is not None

    def predict(self, columns: Mapping[str, np.ndarray]) -> Scores:
        """Score raw columns (numbers as float64, strings as objects, NaN for null)."""
        frame = dict(columns)
        size = len(next(iter(frame.values())))
        if self.plan.features or self.plan.onehot:
            frame.update(feature_columns(frame, self.plan, size))
        if self._blocks is None or self._rest is None:
            table = pd.DataFrame({c: frame[c] for c in self.numeric + self.categorical})
            return self._scores(self.model, model_input(table, self.numeric, self.categorical))
        matrix = fastpath.run_blocks(self._blocks, frame, size)
        if self._forest is not None and size <= FOREST_MAX_ROWS:
            out = fastpath.forest_scores(self._final, self._forest, matrix)
            return self._wrap(out)
        return self._scores(self._rest, matrix)

    def _scores(self, model: Any, x: Any) -> Scores:
        if self.problem is Problem.regression:
            return self._wrap(model.predict(x))
        return self._wrap(model.predict_proba(x))

    def _wrap(self, out: Any) -> Scores:
        if self.problem is Problem.regression:
            return Scores(np.asarray(out, dtype="float64"), None, [])
        proba = np.asarray(out, dtype="float64")
        return Scores(np.asarray(self.classes)[proba.argmax(axis=1)], proba, self.classes)

    def check_compiled(self, probe: Mapping[str, np.ndarray]) -> bool:
        """Keep the compiled paths only if they give the fitted model's exact output."""
        if self._blocks is None:
            return False
        fast = self.predict(probe)
        blocks, forest = self._blocks, self._forest
        self._blocks, self._forest = None, None
        slow = self.predict(probe)
        same = np.array_equal(fast.label, slow.label) and (
            fast.proba is None or slow.proba is None or np.array_equal(fast.proba, slow.proba)
        )
        if same:
            self._blocks, self._forest = blocks, forest
        else:
            log.warning("compiled scoring differs from the model's own; using scikit-learn")
        return same


def input_columns(data: DataConfig, feature_plan: FeaturePlan) -> list[str]:
    """Raw columns a record must carry: model inputs and what the features read."""
    cols = data.columns
    used = {c for f in feature_plan.features for c in columns_used(f.node)}
    used |= {o.column for o in feature_plan.onehot}
    derived = {f.name for f in feature_plan.features}
    wanted = set(cols.numeric) | set(cols.categorical) | (used - derived)
    return [name for name in data.schema if name in wanted]


def to_columns(
    records: Sequence[Mapping[str, Any]], names: list[str], types: Mapping[str, ColumnType]
) -> dict[str, np.ndarray]:
    """Records as typed column arrays: numbers float64 (None -> NaN), strings objects."""
    out: dict[str, np.ndarray] = {}
    for name in names:
        values = [record.get(name) for record in records]
        if types[name] is ColumnType.string:
            array = np.array(values, dtype=object)
            array[[value is None for value in values]] = np.nan
            out[name] = array
        else:
            out[name] = np.array(values, dtype="float64")
    return out


# --- output columns ----------------------------------------------------------------------


@dataclass(frozen=True)
class Outputs:
    """Names of the prediction columns in responses and in the log."""

    problem: Problem
    label: str
    proba: str

    @classmethod
    def of(cls, data: DataConfig) -> Outputs:
        cols = data.columns
        return cls(
            data.problem,
            cols.prediction or "prediction",
            cols.prediction_proba or "prediction_proba",
        )

    def arrow_types(self, data: DataConfig) -> dict[str, pa.DataType]:
        target = ARROW_TYPES[data.schema[data.columns.target]]
        if self.problem is Problem.regression:
            return {self.label: pa.float64()}
        if self.problem is Problem.binary:
            return {self.label: target, self.proba: pa.float64()}
        # multiclass: one probability column per class, named after the class
        # (the classes are the model's, known only once a model is loaded)
        return {self.label: target}

    def columns(self, scores: Scores) -> dict[str, Any]:
        out: dict[str, Any] = {self.label: scores.label}
        if scores.proba is not None and self.problem is Problem.binary:
            out[self.proba] = scores.proba[:, 1]
        elif scores.proba is not None:
            for i, name in enumerate(self.class_columns(scores.classes)):
                out[name] = scores.proba[:, i]
        return out

    def names(self, classes: list[Any]) -> list[str]:
        """The prediction columns ``columns`` writes for a model with ``classes``."""
        if self.problem is Problem.regression:
            return [self.label]
        if self.problem is Problem.binary:
            return [self.label, self.proba]
        return [self.label, *self.class_columns(classes)]

    def class_columns(self, classes: list[Any]) -> list[str]:
        return [f"{self.proba}_{c}" for c in classes]

    def rows(self, scores: Scores, start: int, stop: int) -> list[dict[str, Any]]:
        labels = scores.label[start:stop].tolist()
        if scores.proba is None:
            return [{"prediction": value} for value in labels]
        proba = scores.proba[start:stop]
        if self.problem is Problem.binary:
            return [
                {"prediction": label, "probability": p}
                for label, p in zip(labels, proba[:, 1].tolist(), strict=True)
            ]
        names = [str(c) for c in scores.classes]
        return [
            {"prediction": label, "probabilities": dict(zip(names, row, strict=True))}
            for label, row in zip(labels, proba.tolist(), strict=True)
        ]


def frame_columns(
    frame: pd.DataFrame, names: list[str], types: Mapping[str, ColumnType]
) -> dict[str, np.ndarray]:
    """A frame's columns as the predictor reads them (see ``to_columns``)."""
    out: dict[str, np.ndarray] = {}
    for name in names:
        series = frame[name]
        if types[name] is ColumnType.string:
            values = series.astype(object).to_numpy()
            out[name] = np.where(pd.isna(values), np.nan, values).astype(object)
        else:
            out[name] = pd.to_numeric(series, errors="coerce").to_numpy(
                dtype="float64", na_value=np.nan
            )
    return out
