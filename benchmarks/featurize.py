"""Benchmark of the featurize stage: Spark (the pipeline's path) against pandas.

    python -m benchmarks.featurize [--rows 1000000 10000000] [--big-rows N] [--profile]

Input: one parquet file per row count, resampled from NannyML's synthetic car
loan reference data (seeded jitter, fresh ids, timestamps spread over two
years), conformed and written as the ingest stage does (benchmarks/inputs.py,
shared with the train, batch_predict and spark_cluster benchmarks). Both engines
compute the same features -- log1p, a product, a bucketing and one-hot of the
two categoricals -- parquet in, parquet out:

* Spark: driftloop.adapters.spark.session, then stages.featurize.write_features
  (read, select the features and the split route, write_routed into
  train/holdout folders), as the featurize stage does;
* pandas: pyarrow read, driftloop.core.plan.featurize_pandas, one parquet file.

Each engine runs in a fresh child process. The child times its own work
(imports and the Spark session start excluded) and the CPU seconds of its
process tree; the parent polls the tree for peak RSS (Python driver, JVM,
Python workers). ``--big-rows`` adds a run with pandas under an address-space
cap (RLIMIT_AS) and Spark under a small driver heap. ``--profile`` adds a
breakdown of where Spark's time goes. Results: benchmarks/results/featurize.md.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pyarrow as pa
import pyarrow.compute as pc

from benchmarks.harness import (
    DATA,
    GIB,
    POLL_SECONDS,
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
    mib,
    phase,
    read_result,
    seconds,
    spread,
    supervise,
    versions,
    write_results,
)
from benchmarks.inputs import SEED, ensure_input, input_path
from driftloop.adapters import parquet
from driftloop.adapters.spark import spark_features, spark_route
from driftloop.config.compose import load
from driftloop.config.schema import DerivedFeature, DriftloopConfig
from driftloop.core.data import ROW_GROUP
from driftloop.core.plan import ROUTE, FeaturePlan, featurize_pandas, plan
from stages.featurize import write_features

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

TRANSFORMS = [
    ("log_car_value", "log1p(car_value)"),
    ("value_x_dti", "car_value * debt_to_income_ratio"),
    ("tenure_bucket", "bucket(driver_tenure, [1, 3, 5, 10])"),
]
ONEHOT = ["salary_range", "size_of_downpayment"]
SPARK_MASTER = "local[2]"
SPARK_VERSIONS = ("pyspark", "pandas", "pyarrow", "numpy")


# --- configuration ----------------------------------------------------------------


def config() -> DriftloopConfig:
    return load(ROOT / "params.yaml")


def bench_config(cfg: DriftloopConfig) -> DriftloopConfig:
    """The composed config with the benchmark's transform set in place of conf/features."""
    derived = [DerivedFeature(name, expr) for name, expr in TRANSFORMS]
    return replace(cfg, features=replace(cfg.features, derived=derived, onehot=list(ONEHOT)))


def feature_plan(cfg: DriftloopConfig) -> FeaturePlan:
    return plan(cfg.features, cfg.data)


# --- child processes: one engine each ------------------------------------------------


def pandas_child(args: argparse.Namespace) -> Result:
    vms = psutil.Process().memory_info().vms
    if args.address_space_gb:
        limit = int(args.address_space_gb * GIB)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    cfg = bench_config(config())
    fplan = feature_plan(cfg)
    phases: dict[str, float] = {}
    cpu: dict[str, float] = {}
    start = time.perf_counter()
    try:
        with cpu_delta(cpu):
            target = args.output / "part-00000.parquet"
            rows = pandas_featurize(args.input, target, fplan, cfg.features.row_group_size, phases)
    except MemoryError as exc:
        failed = f"{type(exc).__name__} in '{list(phases)[-1]}': {str(exc)[:120]}"
        return {"status": failed, "wall": time.perf_counter() - start, "phases": phases, "vms": vms}
    wall = time.perf_counter() - start
    return {"status": "ok", "wall": wall, "rows": rows, "phases": phases, "cpu": cpu, "vms": vms}


