"""Benchmark of featurize on local[2] against a Spark standalone cluster on the same machine.

    python -m benchmarks.spark_cluster [--rows 10000000] [--repeats 3]

The cluster is a master and two workers (1 core each) on loopback, started
from the installed pyspark by driftloop.adapters.spark_standalone for the whole
run. Both engines take their settings from conf/spark (composed as
`spark.master=local[2]` and `spark=cluster spark.master=spark://...`) and run
the featurize stage's own code on the input of benchmarks/featurize.py (same
generator, same transforms), each run in a fresh child process, alternating
engines; the table shows the median of the repeats. The child times the job
(the Spark session start apart); the parent polls the driver's process tree
and the cluster's processes (master, workers, executors and their Python
workers) for peak RSS and CPU. Every run's output is hashed: both engines must
write the same bytes. Results: benchmarks/results/spark_cluster.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import time
from contextlib import suppress
from pathlib import Path

import psutil

from benchmarks.featurize import (
    SPARK_VERSIONS,
    bench_config,
    config,
    feature_plan,
    median_run,
    run_notes,
    spark_measure,
)
from benchmarks.harness import (
    DATA,
    ROOT,
    Result,
    Session,
    TreeSampler,
    arguments,
    child_arguments,
    child_files,
    child_main,
    java_version,
    markdown,
    mib,
    read_result,
    seconds,
    supervise,
    versions,
    write_results,
)
from benchmarks.inputs import ensure_input, input_path
from driftloop.adapters.spark_standalone import Cluster, start_cluster
from driftloop.config.compose import compose, load
from driftloop.config.schema import DriftloopConfig

WORK = DATA / "spark_cluster"
LOCAL_MASTER = "local[2]"
WORKERS = 2
WORKER_CORES = 1
RUN_GROUPS = ("driver", "executors", "py workers", "daemons")


# --- child: one engine ----------------------------------------------------------------


def child(args: argparse.Namespace) -> Result:
    """Featurize args.input with the Spark settings of args.params."""
    from driftloop.adapters import spark as adapter

    cfg = bench_config(load(args.params))
    start = time.perf_counter()
    session = adapter.session(cfg.spark)
    started = time.perf_counter() - start
    try:
        measured = spark_measure(session, cfg, feature_plan(cfg), args)
    finally:
        session.stop()
    return {"status": "ok", "session": started, **measured}


# --- parent: the cluster's processes ---------------------------------------------------


class RunSampler(TreeSampler):
    """Peak RSS and CPU seconds of everything this process started, by group, at once.

    The driver's tree and, when a cluster is up, its daemons (master and
    workers), their executors and the executors' Python workers: each poll
    sums all of them, so the total peak is a real peak, not a sum of peaks.
    """

    def __init__(self, daemons: list[int], with_cluster: bool) -> None:
        super().__init__(os.getpid(), groups=RUN_GROUPS)
        self.daemons = set(daemons)
        self.with_cluster = with_cluster
        self.sample()
        self.before = dict(self.cpu)

    def grouped(self) -> list[tuple[psutil.Process, str]]:
        cluster: dict[int, str] = {}
        for pid in self.daemons:
            with suppress(psutil.Error):
                for proc in psutil.Process(pid).children(recursive=True):
                    cluster[proc.pid] = "executors" if "java" in proc.name() else "py workers"
        cluster.update(dict.fromkeys(self.daemons, "daemons"))
        found = []
        with suppress(psutil.Error):
            for proc in self.root.children(recursive=True):
                group = cluster.get(proc.pid, "driver")
                if group == "driver" or self.with_cluster:
                    found.append((proc, group))
        return found

    def cpu_spent(self) -> dict[str, float]:
        """CPU seconds per group since this sampler was made."""
        spent = dict.fromkeys(RUN_GROUPS, 0.0)
        for pid, seconds_ in self.cpu.items():
            spent[self.groups[pid]] += seconds_ - self.before.get(pid, 0.0)
        return spent


# --- parent: runs ------------------------------------------------------------------------


def params_for(group: str, overrides: list[str]) -> Path:
    """conf/ composed with the given spark group and overrides, for the children."""
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"params-{group}.yaml"
    compose(ROOT, path, [f"spark={group}", *overrides])
    return path


def output_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as data:
            for block in iter(lambda: data.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def measure(engine: str, params: Path, source: Path, cluster: Cluster, number: int) -> Result:
    """One run in a fresh child process, with the driver's and the cluster's peaks."""
    out, log, result_file = child_files(WORK, f"{engine}-{number}")
    command = [sys.executable, "-m", "benchmarks.spark_cluster", "--child", "--params", str(params)]
    command += ["--input", str(source), "--output", str(out), "--result", str(result_file)]
    sampler = RunSampler(cluster.pids(), with_cluster=engine == "cluster")
    sampler.start()
    start = time.perf_counter()
    code, peaks, load = supervise(command, log, 3600.0)
    elapsed = time.perf_counter() - start
    sampler.done.set()
    sampler.join()
    result = read_result(result_file, code, log)
    result.update(engine=engine, exit=code, peaks=peaks, run_peaks=sampler.peaks)
    result["run_cpu"] = cpu = sampler.cpu_spent()
    # supervise counts only the driver's tree as ours; the cluster's work is ours too
    result["load"] = max(0.0, load - (sum(cpu.values()) - cpu["driver"]) / elapsed)
    result["output_bytes"] = sum(f.stat().st_size for f in out.rglob("*.parquet"))
    result["digest"] = output_digest(out)
    shutil.rmtree(out, ignore_errors=True)
    return result


def summary(runs: list[Result], rows: int, limit: str) -> Result:
    """The median run, with the largest peaks of all runs of the engine."""
    run = median_run(runs)
    peaks = [r["run_peaks"] for r in runs]
    run["run_peaks"] = {key: max(p[key] for p in peaks) for key in peaks[0]}
    run["digests"] = sorted({r["digest"] for r in runs})
    return {**run, "rows": rows, "limit": limit}


def run_engines(args: argparse.Namespace, source: Path) -> tuple[list[Result], list[str]]:
    """Both engines, alternating, --repeats times each; their summaries and the master's apps."""
    local = params_for("local", [f"spark.master='{LOCAL_MASTER}'"])
    runs: dict[str, list[Result]] = {"local": [], "cluster": []}
    with start_cluster(WORKERS, WORKER_CORES, args.worker_memory, WORK / "cluster") as cluster:
        memory = f"spark.executor_memory={args.executor_memory}"
        remote = params_for("cluster", [f"spark.master='{cluster.master}'", memory])
        engines = {"local": local, "cluster": remote}
        for number in range(args.repeats):
            for engine, params in engines.items():
                run = measure(engine, params, source, cluster, number)
                runs[engine].append(run)
                wall = seconds(run.get("wall"))
                print(f"{engine} run {number + 1}: {run['status']}, wall {wall} s", flush=True)
        apps = [f"{app['name']} {app['state']}" for app in cluster.status()["completedapps"]]
    limits = {engine: limit(engine, load(params)) for engine, params in engines.items()}
    return [summary(runs[e], args.rows, limits[e]) for e in runs], apps


