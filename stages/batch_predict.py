"""batch_predict: score a raw data set with the champion model in Spark.

Spark reads the input and hands each input split to a Python worker as Arrow
batches (``mapInArrow``). The champion's pickled bytes are broadcast once;
each Python worker unpickles them on first use and keeps the predictor for
every later batch and task. Scoring goes through ``driftloop.core.predictor``, the
same code the API uses, so the declared features are computed by the same
in-process rules. Each split's predictions (id, timestamp, prediction columns,
model digest) are written by Arrow's parquet writer as ``part-NNNNN.parquet``:
the same input and model give byte-identical files.
"""

from __future__ import annotations

import argparse
import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from driftloop.adapters import parquet
from driftloop.config.schema import DriftloopConfig
from driftloop.core import runner
from driftloop.core.champion import Champion, load_champion
from driftloop.core.outputs import atomic_dir, write_json
from driftloop.core.plan import plan
from driftloop.core.predictor import Outputs, input_columns
from driftloop.errors import DataError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
from driftloop.core.scoring import (
    MODEL_COLUMN,
    PROBE_ROWS,
    Scoring,
    Written,
    build_predictor,
    check_input,
    kept_columns,
    prediction_types,
    predictor_columns,
    score_batch,
)

log = logging.getLogger(__name__)


def input_files(path: Path) -> list[Path]:
    if not path.exists():
        raise DataError(f"{path}: the data to score is not there (batch.input)")
    files = parquet.parquet_files(path)
    if not files:
        raise DataError(f"{path}: no parquet files to score (batch.input)")
    return files


def prepare(
    spark: SparkSession, source: Path, champion: Champion, config: DriftloopConfig
) -> Scoring:
    """Check the input against the model's needs; broadcast the model."""
    from driftloop.adapters.spark import broadcast, counter

    data = config.data
    feature_plan = plan(config.features, data)
    inputs = {name: data.schema[name] for name in input_columns(data, feature_plan)}
    keep = kept_columns(data)
    first = input_files(source)[0]
    check_input(parquet.read_schema(first), {c: data.schema[c] for c in keep} | inputs, str(first))
    probe = predictor_columns(parquet.head(first, list(inputs), PROBE_ROWS), inputs)
    predictor = build_predictor(champion.model, feature_plan, data.problem, probe)
    return Scoring(
        model=broadcast(spark, champion.data),
        digest=champion.digest,
        version=champion.version,
        feature_plan=feature_plan,
        problem=data.problem,
        inputs=inputs,
        keep=keep,
        outputs=Outputs.of(data),
        types=prediction_types(data, predictor),
        probe=probe,
        threads=config.batch.model_threads,
        loads=counter(spark),
    )


def write_predictions(
    spark: SparkSession, source: Path, champion: Champion, config: DriftloopConfig, out: Path
) -> Written:
    """Score ``source`` with the champion into ``out`` (atomically)."""
    from driftloop.adapters.spark import write_splits

    scoring = prepare(spark, source, champion, config)
    names = list(dict.fromkeys([*scoring.keep, *scoring.inputs]))
    try:
        frame = spark.read.parquet(str(source.resolve())).select(*[f"`{n}`" for n in names])
        with atomic_dir(out) as folder:
            splits = write_splits(
                frame, partial(score_batch, scoring), folder, config.batch.row_group_size
            )
    finally:
        scoring.model.destroy()
    columns = [*scoring.keep, *scoring.types, MODEL_COLUMN]
    return Written(
        rows=sum(s.rows for s in splits),
        files=sum(1 for s in splits if s.rows),
        workers=len({s.worker for s in splits}),
        loads=int(scoring.loads.value),
        columns=columns,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--input", type=Path, required=True, help="raw parquet file or folder")
    parser.add_argument("--champion", type=Path, required=True, help="champion model folder")
    parser.add_argument("--out", type=Path, required=True, help="predictions folder")
    parser.add_argument("--metrics", type=Path, required=True)


def main(args: argparse.Namespace) -> None:
    from driftloop.adapters.spark import session

    config = runner.params(args.params)
    with runner.timed("batch_predict") as say:
        champion = load_champion(args.champion)
        say.step(f"starting Spark ({config.spark.master})")
        spark = session(config.spark)
        say.step(f"scoring {args.input} with champion version {champion.version}")
        done = write_predictions(spark, args.input, champion, config, args.out)
        if done.rows == 0:
            log.warning("batch_predict: %s has no rows; the predictions are empty", args.input)
        metrics = {"rows": done.rows, "model_digest": champion.digest, "columns": done.columns}
        write_json(args.metrics, metrics)
        say(f"{done.rows} rows scored with champion version {champion.version}")
        say(f"{done.files} file(s); {done.workers} Python worker(s), {done.loads} model load(s)")
