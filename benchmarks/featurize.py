"""Benchmark of the featurize stage: Spark (the pipeline's path) against pandas.

    python -m benchmarks.featurize [--rows 1000000 10000000] [--big-rows N] [--profile]

Input: one parquet file per row count, resampled from NannyML's synthetic car
loan reference data (seeded jitter, fresh ids, timestamps spread over two
years), conformed and written as stages/ingest.py does. Both engines compute
the same features -- log1p, a product, a bucketing and one-hot of the two
categoricals -- parquet in, parquet out:

* Spark: stages.adapters.spark.session, then stages.featurize.write_features
  (read, select the features and the split route, write_routed into
  train/holdout folders), as the featurize stage does;
* pandas: pyarrow read, stages.featurize.featurize_pandas, one parquet file.

Each engine runs in a fresh child process. The child times its own work
(imports and the Spark session start excluded) and the CPU seconds of its
process tree; the parent polls the tree for peak RSS (Python driver, JVM,
Python workers). ``--big-rows`` adds a run with pandas under an address-space
cap (RLIMIT_AS) and Spark under a small driver heap. ``--profile`` adds a
breakdown of where Spark's time goes. Results: benchmarks/results/featurize.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.compute as pc

from stages.adapters import nml, parquet
from stages.config.compose import load
from stages.config.schema import DerivedFeature, DriftloopConfig
from stages.featurize import (
    ROUTE,
    FeaturePlan,
    featurize_pandas,
    plan,
    spark_features,
    spark_route,
    write_features,
)
from stages.ingest import ROW_GROUP, conform, to_arrow

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "featurize.md"
SOURCE = ("synthetic_car_loan", "reference")
SEED = 20240601
CHUNK_ROWS = 1_000_000
FIRST_TIME = np.datetime64("2018-01-01T00:00:00", "us")
SPAN = np.timedelta64(730 * 24 * 3600 * 10**6, "us")
# relative standard deviation of the multiplicative noise, per numeric column
JITTER = {"car_value": 0.02, "debt_to_income_ratio": 0.02, "driver_tenure": 0.05}
TRANSFORMS = [
    ("log_car_value", "log1p(car_value)"),
    ("value_x_dti", "car_value * debt_to_income_ratio"),
    ("tenure_bucket", "bucket(driver_tenure, [1, 3, 5, 10])"),
]
ONEHOT = ["salary_range", "size_of_downpayment"]
SPARK_MASTER = "local[2]"
GROUPS = ("driver", "jvm", "workers")
POLL_SECONDS = 0.1
MIB = 2**20
GIB = 2**30
Result = dict[str, Any]


# --- configuration ----------------------------------------------------------------


def config() -> DriftloopConfig:
    return load(ROOT / "params.yaml")


def bench_config(cfg: DriftloopConfig) -> DriftloopConfig:
    """The composed config with the benchmark's transform set in place of conf/features."""
    derived = [DerivedFeature(name, expr) for name, expr in TRANSFORMS]
    return replace(cfg, features=replace(cfg.features, derived=derived, onehot=list(ONEHOT)))


def feature_plan(cfg: DriftloopConfig) -> FeaturePlan:
    return plan(cfg.features, cfg.data)


# --- input data ---------------------------------------------------------------------


def input_path(rows: int) -> Path:
    return DATA / f"car_loan-{rows}-seed{SEED}.parquet"


def ensure_input(rows: int, cfg: DriftloopConfig) -> tuple[Path, float]:
    """The input file of ``rows`` rows (generated unless cached) and seconds spent."""
    path = input_path(rows)
    if path.exists():
        return path, 0.0
    start = time.perf_counter()
    generate(path, rows, cfg)
    return path, time.perf_counter() - start


def generate(path: Path, rows: int, cfg: DriftloopConfig) -> None:
    """Write ``rows`` resampled rows in chunks, with ingest's types and writer."""
    source = pd.read_csv(nml.packaged_files(*SOURCE)[0])
    rng = np.random.default_rng(SEED)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    writer: parquet.RowGroupWriter | None = None
    for first in range(0, rows, CHUNK_ROWS):
        chunk = resample(source, rng, first, min(CHUNK_ROWS, rows - first), rows)
        table = to_arrow(conform(chunk, cfg.data, "benchmark"), cfg.data)
        writer = writer or parquet.RowGroupWriter(tmp, table.schema, ROW_GROUP)
        writer.write(table)
    assert writer is not None
    writer.close()
    tmp.replace(path)