def limit(engine: str, cfg: DriftloopConfig) -> str:
    spark = cfg.spark
    if engine == "local":
        return f"{spark.master}, driver heap {spark.driver_memory}"
    return (
        f"{WORKERS} executors x {spark.executor_cores} core, heap {spark.executor_memory} each; "
        f"driver heap {spark.driver_memory}"
    )


# --- report ----------------------------------------------------------------------------

HEADER = [
    "rows", "engine", "executors and heaps", "Spark start s", "job wall s (median)",
    "job wall s (fastest)", "rows/s (median)", "peak RSS driver tree",
    "peak RSS executors + their Py workers", "peak RSS master + workers", "peak RSS all",
    "CPU s driver / cluster", "CPU s all", "other load, cores",
    "cluster/local job wall (median)", "cluster/local job wall (fastest)",
    "cluster/local CPU s", "status",
]  # fmt: skip


def measures(run: Result) -> dict[str, float]:
    """The numbers the cluster/local ratios compare."""
    return {
        "median": run["wall"],
        "fastest": min(run["walls"]),
        "cpu": sum(run["run_cpu"].values()),
    }


def ratios(run: Result, local: Result) -> list[str]:
    if run["engine"] != "cluster" or run["status"] != "ok" or local["status"] != "ok":
        return ["-", "-", "-"]
    mine, base = measures(run), measures(local)
    return [f"{mine[key] / base[key]:.2f}x" for key in ("median", "fastest", "cpu")]


