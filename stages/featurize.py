"""featurize: apply the feature expressions of conf/features with Spark and
split rows into data/features/train and data/features/holdout.

The expressions are the same ones the API evaluates in-process
(``stages.features.local``). Output files are written by Arrow's parquet
writer per input split (``part-NNNNN.parquet``), so the same input gives
byte-identical files and `dvc status` stays clean after a forced re-run.
"""

from __future__ import annotations

import argparse
import logging
import re
import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from stages import runner
from stages.config.schema import DataConfig, DriftloopConfig, FeaturesConfig, SplitConfig, SplitKind
from stages.config.validate import column_kinds
from stages.errors import DataError
from stages.features import local
from stages.features.expressions import Feature, parse_all
from stages.outputs import atomic_dir, write_json

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

log = logging.getLogger(__name__)
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


# --- core -----------------------------------------------------------------------


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


# --- Spark -----------------------------------------------------------------------


def spark_features(frame: DataFrame, feature_plan: FeaturePlan) -> list[Column]:
    from pyspark.sql import functions as F

    from stages.adapters.spark import to_column
    from stages.features.expressions import inline

    earlier = {f.name: f.node for f in feature_plan.features}
    columns = [to_column(inline(f.node, earlier)).alias(f.name) for f in feature_plan.features]
    for o in feature_plan.onehot:
        indicator = F.coalesce(
            (F.col(f"`{o.column}`") == F.lit(o.value)).cast("double"), F.lit(0.0)
        )
        columns.append(indicator.alias(o.name))
    return columns


def spark_route(frame: DataFrame, split: SplitConfig, data: DataConfig) -> Column:
    """'holdout' or 'train' per row, by the same rule whatever the cluster."""
    from pyspark.sql import functions as F

    if split.kind is SplitKind.random:
        key = F.concat(F.col(f"`{data.columns.id}`").cast("string"), F.lit(f":{split.seed}"))
        test = F.pmod(F.crc32(key), F.lit(HASH_BUCKETS)) < F.lit(
            int(split.holdout_fraction * HASH_BUCKETS)
        )
    else:
        ts = data.columns.timestamp
        assert ts is not None
        cutoff = split.cutoff or time_cutoff(frame, ts, split.holdout_fraction)
        test = F.col(f"`{ts}`") >= F.lit(cutoff).cast(frame.schema[ts].dataType)
    return F.when(test, F.lit("holdout")).otherwise(F.lit("train"))


def time_cutoff(frame: DataFrame, ts: str, fraction: float) -> str:
    """The timestamp that leaves ``fraction`` of the rows at or after it."""
    rows = frame.count()
    skip = rows - max(1, round(rows * fraction))
    first = frame.select(ts).orderBy(ts).offset(skip).limit(1).first()
    if first is None:
        raise DataError("features.split: no rows to split by time")
    return str(first[0])


# --- wrapper ---------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--holdout", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)


def write_features(
    spark: SparkSession, raw_path: Path, config: DriftloopConfig, train: Path, holdout: Path
) -> dict[str, int]:
    """Featurize raw_path with Spark into the train and holdout folders (atomically)."""
    from stages.adapters.spark import write_routed

    if not raw_path.exists():
        raise DataError(f"{raw_path}: raw data not found (run the ingest stage)")
    feature_plan = plan(config.features, config.data)
    raw = spark.read.parquet(str(raw_path.resolve()))
    route = spark_route(raw, config.features.split, config.data)
    table = raw.select("*", *spark_features(raw, feature_plan), route.alias(ROUTE))
    with ExitStack() as stack:
        folders = {
            "train": stack.enter_context(atomic_dir(train)),
            "holdout": stack.enter_context(atomic_dir(holdout)),
        }
        counts = write_routed(table, ROUTE, folders, config.features.row_group_size)
        for name, rows in counts.items():
            if rows == 0:
                raise DataError(f"featurize: the {name} split is empty; check features.split")
    return counts


def main(args: argparse.Namespace) -> None:
    from stages.adapters.spark import session

    config = runner.params(args.params)
    names = plan(config.features, config.data).names
    with runner.timed("featurize") as say:
        say.step(f"starting Spark ({config.spark.master})")
        spark = session(config.spark)
        say.step(f"computing {len(names)} features on {args.raw} and writing the splits")
        counts = write_features(spark, args.raw, config, args.train, args.holdout)
        write_json(args.metrics, {"rows": counts, "features": names})
        say(f"{counts['train']} train / {counts['holdout']} holdout rows, {len(names)} features")
