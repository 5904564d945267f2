"""The one place that talks to PySpark.

A session built from conf/spark, feature expressions compiled to Spark
columns, and a parquet writer whose bytes depend only on the data: Spark's own
writer is not byte-deterministic (encodings order in the footer changes from
one JVM to the next, and part files carry a random id), so each input split
is written by Arrow's parquet writer under a stable name, in input order.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import reduce
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from pyspark import Accumulator, Broadcast
from pyspark.errors import PythonException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from driftloop.adapters import parquet
from driftloop.config.schema import DataConfig, SparkConfig, SplitConfig, SplitKind
from driftloop.core.features.expressions import Call, Col, Kind, Lit, Node, inline
from driftloop.core.plan import HASH_BUCKETS, FeaturePlan
from driftloop.errors import DataError, DriftloopError

LOG4J = Path(__file__).with_name("log4j2.properties")


def require_java() -> None:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise DriftloopError(
            "Spark needs Java 17 or newer: 'java' is not on PATH and JAVA_HOME is not set"
        )


def session(cfg: SparkConfig) -> SparkSession:
    """Start (or reuse) the Spark session described by conf/spark."""
    require_java()
    os.environ.setdefault("SPARK_LOCAL_IP", cfg.driver_host)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    settings = {
        "spark.driver.memory": cfg.driver_memory,
        "spark.driver.host": cfg.driver_host,
        "spark.driver.bindAddress": cfg.driver_host,
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{LOG4J}",
        "spark.executor.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{LOG4J}",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(cfg.shuffle_partitions),
        "spark.sql.files.maxPartitionBytes": cfg.max_partition_bytes,
        "spark.sql.files.minPartitionNum": "1",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(cfg.arrow_batch_rows),
        **executor_settings(cfg),
        **cfg.conf,
    }
    builder = SparkSession.builder.master(cfg.master).appName(cfg.app_name)
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def executor_settings(cfg: SparkConfig) -> dict[str, str]:
    """The executor sizes conf/spark sets; unset ones stay Spark's defaults."""
    sizes = {
        "spark.executor.cores": cfg.executor_cores,
        "spark.executor.memory": cfg.executor_memory,
        "spark.cores.max": cfg.cores_max,
    }
    return {key: str(value) for key, value in sizes.items() if value is not None}


# --- feature expressions -> Spark columns ---------------------------------------

INF = float("inf")


def _finite(column: Column) -> Column:
    """Non-finite doubles become null, as in the in-process engine."""
    return F.when(F.isnan(column) | (F.abs(column) == F.lit(INF)), F.lit(None)).otherwise(column)


def _null_if_any(args: list[Column], value: Column) -> Column:
    test = reduce(lambda a, b: a | b, [arg.isNull() for arg in args])
    return F.when(test, F.lit(None).cast("double")).otherwise(value)


def _as_double(condition: Column) -> Column:
    return condition.cast("double")


def _truth(column: Column) -> Column:
    return column != F.lit(0.0)


def _guarded(func: str, arg: Column, valid: Column) -> Column:
    return F.when(valid, getattr(F, func)(arg)).otherwise(F.lit(None).cast("double"))


def to_column(node: Node) -> Column:
    """Compile a checked expression into a Spark column of doubles (or text)."""
    if isinstance(node, Lit):
        return F.lit(node.value)
    if isinstance(node, Col):
        column = F.col(f"`{node.name}`")
        return column.cast("string") if node.kind is Kind.str else _finite(column.cast("double"))
    return _call(node, [to_column(arg) for arg in node.args])


def _call(node: Call, a: list[Column]) -> Column:
    op = node.op
    if op in ("add", "sub", "mul", "pow", "neg", "exp", "abs"):
        return _finite(_arith(op, a))
    if op == "div":
        return _finite(F.try_divide(a[0], a[1]))
    if op in ("log", "log1p", "sqrt"):
        floor = {"log": 0.0, "log1p": -1.0}.get(op)
        valid = a[0] > F.lit(floor) if floor is not None else a[0] >= F.lit(0.0)
        return _guarded("ln" if op == "log" else op, a[0], valid)
    if op in ("clip", "least", "greatest"):
        return _null_if_any(a, _bounds(op, a))
    if op in ("eq", "ne", "lt", "le", "gt", "ge"):
        return _as_double(_compare(op, a[0], a[1]))
    if op == "and":
        return _as_double(_truth(a[0]) & _truth(a[1]))
    if op == "or":
        return _as_double(_truth(a[0]) | _truth(a[1]))
    if op == "not":
        return _as_double(a[0] == F.lit(0.0))
    if op == "in":
        return _as_double(a[0].isin(list(node.consts)))
    if op == "where":
        return F.when(_truth(a[0]), a[1]).otherwise(a[2])
    if op == "is_null":
        return _as_double(a[0].isNull())
    if op == "coalesce":
        return F.coalesce(*a)
    if op == "bucket":
        count = reduce(lambda x, y: x + y, [_as_double(a[0] >= F.lit(e)) for e in node.consts])
        return _null_if_any(a, count)
    raise DriftloopError(f"feature operation '{op}' has no Spark form")


