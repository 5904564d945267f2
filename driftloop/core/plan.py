"""The feature plan: the features of conf/features parsed against the data
schema, and the same features computed in-process (the API's engine and the
model gate). Spark computes them from the same plan (driftloop.adapters.spark).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftloop.config.schema import DataConfig, FeaturesConfig, SplitConfig
from driftloop.config.validate import column_kinds
from driftloop.core.features import local
from driftloop.core.features.expressions import Feature, parse_all

ROUTE = "__split"
HASH_BUCKETS = 1_000_000


@dataclass(frozen=True)
class OneHot:
    name: str
    column: str
    value: str


@dataclass(frozen=True)
class FeaturePlan:
    features: list[Feature]
    onehot: list[OneHot]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features] + [o.name for o in self.onehot]


def slug(value: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", value.lower()).strip("_") or "blank"


def plan(features: FeaturesConfig, data: DataConfig) -> FeaturePlan:
    """Parse the declared features against the data schema."""
    parsed = parse_all([(f.name, f.expr) for f in features.derived], column_kinds(data))
    onehot = [
        OneHot(f"{column}__{slug(str(value))}", column, str(value))
        for column in features.onehot
        for value in data.categories[column]
    ]
    return FeaturePlan(parsed, onehot)


def featurize_pandas(frame: pd.DataFrame, feature_plan: FeaturePlan) -> pd.DataFrame:
    """The same features computed in-process (the API's engine) on a frame."""
    return pd.concat([frame, feature_frame(frame, feature_plan)], axis=1)


def feature_frame(frame: pd.DataFrame, feature_plan: FeaturePlan) -> pd.DataFrame:
    """Only the derived and one-hot feature columns of a raw frame."""
    columns = feature_columns(frame, feature_plan, len(frame))
    return pd.DataFrame(columns, index=frame.index)


def feature_columns(
    columns: local.Columns, feature_plan: FeaturePlan, size: int
) -> dict[str, np.ndarray]:
    """Derived and one-hot features of raw columns (Series or numpy arrays)."""
    out = local.evaluate_columns(feature_plan.features, columns, size)
    for o in feature_plan.onehot:
        out[o.name] = np.asarray(columns[o.column] == o.value, dtype="float64")
    return out


def holdout_mask(ids: pd.Series, split: SplitConfig) -> np.ndarray:
    """The random split rule, in-process: crc32 of "<id>:<seed>" below the fraction."""
    threshold = int(split.holdout_fraction * HASH_BUCKETS)
    return np.array(
        [zlib.crc32(f"{i}:{split.seed}".encode()) % HASH_BUCKETS < threshold for i in ids]
    )