def pandas_featurize(
    source: Path, target: Path, fplan: FeaturePlan, row_group_size: int, phases: dict[str, float]
) -> int:
    with phase(phases, "read"):
        frame = parquet.read_table(source).to_pandas()
    with phase(phases, "features"):
        out = featurize_pandas(frame, fplan)
        del frame
    with phase(phases, "write"):
        table = pa.Table.from_pandas(out, preserve_index=False)
        rows = len(out)
        del out
        parquet.write_table(table, target, row_group_size)
    return rows


def spark_child(args: argparse.Namespace) -> Result:
    from driftloop.adapters import spark as adapter

    cfg = bench_config(config())
    fplan = feature_plan(cfg)
    settings = replace(cfg.spark, master=SPARK_MASTER, driver_memory=args.driver_memory)
    start = time.perf_counter()
    session = adapter.session(settings)
    started = time.perf_counter() - start
    try:
        result = spark_measure(session, cfg, fplan, args)
    finally:
        session.stop()
    return {"status": "ok", "session": started, **result}


def spark_measure(
    session: SparkSession, cfg: DriftloopConfig, fplan: FeaturePlan, args: argparse.Namespace
) -> Result:
    cpu: dict[str, float] = {}
    start = time.perf_counter()
    with cpu_delta(cpu):
        counts = spark_featurize(session, cfg, args.input, args.output)
    wall = time.perf_counter() - start
    jvm: Any = session.sparkContext._jvm
    result: Result = {"wall": wall, "rows": sum(counts.values()), "counts": counts, "cpu": cpu}
    result["heap_max"] = int(jvm.java.lang.Runtime.getRuntime().maxMemory())
    result["splits"] = session.read.parquet(str(args.input)).rdd.getNumPartitions()
    if args.profile:
        result["profile"] = spark_profile(session, cfg, fplan, args)
    return result


def spark_table(
    session: SparkSession, cfg: DriftloopConfig, fplan: FeaturePlan, source: Path
) -> DataFrame:
    """The featurized frame, built as stages.featurize.write_features builds it."""
    raw = session.read.parquet(str(source.resolve()))
    route = spark_route(raw, cfg.features.split, cfg.data)
    return raw.select("*", *spark_features(raw, fplan), route.alias(ROUTE))


def spark_featurize(
    session: SparkSession, cfg: DriftloopConfig, source: Path, folder: Path
) -> dict[str, int]:
    """The stage's own code (read, features, route, write_routed) into folder/train, /holdout."""
    return write_features(session, source, cfg, folder / "train", folder / "holdout")


# --- Spark profile: where the time goes ----------------------------------------------