def resample(
    source: pd.DataFrame, rng: np.random.Generator, first: int, rows: int, total: int
) -> pd.DataFrame:
    """Rows drawn with replacement, numbers jittered, ids and times made fresh."""
    frame = source.iloc[rng.integers(0, len(source), rows)].reset_index(drop=True)
    for column, scale in JITTER.items():
        frame[column] = frame[column] * rng.normal(1.0, scale, rows)
    frame["car_value"] = frame["car_value"].round()
    ids = np.arange(first, first + rows, dtype=np.int64)
    frame["id"] = ids
    frame["timestamp"] = FIRST_TIME + ids * (SPAN // total)
    return frame


# --- child processes: one engine each ------------------------------------------------


@contextmanager
def phase(phases: dict[str, float], name: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = time.perf_counter() - start


def group_of(proc: psutil.Process, root: int) -> str:
    if proc.pid == root:
        return "driver"
    return "jvm" if "java" in proc.name() else "workers"


def tree_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of this process and its descendants, by group."""
    me = psutil.Process()
    seconds = dict.fromkeys(GROUPS, 0.0)
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            seconds[group_of(proc, me.pid)] += times.user + times.system
        except psutil.Error:
            continue
    return seconds


@contextmanager
def cpu_delta(out: dict[str, float]) -> Iterator[None]:
    before = tree_cpu()
    yield
    after = tree_cpu()
    out.update({group: after[group] - before[group] for group in GROUPS})


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
    from stages.adapters import spark as adapter

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


def peak_rss() -> int:
    """This process's peak RSS in bytes: VmHWM, the high-water mark of its own memory.

    Not ru_maxrss: Linux carries the pre-exec peak over, and subprocess spawns
    with vfork, so ru_maxrss would start at the parent's RSS.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_child(args: argparse.Namespace) -> None:
    try:
        result = CHILDREN[args.child](args)
    except Exception as exc:  # reported to the parent, which prints it in the table
        result = {"status": f"{type(exc).__name__}: {str(exc).strip()[:160]}"}
    result["maxrss"] = peak_rss()
    args.result.write_text(json.dumps(result))


# --- parent: run, poll, tabulate --------------------------------------------------------


class TreeSampler(threading.Thread):
    """Polls a process tree: the peak of each group's summed RSS, and CPU seconds."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peaks = dict.fromkeys((*GROUPS, "total"), 0)
        self.cpu: dict[int, float] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            self.sample()
            if self.done.wait(POLL_SECONDS):
                return

    def sample(self) -> None:
        sizes = dict.fromkeys(self.peaks, 0)
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        for proc in procs:
            try:
                rss = proc.memory_info().rss
                sizes[group_of(proc, self.root.pid)] += rss
                times = proc.cpu_times()
            except psutil.Error:
                continue
            self.cpu[proc.pid] = times.user + times.system
            sizes["total"] += rss
        self.peaks = {key: max(value, sizes[key]) for key, value in self.peaks.items()}


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
    out, logs = DATA / "out" / tag, DATA / "logs"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    logs.mkdir(parents=True, exist_ok=True)
    result_file = logs / f"{tag}.json"
    result_file.unlink(missing_ok=True)
    command = [sys.executable, "-m", "benchmarks.featurize", "--child", job.engine]
    command += ["--input", str(job.source), "--output", str(out), "--result", str(result_file)]
    command += [*job.options, *(["--profile"] if job.profile else [])]
    code, peaks, load = supervise(command, logs / f"{tag}.log", timeout)
    result: Result = {"status": f"child exit code {code}; see {logs / f'{tag}.log'}"}
    if result_file.exists():
        result = json.loads(result_file.read_text())
    result.update(engine=job.engine, rows=job.rows, limit=job.limit, exit=code, peaks=peaks)
    result["load"] = load
    result["output_bytes"] = sum(
        f.stat().st_size for f in out.rglob("*.parquet") if "warm" not in f.parts
    )
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    return result


def busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (or stolen by the hypervisor)."""
    times = psutil.cpu_times()
    idle: float = times.idle + getattr(times, "iowait", 0.0)
    return float(sum(times)) - idle


def supervise(
    command: list[str], log_file: Path, timeout: float
) -> tuple[int, dict[str, int], float]:
    """Run the child; its exit code, RSS peaks, and the cores others kept busy meanwhile."""
    busy, start = busy_seconds(), time.perf_counter()
    with log_file.open("w") as log:
        child = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        sampler = TreeSampler(child.pid)
        sampler.start()
        try:
            code = child.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_tree(child)
            code = child.wait()
        sampler.done.set()
        sampler.join()
    others = busy_seconds() - busy - sum(sampler.cpu.values())
    return code, sampler.peaks, max(0.0, others) / (time.perf_counter() - start)


def kill_tree(child: subprocess.Popen[bytes]) -> None:
    for proc in psutil.Process(child.pid).children(recursive=True):
        proc.kill()
    child.kill()


def median_run(runs: list[Result]) -> Result:
    """The run with the median wall time, with the largest peaks of all runs."""
    done = sorted((r for r in runs if r["status"] == "ok"), key=lambda r: r["wall"])
    chosen = dict(done[(len(done) - 1) // 2] if done else runs[-1])
    peaks = {key: max(r["peaks"][key] for r in runs) for key in runs[0]["peaks"]}
    maxrss = max(r.get("maxrss", 0) for r in runs)
    load = max(r["load"] for r in runs)
    walls = [r["wall"] for r in done]
    return {**chosen, "peaks": peaks, "maxrss": maxrss, "walls": walls, "load": load}


# --- report --------------------------------------------------------------------------

HEADER = [
    "rows", "engine", "memory limit", "Spark start s", "wall s", "rows/s",
    "peak Python RSS", "peak JVM RSS", "peak Py workers RSS", "peak tree RSS",
    "Spark/pandas wall", "Spark/pandas peak RSS", "CPU s JVM / workers / driver",
    "other load, cores", "status",
]  # fmt: skip


def mib(value: float | None) -> str:
    return "-" if not value else f"{value / MIB:,.0f} MiB"


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


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
    cpu = run.get("cpu") or {}
    rate = f"{run['rows'] / wall:,.0f}" if ok and wall else "-"
    cpu_text = (
        " / ".join(f"{cpu.get(g, 0.0):.1f}" for g in ("jvm", "workers", "driver")) if cpu else "-"
    )
    spark = run["engine"] == "spark"
    wall_ratio, memory_ratio = ratio(run, runs)
    return [
        f"{run['rows']:,}", run["engine"], run["limit"], seconds(run.get("session")),
        seconds(wall), rate, mib(run.get("maxrss")),
        mib(run["peaks"]["jvm"]) if spark else "-", mib(run["peaks"]["workers"]) if spark else "-",
        mib(run["peaks"]["total"]), wall_ratio, memory_ratio, cpu_text, f"{run['load']:.2f}",
        run["status"],
    ]  # fmt: skip


def markdown(rows: list[list[str]], header: list[str]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


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


def java_version() -> str:
    probe = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False)
    return (probe.stderr.splitlines() or ["unknown"])[0]


def versions() -> str:
    import pyspark

    parts = [
        f"Python {platform.python_version()}", f"pyspark {pyspark.__version__}",
        f"pandas {pd.__version__}", f"pyarrow {pa.__version__}", f"numpy {np.__version__}",
        java_version(),
    ]  # fmt: skip
    return ", ".join(parts)


def machine(load_start: float) -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )  # fmt: skip
    memory = psutil.virtual_memory().total / GIB
    load_end = os.getloadavg()[0]
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} logical CPUs ({model}), "
        f"{memory:.1f} GiB RAM; 1-min load average {load_start:.2f} at the start, "
        f"{load_end:.2f} at the end"
    )


def run_notes(runs: list[Result]) -> list[str]:
    notes = []
    for run in runs:
        detail = f"- {run['rows']:,} rows, {run['engine']} ({run['limit']}): "
        if run.get("walls") and len(run["walls"]) > 1:
            detail += f"walls {', '.join(f'{w:.2f}' for w in run['walls'])} s; "
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
        f"stages.ingest conform + to_arrow, written with ingest's writer ({writer}) in "
        "1M-row chunks. The file is in the page cache for both engines.",
        f"- Spark: master {SPARK_MASTER}, otherwise conf/spark (Arrow batches "
        f"{spark.arrow_batch_rows:,} rows, {spark.max_partition_bytes} input splits); "
        "stages.featurize.write_features, the stage's own code: read, select features and "
        "route, write_routed into train/ and holdout/ (Arrow's parquet writer in the Python "
        "workers). Its wall time is the first job of a fresh JVM, as in a DVC run of the stage; "
        "the profile table below the results is measured after it (warm JVM).",
        "- pandas: pyarrow read -> to_pandas -> stages.featurize.featurize_pandas -> "
        "Table.from_pandas -> stages.adapters.parquet.write_table, one file, "
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


def report(runs: list[Result], context: Result) -> str:
    lines = ["# featurize benchmark: Spark vs pandas", ""]
    lines += markdown([table_row(run, runs) for run in runs], HEADER)
    lines += profile_lines(runs)
    lines += ["", "## Notes", ""]
    lines += [
        f"- Date: {context['date']}; command: `{context['command']}`; whole benchmark "
        f"{context['total']:.0f} s (input generation {context['generation']:.0f} s of it); "
        f"code: {context['code']}.",
        f"- Machine: {machine(context['load'])}. Shared and noisy: compare ratios, "
        "not absolute times.",
        f"- Versions: {versions()}.",
        *setup_notes(context["config"]),
        *method_notes(),
        *run_notes(runs),
    ]
    return "\n".join(lines) + "\n"


def code_version() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    dirty = git("status", "--porcelain", "--", "stages", "conf", "params.yaml")
    return f"commit {git('rev-parse', '--short', 'HEAD') or 'unknown'}" + (
        " plus uncommitted changes in stages/ or conf/" if dirty else ""
    )


# --- entry point ------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.featurize",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    parser.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
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
    start, load, code = time.perf_counter(), os.getloadavg()[0], code_version()
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
    context = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python -m benchmarks.featurize", *sys.argv[1:]]),
        "total": time.perf_counter() - start,
        "generation": generation,
        "load": load,
        "code": code,
        "config": cfg,
    }
    text = report(runs, context)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text)
    print(text)


def cleanup(args: argparse.Namespace) -> None:
    for rows in [*args.rows, *([args.big_rows] if args.big_rows else [])]:
        input_path(rows).unlink(missing_ok=True)
    shutil.rmtree(DATA / "out", ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.child:
        run_child(args)
    else:
        run_all(args)


if __name__ == "__main__":
    main()
