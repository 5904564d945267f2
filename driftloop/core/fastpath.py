"""Numpy paths compiled from fitted scikit-learn parts, for small batches.

Serving scores a few rows per call, where scikit-learn's fixed costs dominate:
the ColumnTransformer goes through pandas, and HistGradientBoosting walks its
trees one Python call per tree. These functions rebuild the same arithmetic
from the fitted parameters. ``driftloop.core.predictor`` checks them against the
fitted model on a probe and uses them only when the results are identical.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

Step = Callable[[np.ndarray], np.ndarray]
SMALL_BATCH = 64
# --- the compiled preprocessing --------------------------------------------------------


@dataclass(frozen=True)
class Block:
    columns: list[str]
    steps: list[Step]
    categorical: bool


def compile_prep(prep: Any) -> list[Block] | None:
    """Numpy steps equal to a fitted ColumnTransformer, or None if it has parts
    this compiler does not know."""
    if not isinstance(prep, ColumnTransformer) or prep.remainder != "drop":
        return None
    blocks = []
    for name, transformer, columns in prep.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        steps = _steps(transformer)
        if steps is None or not all(isinstance(c, str) for c in columns):
            return None
        categorical = any(isinstance(s, OneHotEncoder) for s in _parts(transformer))
        blocks.append(Block(list(columns), steps, categorical))
    return blocks


def _parts(transformer: Any) -> list[Any]:
    if isinstance(transformer, Pipeline):
        return [step for _, step in transformer.steps]
    return [transformer]


def _steps(transformer: Any) -> list[Step] | None:
    steps = []
    for part in _parts(transformer):
        step = _compile(part)
        if step is None:
            return None
        steps.append(step)
    return steps


def _compile(part: Any) -> Step | None:
    if isinstance(part, SimpleImputer):
        return _imputer(part)
    if isinstance(part, StandardScaler):
        return _scaler(part)
    if isinstance(part, OneHotEncoder):
        return _onehot(part)
    return None


def _imputer(imputer: SimpleImputer) -> Step | None:
    stats = imputer.statistics_
    missing = imputer.missing_values
    if imputer.add_indicator or not (isinstance(missing, float) and np.isnan(missing)):
        return None
    if stats.dtype.kind == "f" and np.isnan(stats).any():
        return None  # scikit-learn drops all-missing columns; keep that to sklearn

    def impute(x: np.ndarray) -> np.ndarray:
        mask = pd.isna(x) if x.dtype == object else np.isnan(x)
        return np.where(mask, stats, x) if mask.any() else x

    return impute


def _scaler(scaler: StandardScaler) -> Step:
    mean = scaler.mean_ if scaler.with_mean else None
    scale = scaler.scale_ if scaler.with_std else None

    def standardize(x: np.ndarray) -> np.ndarray:
        out = np.array(x, dtype="float64")
        if mean is not None:
            out -= mean
        if scale is not None:
            out /= scale
        return out

    return standardize


def _onehot(encoder: OneHotEncoder) -> Step | None:
    if encoder.drop_idx_ is not None or getattr(encoder, "_infrequent_enabled", False):
        return None
    if encoder.handle_unknown not in ("ignore", "infrequent_if_exist"):
        return None
    categories = list(encoder.categories_)
    lookups = [{value: i for i, value in enumerate(cats)} for cats in categories]
    offsets = np.cumsum([0] + [len(c) for c in categories])
    dtype = encoder.dtype

    def encode(x: np.ndarray) -> np.ndarray:
        out = np.zeros((len(x), int(offsets[-1])), dtype=dtype)
        for j, lookup in enumerate(lookups):
            column = x[:, j]
            if len(column) <= SMALL_BATCH:  # a dict lookup beats pandas' set-up cost
                codes = np.array([lookup.get(value, -1) for value in column], dtype="int64")
            else:
                codes = np.asarray(pd.Categorical(column, categories=categories[j]).codes)
            rows = np.flatnonzero(codes >= 0)  # unknown values stay all zeros
            out[rows, offsets[j] + codes[rows]] = 1.0
        return out

    return encode


def run_blocks(blocks: list[Block], frame: Mapping[str, np.ndarray], size: int) -> np.ndarray:
    """The model's input matrix from raw and feature columns."""
    parts = []
    for block in blocks:
        dtype = object if block.categorical else "float64"
        x = np.column_stack([np.asarray(frame[c], dtype=dtype) for c in block.columns])
        for step in block.steps:
            x = step(x)
        parts.append(np.asarray(x, dtype="float64"))
    return np.hstack(parts) if parts else np.empty((size, 0))


