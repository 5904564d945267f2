"""Batch scoring's core: what a Spark Python worker needs to score Arrow batches
with the champion (the same predictor the API uses), the input checks, and
the prediction table it writes."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from driftloop.config.schema import ColumnType, DataConfig, Problem
from driftloop.core.plan import FeaturePlan
from driftloop.core.predictor import FOREST_MAX_ROWS, Outputs, Predictor, Scores
from driftloop.errors import DataError

if TYPE_CHECKING:
    from pyspark import Accumulator, Broadcast


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
