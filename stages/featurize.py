"""featurize: apply the feature expressions of conf/features with Spark and
split rows into data/features/train and data/features/holdout.

The expressions are the same ones the API evaluates in-process
(``driftloop.core.features.local``). Output files are written by Arrow's parquet
writer per input split (``part-NNNNN.parquet``), so the same input gives
byte-identical files and `dvc status` stays clean after a forced re-run.
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from driftloop.config.schema import DriftloopConfig
from driftloop.core import runner
from driftloop.core.outputs import atomic_dir, write_json
from driftloop.core.plan import ROUTE, plan
from driftloop.errors import DataError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


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
    from driftloop.adapters.spark import spark_features, spark_route, write_routed

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
    from driftloop.adapters.spark import session

    config = runner.params(args.params)
    names = plan(config.features, config.data).names
    with runner.timed("featurize") as say:
        say.step(f"starting Spark ({config.spark.master})")
        spark = session(config.spark)
        say.step(f"computing {len(names)} features on {args.raw} and writing the splits")
        counts = write_features(spark, args.raw, config, args.train, args.holdout)
        write_json(args.metrics, {"rows": counts, "features": names})
        say(f"{counts['train']} train / {counts['holdout']} holdout rows, {len(names)} features")