def _arith(op: str, a: list[Column]) -> Column:
    if op == "add":
        return a[0] + a[1]
    if op == "sub":
        return a[0] - a[1]
    if op == "mul":
        return a[0] * a[1]
    if op == "pow":
        return F.pow(a[0], a[1])
    if op == "neg":
        return -a[0]
    if op == "exp":
        return F.exp(a[0])
    return F.abs(a[0])


def _bounds(op: str, a: list[Column]) -> Column:
    if op == "clip":
        return F.least(F.greatest(a[0], a[1]), a[2])
    return F.least(*a) if op == "least" else F.greatest(*a)


def _compare(op: str, x: Column, y: Column) -> Column:
    return {
        "eq": x == y,
        "ne": x != y,
        "lt": x < y,
        "le": x <= y,
        "gt": x > y,
        "ge": x >= y,
    }[op]


# --- the feature plan and the split ---------------------------------------------------


def spark_features(frame: DataFrame, feature_plan: FeaturePlan) -> list[Column]:
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


# --- deterministic parquet output -------------------------------------------------


def write_routed(
    frame: DataFrame, route: str, targets: dict[str, Path], row_group_size: int
) -> dict[str, int]:
    """Write each row to the folder its ``route`` value names; return rows per folder.

    Input split ``i`` becomes ``part-0000i.parquet`` in every folder that gets
    rows from it. Splits follow the input files' row groups and a fixed split
    size, so the layout is the same on local[*] and on any cluster.
    """
    for folder in targets.values():
        folder.mkdir(parents=True, exist_ok=True)
    # absolute: a cluster's executors run in working folders of their own
    names = {name: str(folder.resolve()) for name, folder in targets.items()}

    def write_split(batches: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
        from pyspark import TaskContext

        context = TaskContext.get()
        split = context.partitionId() if context is not None else 0
        counts = _write_split(batches, route, names, split, row_group_size)
        yield pa.RecordBatch.from_pylist(
            [{"target": name, "rows": rows} for name, rows in counts.items()],
            schema=pa.schema([("target", pa.string()), ("rows", pa.int64())]),
        )

    totals = dict.fromkeys(targets, 0)
    for row in frame.mapInArrow(write_split, "target string, rows long").collect():
        totals[row["target"]] += row["rows"]
    return totals


def _write_split(
    batches: Iterable[pa.RecordBatch],
    route: str,
    folders: dict[str, str],
    split: int,
    row_group_size: int,
) -> dict[str, int]:
    writers: dict[str, parquet.RowGroupWriter] = {}
    for batch in batches:
        table = pa.Table.from_batches([batch])
        for name, folder in folders.items():
            rows = table.filter(pc.equal(table[route], name)).drop_columns([route])
            if rows.num_rows == 0:
                continue
            if name not in writers:
                path = Path(folder) / f"part-{split:05d}.parquet"
                writers[name] = parquet.RowGroupWriter(path, rows.schema, row_group_size)
            writers[name].write(rows)
    return {name: writer.close() for name, writer in writers.items()}


@dataclass(frozen=True)
class SplitWritten:
    """What one task wrote: its input split, the rows, and the Python worker's pid."""

    split: int
    rows: int
    worker: int


def write_splits(
    frame: DataFrame,
    transform: Callable[[pa.RecordBatch], pa.Table],
    folder: Path,
    row_group_size: int,
) -> list[SplitWritten]:
    """Write ``transform`` of every Arrow batch of input split ``i`` to ``part-0000i.parquet``.

    One Python task per input split turns its batches into output rows and
    streams them to its own file, in input order: the same input gives the
    same files. Splits without rows write no file.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = str(folder.resolve())

    def write_split(batches: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
        split = _split_index()
        writer: parquet.RowGroupWriter | None = None
        for batch in batches:
            table = transform(batch)
            if writer is None:
                path = Path(target) / f"part-{split:05d}.parquet"
                writer = parquet.RowGroupWriter(path, table.schema, row_group_size)
            writer.write(table)
        rows = writer.close() if writer is not None else 0
        yield pa.RecordBatch.from_pylist(
            [{"split": split, "rows": rows, "worker": os.getpid()}], schema=SPLIT_SCHEMA
        )

    with python_errors():
        done = frame.mapInArrow(write_split, "split int, rows long, worker int").collect()
    written = [SplitWritten(r["split"], r["rows"], r["worker"]) for r in done]
    return sorted(written, key=lambda s: s.split)


SPLIT_SCHEMA = pa.schema([("split", pa.int32()), ("rows", pa.int64()), ("worker", pa.int32())])


def _split_index() -> int:
    from pyspark import TaskContext

    context = TaskContext.get()
    return context.partitionId() if context is not None else 0


def broadcast(spark: SparkSession, value: bytes) -> Broadcast[bytes]:
    """Ship ``value`` to every executor once; workers read it on first use."""
    return spark.sparkContext.broadcast(value)


def counter(spark: SparkSession) -> Accumulator[int]:
    """A count that Python workers add to and the driver reads after the job."""
    return spark.sparkContext.accumulator(0)


@contextmanager
def python_errors() -> Iterator[None]:
    """A failure in a Python worker becomes one line, not a JVM stack trace."""
    try:
        yield
    except PythonException as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        reason = next((line for line in reversed(lines) if not line.startswith(" ")), str(exc))
        raise DriftloopError(f"a Spark Python task failed: {reason.strip()}") from exc
