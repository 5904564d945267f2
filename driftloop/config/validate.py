"""Checks across keys that a dataclass schema cannot express.

Each problem names the group file and the key, e.g.
``conf/features/car_loan.yaml: features.derived[1].expr: unknown column 'x'``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from driftloop.config.schema import (
    BatchConfig,
    ColumnType,
    DataConfig,
    DriftloopConfig,
    ExpectationsConfig,
    FeaturesConfig,
    MonitorConfig,
    Problem,
    ServeConfig,
    SparkConfig,
    SplitKind,
    TrackingConfig,
)
from driftloop.core.features.expressions import ExpressionError, Kind, parse_all
from driftloop.errors import ConfigError

NUMERIC_TYPES = {ColumnType.int, ColumnType.float, ColumnType.bool}
Where = Callable[[str], str]


def validate(config: DriftloopConfig, where: Where) -> None:
    checks: list[tuple[str, Callable[[], None]]] = [
        ("data", lambda: check_data(config.data)),
        ("features", lambda: check_features(config.features, config.data)),
        ("expectations", lambda: check_expectations(config.expectations, config.data)),
        ("model", lambda: check_model(config)),
        ("monitor", lambda: check_monitor(config.monitor)),
        ("serve", lambda: check_serve(config.serve)),
        ("batch", lambda: check_batch(config.batch)),
        ("spark", lambda: check_spark(config.spark)),
        ("tracking", lambda: check_tracking(config.tracking)),
    ]
    for group, check in checks:
        try:
            check()
        except ConfigError as exc:
            raise ConfigError(f"{where(group)}: {exc}") from exc


def column_kinds(data: DataConfig) -> dict[str, Kind]:
    """The raw columns a feature expression may use, by kind."""
    kinds = {}
    for name, kind in data.schema.items():
        if kind is ColumnType.timestamp or name == data.columns.target:
            continue
        kinds[name] = Kind.num if kind in NUMERIC_TYPES else Kind.str
    return kinds


def check_data(data: DataConfig) -> None:
    cols = data.columns
    roles = {"data.columns.id": [cols.id], "data.columns.target": [cols.target]}
    roles["data.columns.timestamp"] = [cols.timestamp] if cols.timestamp else []
    roles["data.columns.numeric"] = cols.numeric
    roles["data.columns.categorical"] = cols.categorical
    roles["data.optional"] = data.optional
    for key, names in roles.items():
        for name in names:
            if name not in data.schema:
                raise ConfigError(f"{key}: column '{name}' is not in data.schema")
    for name in cols.numeric:
        if data.schema[name] not in NUMERIC_TYPES:
            raise ConfigError(f"data.columns.numeric: '{name}' has type {data.schema[name].value}")
    overlap = set(cols.numeric) & set(cols.categorical)
    if overlap or cols.target in cols.numeric + cols.categorical:
        raise ConfigError(f"data.columns: a column has two roles: {sorted(overlap) or cols.target}")
    check_labels(data)
    if cols.timestamp and data.schema[cols.timestamp] is not ColumnType.timestamp:
        raise ConfigError("data.columns.timestamp: its data.schema type must be timestamp")
    if data.source.kind.value == "nannyml" and not data.source.dataset:
        raise ConfigError("data.source.dataset: a nannyml source names a packaged data set")
    for name in data.categories:
        if name not in cols.categorical:
            raise ConfigError(f"data.categories.{name}: not a categorical column")


def check_labels(data: DataConfig) -> None:
    labels = data.columns.labels
    if not labels:
        return
    target_type = data.schema[data.columns.target]
    binary = data.problem is Problem.binary and target_type is ColumnType.int
    if len(set(labels)) != 2 or len(labels) != 2 or not binary:
        raise ConfigError(
            "data.columns.labels: two different labels (negative, positive) of a binary "
            "target whose data.schema type is int"
        )


def check_features(features: FeaturesConfig, data: DataConfig) -> None:
    derived = [(f.name, f.expr) for f in features.derived]
    try:
        parse_all(derived, column_kinds(data))
    except ExpressionError as exc:
        index = next((i for i, (name, _) in enumerate(derived) if f"'{name}'" in str(exc)), "?")
        raise ConfigError(f"features.derived[{index}]: {exc}") from exc
    for name in features.onehot:
        if name not in data.categories:
            raise ConfigError(f"features.onehot: '{name}' has no data.categories list")
    split = features.split
    if not 0.0 < split.holdout_fraction < 1.0:
        raise ConfigError("features.split.holdout_fraction: must be between 0 and 1")
    if split.kind is SplitKind.time and not data.columns.timestamp:
        raise ConfigError("features.split.kind: a time split needs data.columns.timestamp")
    if features.row_group_size < 1:
        raise ConfigError("features.row_group_size: must be positive")


def check_expectations(expectations: ExpectationsConfig, data: DataConfig) -> None:
    for name, spec in expectations.columns.items():
        if name not in data.schema:
            raise ConfigError(f"expectations.columns.{name}: column is not in data.schema")
        for key in ("not_null", "mostly"):
            value = getattr(spec, key)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"expectations.columns.{name}.{key}: must be in [0, 1]")
        if spec.min is not None and spec.max is not None and spec.min > spec.max:
            raise ConfigError(f"expectations.columns.{name}: min is above max")


def check_model(config: DriftloopConfig) -> None:
    if config.data.problem not in config.model.problems:
        raise ConfigError(
            f"model.problems: model '{config.model.name}' does not fit a "
            f"{config.data.problem.value} problem (it fits "
            f"{', '.join(p.value for p in config.model.problems)})"
        )
    if not isinstance(config.model.estimator, dict) or "_target_" not in config.model.estimator:
        raise ConfigError("model.estimator: needs a `_target_` naming the estimator class")


def check_monitor(monitor: MonitorConfig) -> None:
    check_bands(monitor)
    if monitor.analysis_batches < 1:
        raise ConfigError("monitor.analysis_batches: must be 1 or more")
    experiment = monitor.experiment
    if experiment.until in ("promote", "batch_predict", "monitor"):
        raise ConfigError(
            f"monitor.experiment.until: '{experiment.until}' would promote or use the champion; "
            "experiments stop at evaluate or before"
        )
    if experiment.jobs < 1:
        raise ConfigError("monitor.experiment.jobs: must be 1 or more")
    for index, axis in enumerate(experiment.sweep):
        if not axis.values:
            raise ConfigError(f"monitor.experiment.sweep[{index}] ({axis.override}): no values")


def check_bands(monitor: MonitorConfig) -> None:
    """Bands must cover [0, infinity) in order, without gaps or overlaps."""
    if not monitor.bands:
        raise ConfigError("monitor.bands: at least one band is needed")
    edge = 0.0
    for index, band in enumerate(monitor.bands):
        if band.min != edge:
            raise ConfigError(
                f"monitor.bands[{index}]: starts at {band.min}, expected {edge} "
                "(bands must cover 0 to infinity without gaps or overlaps)"
            )
        if band.max is None:
            if index != len(monitor.bands) - 1:
                raise ConfigError(f"monitor.bands[{index}]: only the last band is open-ended")
            return
        if band.max <= band.min:
            raise ConfigError(f"monitor.bands[{index}]: max must be above min")
        edge = band.max
    raise ConfigError("monitor.bands: the last band must have no max (cover to infinity)")


def check_serve(serve: ServeConfig) -> None:
    if not 0 <= serve.port <= 65535:
        raise ConfigError(f"serve.port: {serve.port} is not a TCP port")
    positive = {
        "workers": serve.workers,
        "max_body_bytes": serve.max_body_bytes,
        "max_records": serve.max_records,
        "max_batch_rows": serve.max_batch_rows,
        "model_threads": serve.model_threads,
        "flush_seconds": serve.flush_seconds,
        "reload_seconds": serve.reload_seconds,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"serve.{key}: must be above 0, got {value}")


def check_batch(batch: BatchConfig) -> None:
    if not batch.input.strip():
        raise ConfigError("batch.input: names the parquet file or folder to score")
    for key in ("row_group_size", "model_threads"):
        value = getattr(batch, key)
        if value < 1:
            raise ConfigError(f"batch.{key}: must be at least 1, got {value}")


# local, local[N], local[*], local[N,F]; spark://HOST:PORT[,HOST:PORT...]; yarn; k8s://URL
SPARK_MASTERS = re.compile(
    r"local(\[(\d+|\*)(,\d+)?\])?|spark://[^\s:/,]+:\d+(,[^\s:/,]+:\d+)*|yarn|k8s://\S+"
)
# a JVM memory size as Spark reads it: 512m, 2g, 1024k
MEMORY_SIZE = re.compile(r"\d+[kmgtp]?b?", re.IGNORECASE)


def check_spark(spark: SparkConfig) -> None:
    if not SPARK_MASTERS.fullmatch(spark.master):
        raise ConfigError(
            f"spark.master: '{spark.master}' is not a Spark master URL "
            "(local[*], local[N], spark://HOST:PORT, yarn or k8s://https://HOST:PORT)"
        )
    for key in ("executor_cores", "cores_max"):
        value = getattr(spark, key)
        if value is not None and value < 1:
            raise ConfigError(f"spark.{key}: must be at least 1, got {value}")
    if spark.executor_memory is not None and not MEMORY_SIZE.fullmatch(spark.executor_memory):
        raise ConfigError(
            f"spark.executor_memory: '{spark.executor_memory}' is not a memory size (e.g. 1g, 512m)"
        )
    cores, most = spark.executor_cores, spark.cores_max
    if cores is not None and most is not None and most < cores:
        raise ConfigError(
            f"spark.cores_max: {most} is below spark.executor_cores {cores}: "
            "no executor could start"
        )


# what MLflow accepts as a tracking URI: a server, a database, a folder
TRACKING_SCHEMES = ("http://", "https://", "sqlite:///", "postgresql", "mysql", "mssql", "file:")


def check_tracking(tracking: TrackingConfig) -> None:
    uri = tracking.uri
    if uri is not None and not uri.startswith(TRACKING_SCHEMES):
        raise ConfigError(
            f"tracking.uri: '{uri}' is not a tracking URI (http://HOST:PORT of an "
            "`mlflow server`, or sqlite:///, postgresql://, file:); null means the "
            "embedded store in the project"
        )