def _count_batches(batches: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
    rows = sum(batch.num_rows for batch in batches)
    yield pa.RecordBatch.from_pylist([{"rows": rows}])


def _filter_batches(batches: Iterable[pa.RecordBatch]) -> Iterable[pa.RecordBatch]:
    rows = 0
    for batch in batches:
        table = pa.Table.from_batches([batch])
        for name in ("train", "holdout"):
            rows += table.filter(pc.equal(table[ROUTE], name)).drop_columns([ROUTE]).num_rows
    yield pa.RecordBatch.from_pylist([{"rows": rows}])


def spark_profile(
    session: SparkSession, cfg: DriftloopConfig, fplan: FeaturePlan, args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """Wall and CPU seconds of the featurize job cut short at each layer (warm JVM)."""
    table = spark_table(session, cfg, fplan, args.input)
    native = str(args.output / "native")
    steps: dict[str, Callable[[], object]] = {
        "JVM scan + features (noop sink)": lambda: (
            table.write.format("noop").mode("overwrite").save()
        ),
        "+ Arrow to Python workers (count only)": lambda: table.mapInArrow(
            _count_batches, "rows long"
        ).collect(),
        "+ route filter in Python (no write)": lambda: table.mapInArrow(
            _filter_batches, "rows long"
        ).collect(),
        "write_routed (the stage, warm JVM)": lambda: spark_featurize(
            session, cfg, args.input, args.output / "warm"
        ),
        "Spark's parquet writer, partitionBy(route), zstd": lambda: (
            table.write.mode("overwrite")
            .option("compression", "zstd")
            .partitionBy(ROUTE)
            .parquet(native)
        ),
    }
    return {name: timed_step(step) for name, step in steps.items()}


def timed_step(step: Callable[[], object]) -> dict[str, float]:
    cpu: dict[str, float] = {}
    start = time.perf_counter()
    with cpu_delta(cpu):
        step()
    return {"wall": time.perf_counter() - start, **cpu}


CHILDREN: dict[str, Callable[[argparse.Namespace], Result]] = {
    "pandas": pandas_child,
    "spark": spark_child,
}


# --- parent: run, poll, tabulate --------------------------------------------------------


@dataclass(frozen=True)
class Job:
    engine: str
    rows: int
    source: Path
    limit: str
    options: tuple[str, ...] = ()
    profile: bool = False


def measure(job: Job, keep: bool, timeout: float) -> Result:
    """Run one engine in a fresh child process while polling its memory."""
    tag = f"{job.engine}-{job.rows}{'-profile' if job.profile else ''}"
    out, log, result_file = child_files(DATA, tag)
    command = [sys.executable, "-m", "benchmarks.featurize", "--child", job.engine]
    command += ["--input", str(job.source), "--output", str(out), "--result", str(result_file)]
    command += [*job.options, *(["--profile"] if job.profile else [])]
    code, peaks, load = supervise(command, log, timeout)
    result = read_result(result_file, code, log)
    result.update(engine=job.engine, rows=job.rows, limit=job.limit, exit=code, peaks=peaks)
    result["load"] = load
    result["output_bytes"] = sum(
        f.stat().st_size for f in out.rglob("*.parquet") if "warm" not in f.parts
    )
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    return result


def median_run(runs: list[Result]) -> Result:
    """The run with the median wall time, with the largest peaks of all runs."""
    done = [r for r in runs if r["status"] == "ok"]
    chosen = dict(lower_median(done, key=lambda r: float(r["wall"])) if done else runs[-1])
    peaks = {key: max(r["peaks"][key] for r in runs) for key in runs[0]["peaks"]}
    maxrss = max(r.get("maxrss", 0) for r in runs)
    load = max(r["load"] for r in runs)
    walls = sorted(r["wall"] for r in done)
    return {**chosen, "peaks": peaks, "maxrss": maxrss, "walls": walls, "load": load}


# --- report --------------------------------------------------------------------------

HEADER = [
    "rows", "engine", "memory limit", "Spark start s", "wall s", "rows/s",
    "peak Python RSS", "peak JVM RSS", "peak Py workers RSS", "peak tree RSS",
    "Spark/pandas wall", "Spark/pandas peak RSS", "CPU s JVM / workers / driver",
    "other load, cores", "status",
]  # fmt: skip


def ratio(run: Result, runs: list[Result]) -> tuple[str, str]:
    """Spark against the pandas run of the same rows and limit kind."""
    capped = run["limit"].startswith("capped")
    pandas_runs = [
        r
        for r in runs
        if (r["engine"], r["rows"]) == ("pandas", run["rows"])
        and r["limit"].startswith("capped") == capped
    ]
    if run["engine"] != "spark" or not pandas_runs or run["status"] != "ok":
        return "-", "-"
    base = pandas_runs[0]
    if base["status"] != "ok":
        return "pandas failed", "pandas failed"
    wall = f"{run['wall'] / base['wall']:.2f}x"
    return wall, f"{run['peaks']['total'] / max(base['maxrss'], base['peaks']['total']):.2f}x"


def table_row(run: Result, runs: list[Result]) -> list[str]:
    ok = run["status"] == "ok"
    wall = run.get("wall")
    rate = f"{run['rows'] / wall:,.0f}" if ok and wall else "-"
    spark = run["engine"] == "spark"
    wall_ratio, memory_ratio = ratio(run, runs)
    return [
        f"{run['rows']:,}", run["engine"], run["limit"], seconds(run.get("session")),
        seconds(wall), rate, mib(run.get("maxrss")),
        mib(run["peaks"]["jvm"]) if spark else "-", mib(run["peaks"]["workers"]) if spark else "-",
        mib(run["peaks"]["total"]), wall_ratio, memory_ratio, cpu_text(run.get("cpu")),
        f"{run['load']:.2f}", run["status"],
    ]  # fmt: skip


def profile_lines(runs: list[Result]) -> list[str]:
    profiled = [r for r in runs if r.get("profile")]
    if not profiled:
        return []
    run = profiled[-1]
    header = [
        "step (same input, warm JVM)",
        "wall s",
        "CPU s JVM",
        "CPU s Py workers",
        "CPU s driver",
    ]
    rows = [
        [name, seconds(s["wall"]), seconds(s["jvm"]), seconds(s["workers"]), seconds(s["driver"])]
        for name, s in run["profile"].items()
    ]
    title = f"## Where Spark's time goes ({run['rows']:,} rows, {SPARK_MASTER}, --profile)"
    return ["", title, "", *markdown(rows, header)]


def run_notes(runs: list[Result]) -> list[str]:
    notes = []
    for run in runs:
        detail = f"- {run['rows']:,} rows, {run['engine']} ({run['limit']}): "
        if len(run.get("walls", [])) > 1:
            detail += f"walls {spread(run['walls'])} s; "
        if run.get("phases"):
            detail += ", ".join(f"{k} {v:.2f} s" for k, v in run["phases"].items()) + "; "
        if run.get("counts"):
            detail += f"train {run['counts']['train']:,} / holdout {run['counts']['holdout']:,}; "
            detail += (
                f"{run.get('splits', '?')} input splits; JVM max heap {mib(run.get('heap_max'))}; "
            )
        if run.get("vms"):
            detail += f"address space before the cap {mib(run['vms'])}; "
        notes.append(detail + f"output {mib(run['output_bytes'])}")
    return notes


def setup_notes(cfg: DriftloopConfig) -> list[str]:
    spark = cfg.spark
    writer = (
        f"{parquet.COMPRESSION} level {parquet.COMPRESSION_LEVEL}, {ROW_GROUP:,}-row row groups"
    )
    return [
        f"- Transforms: {', '.join(f'{n} = {e}' for n, e in TRANSFORMS)}, one-hot of "
        f"{' and '.join(ONEHOT)} (9 indicator columns): 12 feature columns on 10 input columns.",
        "- Input: NannyML synthetic_car_loan reference (50,000 rows) resampled with "
        f"numpy default_rng({SEED}): car_value, debt_to_income_ratio x N(1, 0.02), "
        "driver_tenure x N(1, 0.05), fresh ids, timestamps spread over two years; "
        f"driftloop.core.data conform + to_arrow, written with ingest's writer ({writer}) in "
        "1M-row chunks. The file is in the page cache for both engines.",
        f"- Spark: master {SPARK_MASTER}, otherwise conf/spark (Arrow batches "
        f"{spark.arrow_batch_rows:,} rows, {spark.max_partition_bytes} input splits); "
        "stages.featurize.write_features, the stage's own code: read, select features and "
        "route, write_routed into train/ and holdout/ (Arrow's parquet writer in the Python "
        "workers). Its wall time is the first job of a fresh JVM, as in a DVC run of the stage; "
        "the profile table below the results is measured after it (warm JVM).",
        "- pandas: pyarrow read -> to_pandas -> driftloop.core.plan.featurize_pandas -> "
        "Table.from_pandas -> driftloop.adapters.parquet.write_table, one file, "
        "**no train/holdout split** (the route column is Spark-only).",
    ]


def method_notes() -> list[str]:
    return [
        "- Wall s: the child's own timer around the work only; excluded are interpreter start, "
        "imports, config loading and (for Spark) the session start, shown in its own column. "
        "With --repeat, the median run; every wall is listed below.",
        "- Peak Python RSS: the child's VmHWM (the Spark driver's for Spark). JVM, workers and "
        f"tree peaks: the parent polls the child's process tree every {POLL_SECONDS} s with psutil "
        "(sums of RSS; short spikes may be missed; forked workers' shared pages count once per "
        "process). Peaks cover the child's whole life, session start included.",
        "- Spark/pandas peak RSS: Spark's polled tree peak over pandas' peak RSS.",
        "- CPU s: user + system seconds of the child's process tree during the timed work.",
        "- Other load: CPU seconds the machine was busy (or stolen by the hypervisor) outside "
        "the child's process tree, over the child's life time, in cores (of 2): other tenants.",
        "- Capped pandas: RLIMIT_AS limits the address space, not RSS; the imports alone take "
        "the address space listed below before the cap is set.",
    ]


def report(runs: list[Result], session: Session, generation: float, cfg: DriftloopConfig) -> str:
    lines = ["# featurize benchmark: Spark vs pandas", ""]
    lines += markdown([table_row(run, runs) for run in runs], HEADER)
    lines += profile_lines(runs)
    lines += ["", "## Notes", ""]
    lines += [
        session.about(generation),
        session.machine("Shared and noisy: compare ratios, not absolute times."),
        f"- Versions: {versions(SPARK_VERSIONS, [java_version()])}.",
        *setup_notes(cfg),
        *method_notes(),
        *run_notes(runs),
    ]
    return "\n".join(lines) + "\n"


# --- entry point ------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = arguments("benchmarks.featurize", __doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--big-rows", type=int, help="rows of the capped run (pandas should fail)")
    parser.add_argument("--cap-gb", type=float, default=4.0, help="pandas RLIMIT_AS in the big run")
    parser.add_argument("--big-driver-memory", default="1g", help="spark.driver.memory, big run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per engine and size (median)")
    parser.add_argument(
        "--profile", action="store_true", help="Spark breakdown at the largest --rows"
    )
    parser.add_argument(
        "--keep-data", action="store_true", help="keep generated inputs and outputs"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per child run")
    # internal: one engine in this process
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    child_arguments(parser, "input", "output", "result")
    parser.add_argument("--driver-memory", default="2g", help=argparse.SUPPRESS)
    parser.add_argument("--address-space-gb", type=float, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def jobs(args: argparse.Namespace, cfg: DriftloopConfig) -> tuple[list[list[Job]], float]:
    """Runs to do (grouped for the median) and the seconds spent generating inputs."""
    memory = cfg.spark.driver_memory
    plan_: list[list[Job]] = []
    generation = 0.0
    for rows in args.rows:
        source, spent = ensure_input(rows, cfg)
        generation += spent
        profile = args.profile and rows == max(args.rows)
        plan_.append([Job("pandas", rows, source, "none")] * args.repeat)
        spark = Job("spark", rows, source, f"driver heap {memory}", ("--driver-memory", memory))
        plan_.append([spark] * args.repeat + ([replace(spark, profile=True)] if profile else []))
    if args.big_rows:
        source, spent = ensure_input(args.big_rows, cfg)
        generation += spent
        cap = ("--address-space-gb", str(args.cap_gb))
        plan_.append(
            [Job("pandas", args.big_rows, source, f"capped: RLIMIT_AS {args.cap_gb:g} GiB", cap)]
        )
        heap = ("--driver-memory", args.big_driver_memory)
        limit = f"capped: driver heap {args.big_driver_memory}"
        plan_.append([Job("spark", args.big_rows, source, limit, heap)])
    return plan_, generation


def run_all(args: argparse.Namespace) -> None:
    session = Session("benchmarks.featurize")
    cfg = config()
    groups, generation = jobs(args, cfg)
    runs = []
    for group in groups:
        timed = [measure(job, args.keep_data, args.timeout) for job in group if not job.profile]
        profiled = [measure(job, args.keep_data, args.timeout) for job in group if job.profile]
        run = median_run(timed)
        if profiled:
            run["profile"] = profiled[0].get("profile")
        runs.append(run)
        wall = seconds(run.get("wall"))
        print(f"{run['rows']:,} rows {run['engine']}: {run['status']}, wall {wall} s", flush=True)
    if not args.keep_data:
        cleanup(args)
    write_results("featurize.md", report(runs, session, generation, cfg))


def cleanup(args: argparse.Namespace) -> None:
    for rows in [*args.rows, *([args.big_rows] if args.big_rows else [])]:
        input_path(rows).unlink(missing_ok=True)
    shutil.rmtree(DATA / "out", ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.child:
        child_main(lambda: CHILDREN[args.child](args), args.result)
    else:
        run_all(args)


if __name__ == "__main__":
    main()
