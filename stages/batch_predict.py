"""batch_predict: score a raw data set with the champion model in Spark.

Spark reads the input and hands each input split to a Python worker as Arrow
batches (``mapInArrow``). The champion's pickled bytes are broadcast once;
each Python worker unpickles them on first use and keeps the predictor for
every later batch and task. Scoring goes through ``stages.predictor``, the
same code the API uses, so the declared features are computed by the same
in-process rules. Each split's predictions (id, timestamp, prediction columns,
model digest) are written by Arrow's parquet writer as ``part-NNNNN.parquet``:
the same input and model give byte-identical files.
"""

from __future__ import annotations

import argparse
import logging
import pickle
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from stages import runner
from stages.adapters import parquet
from stages.config.schema import ColumnType, DataConfig, DriftloopConfig, Problem
from stages.errors import DataError
from stages.featurize import FeaturePlan, plan
from stages.outputs import atomic_dir, write_json
from stages.predictor import FOREST_MAX_ROWS, Outputs, Predictor, Scores, input_columns
from stages.promote import Champion, load_champion

if TYPE_CHECKING:
    from pyspark import Accumulator, Broadcast
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
# The model's content digest, not its registry version: registry numbers are
# local to each clone's MLflow store, and DVC outputs must be the same anywhere.
MODEL_COLUMN = "model_digest"
# the probe that decides whether the compiled scoring paths are exact: small
# enough that it takes the compiled tree walk too
PROBE_ROWS = FOREST_MAX_ROWS


@dataclass(frozen=True)
class Scoring:
    """What a Python worker needs to score batches (pickled into every task)."""

    model: Broadcast[bytes]  # model.pkl as promote wrote it
    digest: str  # the worker's cache key
    version: str
    feature_plan: FeaturePlan
    problem: Problem
    inputs: dict[str, ColumnType]  # the raw columns the predictor reads
    keep: list[str]  # passed through: id and timestamp
    outputs: Outputs
    types: dict[str, pa.DataType]  # the prediction columns
    probe: dict[str, np.ndarray]
    threads: int
    loads: Accumulator[int]  # model unpickles, summed over the workers


@dataclass(frozen=True)
class Written:
    rows: int
    files: int
    workers: int
    loads: int
    columns: list[str]


# --- core -----------------------------------------------------------------------


def kept_columns(data: DataConfig) -> list[str]:
    """Columns copied from the input to each prediction row."""
    return [c for c in (data.columns.id, data.columns.timestamp) if c]


def check_input(schema: pa.Schema, needed: dict[str, ColumnType], where: str) -> None:
    """Every needed column is present, with a type of its kind."""
    missing = [name for name in needed if name not in schema.names]
    if missing:
        raise DataError(f"{where}: missing input column(s) {', '.join(missing)}")
    for name, kind in needed.items():
        arrow = schema.field(name).type
        if not _kind_fits(kind, arrow):
            raise DataError(f"{where}: column '{name}' is {arrow}, data.schema says {kind.value}")


def _kind_fits(kind: ColumnType, arrow: pa.DataType) -> bool:
    if kind is ColumnType.string:
        return bool(pa.types.is_string(arrow) or pa.types.is_large_string(arrow))
    if kind is ColumnType.timestamp:
        return bool(pa.types.is_timestamp(arrow) or pa.types.is_date(arrow))
    return bool(
        pa.types.is_integer(arrow)
        or pa.types.is_floating(arrow)
        or pa.types.is_boolean(arrow)
        or pa.types.is_decimal(arrow)
    )


def predictor_columns(
    table: pa.Table | pa.RecordBatch, inputs: dict[str, ColumnType]
) -> dict[str, np.ndarray]:
    """Arrow columns as the predictor takes them: float64 or objects, NaN for null."""
    out: dict[str, np.ndarray] = {}
    for name, kind in inputs.items():
        column = table.column(name)
        if kind is ColumnType.string:
            values = np.array(column.to_numpy(zero_copy_only=False), dtype=object)
            nulls = column.is_null().to_numpy(zero_copy_only=False)
            if nulls.any():
                values[nulls] = np.nan
            out[name] = values
        else:
            out[name] = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    return out


def prediction_types(data: DataConfig, predictor: Predictor) -> dict[str, pa.DataType]:
    """Prediction columns and their types, named as the API and its log name them."""
    outputs = Outputs.of(data)
    types = outputs.arrow_types(data)
    if data.problem is Problem.multiclass:
        types.update(dict.fromkeys(outputs.class_columns(predictor.classes), pa.float64()))
    return types


def build_predictor(
    model: Any, feature_plan: FeaturePlan, problem: Problem, probe: dict[str, np.ndarray]
) -> Predictor:
    """The predictor, its compiled paths kept only if exact on the probe rows."""
    predictor = Predictor(model, feature_plan, problem)
    if probe and len(next(iter(probe.values()))):
        predictor.check_compiled(probe)
    return predictor


def output_table(batch: pa.RecordBatch, scores: Scores, scoring: Scoring) -> pa.Table:
    """Kept input columns, the prediction columns and the model's digest."""
    fields = [batch.schema.field(name) for name in scoring.keep]
    arrays = [batch.column(name) for name in scoring.keep]
    for name, values in scoring.outputs.columns(scores).items():
        fields.append(pa.field(name, scoring.types[name]))
        arrays.append(pa.array(values, type=scoring.types[name]))
    fields.append(pa.field(MODEL_COLUMN, pa.string()))
    arrays.append(pa.array([scoring.digest] * batch.num_rows, type=pa.string()))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


# --- in the Python workers ---------------------------------------------------------------

# digest -> predictor; lives as long as the Python worker process
_LOADED: dict[str, Predictor] = {}


def worker_predictor(scoring: Scoring) -> Predictor:
    """This worker's predictor: unpickled from the broadcast on first use, then reused."""
    predictor = _LOADED.get(scoring.digest)
    if predictor is None:
        _LOADED.clear()  # one model per worker: a new champion replaces the old one
        model = pickle.loads(scoring.model.value)
        predictor = build_predictor(model, scoring.feature_plan, scoring.problem, scoring.probe)
        _LOADED[scoring.digest] = predictor
        scoring.loads.add(1)
    return predictor


def score_batch(scoring: Scoring, batch: pa.RecordBatch) -> pa.Table:
    from threadpoolctl import threadpool_limits

    predictor = worker_predictor(scoring)
    columns = predictor_columns(batch, scoring.inputs)
    with threadpool_limits(scoring.threads):
        scores = predictor.predict(columns)
    return output_table(batch, scores, scoring)


# --- wrapper ---------------------------------------------------------------------


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
    from stages.adapters.spark import broadcast, counter

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
    from stages.adapters.spark import write_splits

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
    from stages.adapters.spark import session

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
