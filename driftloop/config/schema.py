"""Typed schema of every config group under conf/.

The dataclasses are registered in Hydra's ConfigStore (see ``register``) and
named first in conf/config.yaml's defaults list, so Hydra merges each group's
YAML onto its dataclass: an unknown key or a wrong type fails at compose time,
naming the group file and the key. Cores receive these objects, never dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING

SCHEMA_NAME = "driftloop_schema"


class Problem(Enum):
    binary = "binary"
    multiclass = "multiclass"
    regression = "regression"


class ColumnType(Enum):
    int = "int"
    float = "float"
    string = "string"
    bool = "bool"
    timestamp = "timestamp"


class SourceKind(Enum):
    nannyml = "nannyml"
    file = "file"


class SplitKind(Enum):
    random = "random"
    time = "time"


# --- data -----------------------------------------------------------------


@dataclass
class SourceConfig:
    kind: SourceKind = SourceKind.nannyml
    # nannyml: a data set packaged with nannyml, e.g. synthetic_car_loan
    dataset: str | None = None
    # nannyml: reference or analysis (analysis is joined to its packaged targets)
    part: str = "reference"
    # file: a CSV or parquet file (also the DVC dependency of ingest)
    path: str = "data/source"


@dataclass
class ColumnsConfig:
    id: str = MISSING
    target: str = MISSING
    # a binary target written as text: its two labels, negative then positive;
    # ingest and monitoring read them as 0 and 1 (data.schema types it int);
    # quote yes/no, which YAML otherwise reads as booleans
    labels: list[str] = field(default_factory=list)
    timestamp: str | None = None
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    # columns a served model wrote next to the features (prediction log, batches)
    prediction: str | None = None
    prediction_proba: str | None = None


@dataclass
class WindowConfig:
    """Which rows train the model, by timestamp (ISO dates, inclusive start)."""

    start: str | None = None
    end: str | None = None
    # labelled production batches under data/incoming/ join the training data
    include_incoming: bool = True


@dataclass
class DataConfig:
    name: str = MISSING
    problem: Problem = Problem.binary
    source: SourceConfig = field(default_factory=SourceConfig)
    columns: ColumnsConfig = field(default_factory=ColumnsConfig)
    # every raw column and its type; ingest keeps exactly these columns
    schema: dict[str, ColumnType] = field(default_factory=dict)
    # allowed values of categorical columns: the API's request model, the data
    # gate's allowed sets and one-hot features all read them from here
    categories: dict[str, list[str]] = field(default_factory=dict)
    # input columns the API accepts as missing or null (the model imputes them);
    # every other model input is required in a request
    optional: list[str] = field(default_factory=list)
    window: WindowConfig = field(default_factory=WindowConfig)


# --- features -------------------------------------------------------------


@dataclass
class DerivedFeature:
    name: str = MISSING
    expr: str = MISSING


@dataclass
class SplitConfig:
    kind: SplitKind = SplitKind.random
    holdout_fraction: float = 0.2
    seed: int = 0
    # time split: rows at or after this timestamp are the holdout; when null the
    # cut-off is the timestamp that leaves holdout_fraction of rows after it
    cutoff: str | None = None


@dataclass
class FeaturesConfig:
    derived: list[DerivedFeature] = field(default_factory=list)
    # categorical columns expanded into 0/1 indicator columns, one per value
    # listed for the column in data.categories
    onehot: list[str] = field(default_factory=list)
    split: SplitConfig = field(default_factory=SplitConfig)
    # rows per parquet row group in data/features (fixes the file layout)
    row_group_size: int = 131072


# --- expectations ---------------------------------------------------------


@dataclass
class ColumnExpectation:
    # minimum share of non-null values (GX "mostly"); null: no check
    not_null: float | None = None
    min: float | None = None
    max: float | None = None
    allowed: list[Any] | None = None
    # share of values that must satisfy min/max and allowed
    mostly: float = 1.0
    unique: bool = False


@dataclass
class ExpectationsConfig:
    suite: str = MISSING
    row_count_min: int = 1
    row_count_max: int | None = None
    # the table has exactly the columns of data.schema, each of its type
    check_schema: bool = True
    columns: dict[str, ColumnExpectation] = field(default_factory=dict)


# --- model, train, evaluate -------------------------------------------------


@dataclass
class ModelConfig:
    name: str = MISSING
    problems: list[Problem] = field(default_factory=lambda: [Problem.binary])
    # a Hydra `_target_` node: any scikit-learn estimator or pipeline
    estimator: Any = MISSING


@dataclass
class TrainConfig:
    seed: int = 0
    # scale numeric features and one-hot encode categoricals inside the model
    scale_numeric: bool = True
    max_rows: int | None = None


@dataclass
class PromotionRule:
    metric: str = MISSING
    min: float | None = None
    # largest allowed drop against the champion, in metric units
    max_regression: float | None = None


@dataclass
class InvarianceCheck:
    """Shifting ``column`` by ``shift`` should change few predicted labels."""

    column: str = MISSING
    shift: float = MISSING
    max_changed_share: float = 0.01


@dataclass
class DirectionalCheck:
    """Shifting ``column`` by ``shift`` should move the score in one direction."""

    column: str = MISSING
    shift: float = MISSING
    expect: str = "increase"  # or decrease
    min_share: float = 0.5


@dataclass
class EvaluateConfig:
    primary_metric: str = "roc_auc"
    rules: list[PromotionRule] = field(default_factory=list)
    slices: list[str] = field(default_factory=list)
    slice_min_rows: int = 200
    # the slices that must each meet every rule's minimum
    required_slices: list[str] = field(default_factory=list)
    invariance: list[InvarianceCheck] = field(default_factory=list)
    directional: list[DirectionalCheck] = field(default_factory=list)
    calibration_bins: int = 10


# --- serve, monitor ----------------------------------------------------------


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    # more data sets to serve beside the composed one (the default, at /predict):
    # each answers at /predict/<name> with the champion of data/models/<name>
    models: list[str] = field(default_factory=list)
    # load the champion from the registry alias instead of data/models/<name>/champion
    from_registry: bool = False
    # seconds between checks for a new champion (link target or registry alias)
    reload_seconds: float = 1.0
    # requests must send this key in the X-API-Key header; the environment
    # variable named by api_key_env wins over api_key (null and unset: no key)
    api_key: str | None = None
    api_key_env: str | None = None
    max_body_bytes: int = 1048576
    max_records: int = 10000
    # most rows the micro-batcher hands the model in one call
    max_batch_rows: int = 4096
    # OpenMP/BLAS threads per model call: 1 is fastest when concurrent requests
    # keep the other cores busy (threads would wait on each other)
    model_threads: int = 1
    # the priority (nice level) of the process where a second model scores in
    # shadow: lower than the answers', yet never starved, so a trial gets its
    # evidence on a busy machine (null: only idle CPU time, SCHED_IDLE)
    shadow_nice: int | None = 10
    # every data set logs into its own folder under it: <prediction_log_dir>/<name>
    prediction_log_dir: str = "data/prediction_log"
    flush_seconds: float = 2.0


@dataclass
class DriftBand:
    action: str = MISSING
    # deviation in percent: min inclusive, max exclusive (null: no upper bound)
    min: float = MISSING
    max: float | None = None


@dataclass
class SweepAxis:
    # a Hydra override key (a group such as `model`, or a dotted param)
    override: str = MISSING
    values: list[Any] = field(default_factory=list)


@dataclass
class ExperimentConfig:
    """What the controller queues when the policy says experiment."""

    # experiments run the DAG up to this stage: they are compared, never promoted
    until: str = "evaluate"
    # every combination of the axes' values is one experiment (a Hydra grid sweep)
    sweep: list[SweepAxis] = field(default_factory=list)
    # queue workers (`dvc queue start -j`); the cores are shared out between them
    jobs: int = 2


@dataclass
class MonitorConfig:
    primary_metric: str = "roc_auc"
    chunk_period: str | None = "M"
    chunk_size: int | None = None
    # chunks with fewer rows (a partial month at the edge of a batch) are shown
    # but neither alert nor count towards the deviation: too noisy
    min_chunk_rows: int = 500
    # the newest batches under data/incoming analysed together: with labels a
    # month late, the last two hold the newest labelled and the newest rows
    analysis_batches: int = 2
    # rows per period chunk the domain classifier reads (null: all of them)
    domain_classifier_rows: int | None = 10000
    # OpenMP/BLAS threads when the stage scores rows with the champion
    model_threads: int = 1
    bands: list[DriftBand] = field(default_factory=list)
    continuous_methods: list[str] = field(default_factory=lambda: ["kolmogorov_smirnov"])
    categorical_methods: list[str] = field(default_factory=lambda: ["chi2"])
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)


# --- batch scoring ------------------------------------------------------------


@dataclass
class BatchConfig:
    # the raw data to score with the champion: a parquet file or a folder of
    # parquet files with (at least) the model's input columns and the id
    input: str = "data/raw/data.parquet"
    # rows per parquet row group in data/predictions (fixes the file layout)
    row_group_size: int = 131072
    # OpenMP/BLAS threads per model call in each Spark Python worker: Spark
    # already runs one task per core, more threads would wait on each other
    model_threads: int = 1


# --- engines ----------------------------------------------------------------


@dataclass
class SparkConfig:
    master: str = "local[*]"
    app_name: str = "driftloop"
    driver_memory: str = "2g"
    driver_host: str = "127.0.0.1"
    shuffle_partitions: int = 8
    # largest input split; with a fixed split size the work units, and so the
    # output files, do not depend on how many cores the cluster has
    max_partition_bytes: str = "16m"
    arrow_batch_rows: int = 65536
    # on a cluster (null: Spark's default; a local master ignores them): cores
    # and JVM heap of each executor, and the most cores the application takes
    executor_cores: int | None = None
    executor_memory: str | None = None
    cores_max: int | None = None
    # any further spark.* settings, passed through unchanged
    conf: dict[str, str] = field(default_factory=dict)


@dataclass
class TrackingConfig:
    # null: the embedded SQLite store and artifact folder inside the project
    uri: str | None = None
    experiment: str = "driftloop"
    # a prefix: each data set's models register as <prefix>-<data.name>, so a
    # champion can only ever be compared with models of its own data set
    registered_model: str = "driftloop"


# --- rollout ----------------------------------------------------------------------


class RolloutStrategy(Enum):
    direct = "direct"  # a passing candidate serves everyone at once
    shadow = "shadow"  # it scores every record off the answer's path; nobody sees it
    canary = "canary"  # it answers a sticky share of the records


class Approval(Enum):
    auto = "auto"  # the controller promotes when the evidence says so
    required = "required"  # ... or writes the evidence and waits for `driftloop approve`


@dataclass
class RolloutConfig:
    strategy: RolloutStrategy = RolloutStrategy.shadow
    # canary: the share of records the challenger answers, sticky by a hash of
    # the record id (of the request id when a record has none)
    canary_share: float = 0.1
    # evidence before a decision: rows both models scored, and labelled ones
    min_rows: int = 2000
    min_labelled: int = 1000
    # a challenger still undecided after this many days is rejected
    max_days: float = 30.0
    # promote when the challenger's metric (evaluate.primary_metric) on the same
    # labelled rows is at worst ``margin`` below the champion's, with the lower
    # end of the paired bootstrap interval; reject when its upper end is below
    margin: float = 0.005
    confidence: float = 0.95
    bootstrap: int = 1000
    seed: int = 0
    # a challenger that agrees with the champion on fewer records than this is
    # rejected: a model that different needs a person, not a trial
    min_agreement: float = 0.7
    # scoring time against the champion's on the same batches, and failures
    max_latency_ratio: float = 3.0
    max_error_share: float = 0.01
    approval: Approval = Approval.auto
    # after a promotion the previous champion keeps scoring in shadow this long;
    # the controller rolls back by itself when the new champion is worse on the
    # same labelled rows by more than rollback_margin (interval excluding zero)
    watch_days: float = 14.0
    rollback_margin: float = 0.01


# --- the whole composition ------------------------------------------------------


@dataclass
class DriftloopConfig:
    data: DataConfig = MISSING
    features: FeaturesConfig = MISSING
    expectations: ExpectationsConfig = MISSING
    model: ModelConfig = MISSING
    train: TrainConfig = MISSING
    evaluate: EvaluateConfig = MISSING
    serve: ServeConfig = MISSING
    monitor: MonitorConfig = MISSING
    batch: BatchConfig = MISSING
    spark: SparkConfig = MISSING
    tracking: TrackingConfig = MISSING
    rollout: RolloutConfig = MISSING
    # digest of conf/ when params.yaml was composed; stale params stop the DAG
    conf_digest: str = MISSING

    @property
    def model_name(self) -> str:
        """The registered model of the composed data set."""
        return f"{self.tracking.registered_model}-{self.data.name}"


GROUPS: tuple[str, ...] = (
    "data",
    "features",
    "expectations",
    "model",
    "train",
    "evaluate",
    "serve",
    "monitor",
    "batch",
    "spark",
    "tracking",
    "rollout",
)


def register() -> None:
    """Register the schema in Hydra's ConfigStore (idempotent)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name=SCHEMA_NAME, node=DriftloopConfig)
