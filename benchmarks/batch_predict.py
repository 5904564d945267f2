"""Benchmark of the batch_predict stage against MLflow's Spark UDF.

    python -m benchmarks.batch_predict [--rows 200000 1000000] [--repeat 3] [--keep-data]

Both engines score the same input with the same model, raw parquet in,
predictions parquet out, on Spark local[2]:

* stage: stages.batch_predict.write_predictions, the stage's own code (read,
  mapInArrow over the input splits, the broadcast model in driftloop.core.predictor,
  Arrow's parquet writer per split);
* mlflow: the featurize stage's Spark features (driftloop.adapters.spark.spark_features)
  then ``mlflow.pyfunc.spark_udf(spark, model_uri, env_manager="local")`` on the
  model's input columns, written by Spark's parquet writer (zstd).

The model is the project's champion (data/models/car_loan/champion, run `make run`
first), logged once by driftloop.adapters.tracking into a temporary SQLite store
under benchmarks/data. Input: the featurize benchmark's resampled car loan
files (benchmarks/inputs.py).

Each row count runs in fresh child processes: one with the machine's default
OpenMP threads in the Python workers and one with OMP_NUM_THREADS=1. A child
starts Spark, builds the UDF, runs both engines once on a small warm-up file
(JVM JIT, Python workers, model loads), then ``--repeat`` times each engine,
interleaved; the table shows the median. Results: benchmarks/results/batch_predict.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.harness import (
    CHAMPION,
    DATA,
    ROOT,
    Result,
    Session,
    arguments,
    child_arguments,
    child_files,
    child_main,
    cpu_delta,
    cpu_text,
    java_version,
    lower_median,
    markdown,
    read_result,
    seconds,
    spread,
    supervise,
    versions,
    write_results,
)
from benchmarks.inputs import generated_inputs
from driftloop.adapters import parquet, tracking
from driftloop.adapters.spark import spark_features
from driftloop.config.compose import load
from driftloop.config.schema import DriftloopConfig, TrackingConfig
from driftloop.core.champion import load_champion
from driftloop.core.model import columns, model_input
from driftloop.core.plan import featurize_pandas, plan
from driftloop.core.predictor import Outputs
from driftloop.core.scoring import kept_columns
from stages.batch_predict import write_predictions

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SPARK_MASTER = "local[2]"
WARMUP_ROWS = 20_000
ENGINES = ("stage", "mlflow")
EXPERIMENT = "batch-predict-benchmark"
VERSIONS = ("pyspark", "pandas", "pyarrow", "numpy", "mlflow")


@dataclass(frozen=True)
class Setting:
    name: str
    env: dict[str, str]


SETTINGS = (
    Setting("default OpenMP threads", {}),
    Setting("OMP_NUM_THREADS=1", {"OMP_NUM_THREADS": "1"}),
)


def config() -> DriftloopConfig:
    return load(ROOT / "params.yaml")


# --- the model in a temporary MLflow store ---------------------------------------------


def log_champion(cfg: DriftloopConfig, store: Path, source: Path) -> str:
    """Log the champion as the train stage logs a model; its URI."""
    champion = load_champion(CHAMPION)
    head = parquet.read_table(source).slice(0, 5).to_pandas()
    example = model_input(featurize_pandas(head, plan(cfg.features, cfg.data)), *model_cols(cfg))
    tracking.configure(TrackingConfig(experiment=EXPERIMENT), store)
    tags = {"driftloop.stage": "benchmark", "driftloop.version": champion.version}
    return tracking.log_model_file(champion.model, example, "batch-bench", tags)


def model_cols(cfg: DriftloopConfig) -> tuple[list[str], list[str]]:
    cols = columns(cfg)
    return cols.numeric, cols.categorical


# --- the two engines ---------------------------------------------------------------------


def stage_engine(spark: SparkSession, cfg: DriftloopConfig) -> Callable[[Path, Path], None]:
    champion = load_champion(CHAMPION)

    def score(source: Path, out: Path) -> None:
        write_predictions(spark, source, champion, cfg, out)

    return score


def mlflow_engine(
    spark: SparkSession, cfg: DriftloopConfig, uri: str
) -> Callable[[Path, Path], None]:
    import mlflow.pyfunc
    from pyspark.sql import functions as F

    udf = mlflow.pyfunc.spark_udf(spark, uri, env_manager="local", result_type="double")
    numeric, categorical = model_cols(cfg)
    keep = kept_columns(cfg.data)
    label = Outputs.of(cfg.data).label
    fplan = plan(cfg.features, cfg.data)

    def score(source: Path, out: Path) -> None:
        raw = spark.read.parquet(str(source))
        table = raw.select("*", *spark_features(raw, fplan))
        # the signature's types: numbers as double, as the train stage logged them
        inputs = [F.col(c).cast("double").alias(c) for c in numeric]
        inputs += [F.col(c) for c in categorical]
        scored = table.select(*keep, udf(F.struct(*inputs)).alias(label))
        scored.write.mode("overwrite").option("compression", "zstd").parquet(str(out))

    return score


# --- child: one setting, one row count ----------------------------------------------------


def child(args: argparse.Namespace) -> Result:
    from driftloop.adapters.spark import session

    cfg = config()
    start = time.perf_counter()
    spark = session(replace(cfg.spark, master=SPARK_MASTER))
    result: Result = {"session": time.perf_counter() - start}
    try:
        tracking.configure(TrackingConfig(experiment=EXPERIMENT), args.store)
        start = time.perf_counter()
        engines = {"stage": stage_engine(spark, cfg), "mlflow": mlflow_engine(spark, cfg, args.uri)}
        result["setup"] = time.perf_counter() - start
        result["warmup"] = {
            name: timed(engine, args.warmup, args.output / f"warm-{name}")[0]
            for name, engine in engines.items()
        }
        runs: dict[str, list[tuple[float, dict[str, float]]]] = {name: [] for name in engines}
        for _ in range(args.repeat):
            for name, engine in engines.items():
                runs[name].append(timed(engine, args.input, args.output / name))
        result["runs"] = runs
        result["agree"] = agreement(cfg, args.output)
    finally:
        spark.stop()
    return result


def timed(engine: Callable[[Path, Path], None], source: Path, out: Path) -> tuple[float, Any]:
    shutil.rmtree(out, ignore_errors=True)
    cpu: dict[str, float] = {}
    start = time.perf_counter()
    with cpu_delta(cpu):
        engine(source, out)
    return time.perf_counter() - start, cpu


def agreement(cfg: DriftloopConfig, output: Path) -> dict[str, int]:
    """Rows of each output, and rows whose predicted label differs between them."""
    label = Outputs.of(cfg.data).label
    key = cfg.data.columns.id
    tables = {e: parquet.read_table(output / e, [key, label]).sort_by(key) for e in ENGINES}
    labels = {e: np.asarray(t.column(label), dtype="float64") for e, t in tables.items()}
    same_ids = tables["stage"].column(key).equals(tables["mlflow"].column(key))
    differ = int((labels["stage"] != labels["mlflow"]).sum()) if same_ids else -1
    return {
        "rows_stage": len(labels["stage"]),
        "rows_mlflow": len(labels["mlflow"]),
        "differ": differ,
    }


# --- parent --------------------------------------------------------------------------------


def measure(
    setting: Setting, rows: int, source: Path, warmup: Path, store: Path, uri: str, args: Any
) -> Result:
    tag = f"batch-{rows}-{'omp1' if setting.env else 'default'}"
    out, log, result_file = child_files(DATA, tag)
    command = [sys.executable, "-m", "benchmarks.batch_predict", "--child"]
    command += ["--input", str(source), "--warmup", str(warmup), "--output", str(out)]
    command += ["--store", str(store), "--uri", uri, "--repeat", str(args.repeat)]
    command += ["--result", str(result_file)]
    saved = dict(os.environ)
    os.environ.update(setting.env)
    try:
        code, _, load = supervise(command, log, args.timeout)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    result = read_result(result_file, code, log)
    shutil.rmtree(out, ignore_errors=True)
    return {**result, "rows": rows, "setting": setting.name, "load": load}


def run_all(args: argparse.Namespace) -> None:
    session = Session("benchmarks.batch_predict")
    cfg = config()
    if not (CHAMPION / "model.pkl").is_file():
        raise SystemExit(f"no champion at {CHAMPION}: run `make run` first")
    paths, generated, generation = generated_inputs([*args.rows, WARMUP_ROWS], cfg)
    DATA.mkdir(parents=True, exist_ok=True)
    store = Path(tempfile.mkdtemp(prefix="batch-mlflow-", dir=DATA))
    runs: list[Result] = []
    try:
        uri = log_champion(cfg, store, paths[WARMUP_ROWS])
        for rows in args.rows:
            for setting in SETTINGS:
                run = measure(setting, rows, paths[rows], paths[WARMUP_ROWS], store, uri, args)
                runs.append(run)
                print(f"{rows:,} rows, {setting.name}: {summary(run)}", flush=True)
    finally:
        shutil.rmtree(store, ignore_errors=True)
        for path in [] if args.keep_data else generated:
            path.unlink(missing_ok=True)
    context = {
        "session": session,
        "generation": generation,
        "config": cfg,
        "version": load_champion(CHAMPION).version,
    }
    write_results("batch_predict.md", report(runs, context))


def summary(run: Result) -> str:
    if run["status"] != "ok":
        return str(run["status"])
    walls = {e: median_wall(run, e) for e in ENGINES}
    return ", ".join(f"{e} {w:.2f} s" for e, w in walls.items())


# --- report ---------------------------------------------------------------------------------

HEADER = [
    "rows", "Python workers' environment", "engine", "median wall s", "rows/s",
    "stage speed-up", "CPU s JVM / Py workers / driver", "other load, cores",
]  # fmt: skip


def median_run(run: Result, engine: str) -> tuple[float, dict[str, float]]:
    """The run with the median wall (the lower one of an even count)."""
    wall, cpu = lower_median(run["runs"][engine], key=lambda sample: float(sample[0]))
    return float(wall), dict(cpu)


def median_wall(run: Result, engine: str) -> float:
    return median_run(run, engine)[0]


def table_rows(run: Result) -> list[list[str]]:
    if run["status"] != "ok":
        return [[f"{run['rows']:,}", run["setting"], "-", "-", "-", "-", "-", run["status"]]]
    rows = []
    walls = {e: median_wall(run, e) for e in ENGINES}
    for engine in ENGINES:
        cpu = median_run(run, engine)[1]
        ratio = f"{walls['mlflow'] / walls['stage']:.2f}x" if engine == "stage" else "-"
        rows.append([
            f"{run['rows']:,}", run["setting"], engine, seconds(walls[engine]),
            f"{run['rows'] / walls[engine]:,.0f}", ratio,
            cpu_text(cpu),
            f"{run['load']:.2f}",
        ])  # fmt: skip
    return rows


def run_notes(runs: list[Result]) -> list[str]:
    notes = []
    for run in runs:
        if run["status"] != "ok":
            continue
        walls = "; ".join(f"{e} {spread(w for w, _ in run['runs'][e])} s" for e in ENGINES)
        warm = ", ".join(f"{e} {s:.2f} s" for e, s in run["warmup"].items())
        agree = run["agree"]
        notes.append(
            f"- {run['rows']:,} rows, {run['setting']}: walls {walls}; Spark start "
            f"{run['session']:.2f} s, engines' set-up (model load, spark_udf) "
            f"{run['setup']:.2f} s, "
            f"warm-up on {WARMUP_ROWS:,} rows {warm}; rows written stage "
            f"{agree['rows_stage']:,} / mlflow {agree['rows_mlflow']:,}, labels that differ: "
            f"{agree['differ']}"
        )
    return notes


def setup_notes(context: Result) -> list[str]:
    cfg: DriftloopConfig = context["config"]
    return [
        f"- Model: the champion (version {context['version']}, {cfg.model.name}: "
        f"{cfg.model.estimator.get('_target_')}), features of params.yaml "
        f"({', '.join(plan(cfg.features, cfg.data).names)}).",
        "- Input: NannyML synthetic_car_loan reference resampled by "
        "benchmarks.inputs.ensure_input (seeded jitter, fresh ids), one parquet file per "
        "row count, in the page cache.",
        f"- Spark: master {SPARK_MASTER}, otherwise conf/spark (Arrow batches "
        f"{cfg.spark.arrow_batch_rows:,} rows, {cfg.spark.max_partition_bytes} input splits).",
        "- stage: stages.batch_predict.write_predictions; writes id, timestamp, label, "
        "probability and model version (Arrow's writer, zstd level 1); its model calls run "
        "with batch.model_threads = 1 OpenMP thread (threadpoolctl) whatever the environment.",
        "- Python workers' environment: the child's environment, which Spark's Python "
        "workers inherit; OMP_NUM_THREADS=1 keeps the MLflow UDF's scikit-learn to one thread "
        "per worker (by default each of the two workers' OpenMP uses both cores).",
        "- mlflow: the champion logged by driftloop.adapters.tracking.log_model_file (signature "
        "and input example, as the train stage logs) into a temporary SQLite store; "
        '`mlflow.pyfunc.spark_udf(spark, uri, env_manager="local", result_type="double")` '
        "applied to a struct of the model's input columns after spark_features; writes id, "
        "timestamp and the label (pyfunc's predict; the stage also writes the probability), "
        "Spark's parquet writer with zstd.",
        "- Wall s: around one engine's whole job (read, features, scoring, write), in a "
        "Spark session that has run both engines once on the warm-up file; the median of "
        "--repeat runs, every wall listed below. CPU s: user + system seconds of the child's "
        "process tree during that run. Other load: cores the machine spent outside the child "
        "during its life (other tenants). stage speed-up: mlflow wall / stage wall.",
    ]


def report(runs: list[Result], context: Result) -> str:
    session: Session = context["session"]
    lines = ["# batch_predict benchmark: the stage vs mlflow.pyfunc.spark_udf", ""]
    lines += markdown([row for run in runs for row in table_rows(run)], HEADER)
    lines += ["", "## Notes", ""]
    lines += [
        session.about(context["generation"]),
        session.machine("Shared and noisy: compare ratios, not absolute times."),
        f"- Versions: {versions(VERSIONS, [java_version()])}.",
        *setup_notes(context),
        *run_notes(runs),
    ]
    return "\n".join(lines) + "\n"


# --- entry point -----------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = arguments("benchmarks.batch_predict", __doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine (median)")
    parser.add_argument("--keep-data", action="store_true", help="keep generated input files")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per child run")
    # internal: one child (a setting and a row count) in this process
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--uri", help=argparse.SUPPRESS)
    child_arguments(parser, "input", "warmup", "output", "store", "result")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.child:
        child_main(lambda: child(args), args.result)
    else:
        run_all(args)


if __name__ == "__main__":
    main()