def model_columns(prep: Any) -> tuple[list[str], list[str]]:
    """Numeric and categorical input columns of a fitted ColumnTransformer."""
    numeric: list[str] = []
    categorical: list[str] = []
    for name, transformer, columns in getattr(prep, "transformers_", []):
        if name == "remainder":
            continue
        onehot = any(isinstance(s, OneHotEncoder) for s in _parts(transformer))
        (categorical if onehot else numeric).extend(columns)
    return numeric, categorical


# --- gradient-boosted trees ------------------------------------------------------------


@dataclass(frozen=True)
class Forest:
    """All trees of a HistGradientBoosting model as flat node arrays.

    Leaves point to themselves. Trees are walked shallowest first: at step s
    only the trees deeper than s still move, so the work follows each tree's
    own depth rather than the deepest one's.
    """

    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    roots: np.ndarray  # root node of each tree, shallowest tree first
    moving: list[int]  # at step s, trees from moving[s] on are still walking
    order: np.ndarray  # position of each tree (scikit-learn's order) in roots
    baseline: np.ndarray
    per_iteration: int

    def raw(self, x: np.ndarray) -> np.ndarray:
        """Raw predictions (n, k), summed in the order scikit-learn sums them."""
        n = len(x)
        rows = np.arange(n)[:, None]
        cur = np.repeat(self.roots[None, :], n, axis=0)
        for first in self.moving:
            at = cur[:, first:]
            values = x[rows, self.feature[at]]
            left = np.where(np.isnan(values), self.missing_left[at], values <= self.threshold[at])
            cur[:, first:] = np.where(left, self.left[at], self.right[at])
        leaves = self.value[cur][:, self.order].reshape(n, -1, self.per_iteration)
        start = np.broadcast_to(self.baseline, (n, 1, self.per_iteration))
        # cumsum adds left to right, as scikit-learn's tree-by-tree `+=` does
        total: np.ndarray = np.concatenate([start, leaves], axis=1).cumsum(axis=1)[:, -1, :]
        return total


def compile_forest(estimator: Any) -> Forest | None:
    """The trees of a fitted HistGradientBoosting model without categorical splits."""
    kinds = (HistGradientBoostingClassifier, HistGradientBoostingRegressor)
    if not isinstance(estimator, kinds) or not getattr(estimator, "_predictors", None):
        return None
    trees = [p.nodes for iteration in estimator._predictors for p in iteration]
    if any(t["is_categorical"].any() for t in trees):
        return None
    sizes = np.array([len(t) for t in trees])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype("int64")
    nodes = np.concatenate(trees)
    shift = np.repeat(offsets, sizes)
    own = np.arange(len(nodes), dtype="int64")
    leaf = nodes["is_leaf"].astype(bool)
    depths = np.array([int(t["depth"].max()) for t in trees])
    walk = np.argsort(depths, kind="stable")
    sorted_depths = depths[walk]
    return Forest(
        feature=np.where(leaf, 0, nodes["feature_idx"]).astype("int64"),
        threshold=nodes["num_threshold"].astype("float64"),
        missing_left=nodes["missing_go_to_left"].astype(bool),
        left=np.where(leaf, own, nodes["left"].astype("int64") + shift),
        right=np.where(leaf, own, nodes["right"].astype("int64") + shift),
        value=nodes["value"].astype("float64"),
        roots=offsets[walk],
        moving=[int(np.searchsorted(sorted_depths, s, side="right")) for s in range(depths.max())],
        order=np.argsort(walk),
        baseline=np.asarray(estimator._baseline_prediction, dtype="float64").reshape(1, 1, -1),
        per_iteration=len(estimator._predictors[0]),
    )


def forest_scores(estimator: Any, forest: Forest, x: np.ndarray) -> np.ndarray:
    """predict_proba (classifier) or predict (regressor) through the flat forest."""
    raw = forest.raw(x)
    if isinstance(estimator, HistGradientBoostingClassifier):
        proba: np.ndarray = estimator._loss.predict_proba(raw)
        return proba
    values: np.ndarray = estimator._loss.link.inverse(raw.ravel())
    return values