def table_row(run: Result, local: Result) -> list[str]:
    ok = run["status"] == "ok"
    peaks, cpu = run["run_peaks"], run["run_cpu"]
    cluster = run["engine"] == "cluster"
    executors = peaks["executors"] + peaks["py workers"]
    cluster_cpu = sum(cpu.values()) - cpu["driver"]
    return [
        f"{run['rows']:,}", run["engine"], run["limit"], seconds(run.get("session")),
        seconds(run.get("wall")), seconds(min(run["walls"])) if ok else "-",
        f"{run['rows'] / run['wall']:,.0f}" if ok else "-", mib(peaks["driver"]),
        mib(executors) if cluster else "-", mib(peaks["daemons"]) if cluster else "-",
        mib(peaks["total"]), f"{cpu['driver']:.1f} / {cluster_cpu:.1f}" if cluster
        else f"{cpu['driver']:.1f} / -", f"{sum(cpu.values()):.1f}", f"{run['load']:.2f}",
        *ratios(run, local), run["status"],
    ]  # fmt: skip


def notes(runs: list[Result], apps: list[str], context: Result) -> list[str]:
    session: Session = context["session"]
    digests = {digest for run in runs for digest in run["digests"]}
    same = "yes" if len(digests) == 1 else f"NO: {len(digests)} different outputs"
    return [
        session.about(context["generation"]),
        session.machine(
            "Shared with other agents' work and noisy: compare the ratio, not absolute "
            "times; 'other load' is the CPU others kept busy."
        ),
        f"- Versions: {versions(SPARK_VERSIONS, [java_version()])}.",
        "- Input and transforms: those of benchmarks/featurize.py (its input generator, "
        "12 feature columns on 10 input columns), the stage's own code "
        "(stages.featurize.write_features) into train/ and holdout/.",
        f"- Cluster: one Spark standalone master and {WORKERS} workers "
        f"(--cores {WORKER_CORES} --memory {context['worker_memory']} each) on 127.0.0.1, "
        "started from the installed pyspark by driftloop.adapters.spark_standalone, up for the "
        f"whole benchmark; each run is one application. Master's completed apps: "
        f"{', '.join(apps) or 'none'}.",
        "- Both engines: conf/spark composed (local: `spark.master=local[2]`; cluster: "
        "`spark=cluster spark.master=spark://...`), same split size and Arrow batches; each "
        "run is a fresh driver process; engines alternate.",
        f"- Output bytes identical across engines and runs (sha256 of every file): {same}.",
        "- Spark start s: the session start (driver JVM); on the cluster the executors start "
        "during the first job, so their launch is inside job wall s.",
        "- Peak RSS: every 0.1 s psutil sums the RSS of every process of the run at once "
        "(short spikes may be missed): the driver's tree (its Python, its JVM and, on "
        "local[2], the Python workers) and, for the cluster, the executor JVMs with their "
        "Python workers and the master and worker daemons; the largest of the repeats.",
        "- CPU s: user + system seconds of the same processes over the driver's whole life "
        "(JVM starts included), of the median run. Less sensitive to other tenants than wall "
        "time, but not immune (a busy machine costs cache misses and context switches).",
        "- Fastest job wall: the least disturbed run of each engine; on a shared machine "
        "it is the better estimate of the engines' own cost.",
        *run_notes(runs),
    ]


def report(runs: list[Result], apps: list[str], context: Result) -> str:
    local = runs[0]
    lines = ["# featurize on local[2] vs a two-worker Spark standalone cluster (one machine)", ""]
    lines += markdown([table_row(run, local) for run in runs], HEADER)
    lines += ["", "## Notes", "", *notes(runs, apps, context)]
    return "\n".join(lines) + "\n"


# --- entry point ------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = arguments("benchmarks.spark_cluster", __doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3, help="runs per engine (median)")
    parser.add_argument("--worker-memory", default="2g", help="each worker's --memory")
    parser.add_argument("--executor-memory", default="1g", help="spark.executor_memory")
    parser.add_argument("--keep-data", action="store_true", help="keep the generated input")
    # internal: one engine in this process
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    child_arguments(parser, "params", "input", "output", "result")
    parser.set_defaults(profile=False)
    return parser.parse_args(argv)


def run_all(args: argparse.Namespace) -> None:
    session = Session("benchmarks.spark_cluster")
    source, generation = ensure_input(args.rows, bench_config(config()))
    runs, apps = run_engines(args, source)
    context: Result = {
        "session": session,
        "generation": generation,
        "worker_memory": args.worker_memory,
    }
    if not args.keep_data:
        if generation:  # an input another benchmark made stays for it
            input_path(args.rows).unlink(missing_ok=True)
        shutil.rmtree(WORK, ignore_errors=True)
    write_results("spark_cluster.md", report(runs, apps, context))


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.child:
        child_main(lambda: child(args), args.result)
    else:
        run_all(args)


if __name__ == "__main__":
    main()
