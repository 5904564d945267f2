"""Benchmark of the monitor stage: the whole stage against NannyML's own work.

    python -m benchmarks.monitor [--sizes 50000 500000 2000000] [--repeat 3] [--no-profile]

Input: one production batch per size, a folder
``<incoming>/<batch>/{data,labels}.parquet`` as the stage reads it. NannyML's
synthetic car loan analysis rows (50,000) and their targets are resampled to N
rows with seeded draws kept in their original order (so the data set's drift
over time survives), values unchanged, fresh unique ids, timestamps spread
evenly over ten calendar months (``monitor.chunk_period: M`` gives ten
chunks). data.parquet
holds the schema's columns plus the champion's y_pred and y_pred_proba
(driftloop.core.predictor.Predictor, as the stage scores) and model_version = the
champion's version, as a batch snapshotted from the prediction log;
labels.parquet holds id and repaid for every row. Batches are cached under
benchmarks/data/monitor/, keyed by size, seed and the champion's digest.

Per size, ``--repeat`` times, two fresh processes one after the other:

* stage: ``driftloop monitor --params params.yaml --holdout data/features/holdout
  --champion data/models/car_loan/champion --incoming <dir> --metrics ... --plots ...
  --report ...``, the command of dvc.yaml with outputs under benchmarks/data, run
  from the project root under a small wrapper that times it and reads its peak
  RSS from ``getrusage(RUSAGE_CHILDREN)`` (exact for the stage's one process);
  the parent also polls the tree's summed RSS with psutil as a check;
* NannyML: a child that starts with nothing imported but the standard library
  and the harness (psutil),
  imports what the stage's CLI imports (driftloop.cli.build_parser),
  imports nannyml through the adapter (driftloop.adapters.nml.nannyml(), timed on
  its own), then runs the stage's own stages.monitor.main in-process on the
  same batch with timers wrapped around the functions it calls: each
  calculator built by driftloop.adapters.nml._calculators (its fit + calculate, or
  fit + estimate, as one callable) is timed separately, so NannyML's compute is
  measured on exactly the frames and configuration the stage gives it, and the
  rest of main is broken down by the stage's functions.

The table shows medians; stage / (NannyML + import) is the stage's wall over
the NannyML child's calculator seconds plus its nannyml import, i.e. how much
the stage adds for reading, joining labels, scoring, process start and
writing reports. One more stage run under cProfile at the largest size shows
where its time goes (``--no-profile`` skips it). Results:
benchmarks/results/monitor.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from benchmarks import harness
from benchmarks.harness import (
    MIB,
    ROOT,
    Result,
    Session,
    arguments,
    child_arguments,
    child_files,
    child_main,
    code_version,
    lower_median,
    markdown,
    median,
    read_result,
    supervise,
    versions,
    vm_hwm,
    write_results,
)
from benchmarks.harness import seconds as secs

if TYPE_CHECKING:
    import pandas as pd

    from driftloop.config.schema import DriftloopConfig
    from driftloop.core.champion import Champion

# Only the standard library and the harness at the top: the NannyML child must
# start with cold imports, as the stage does. The rest is imported where used.

DATA = harness.DATA / "monitor"
CHAMPION = Path("data/models/car_loan/champion")
HOLDOUT = Path("data/features/holdout")
PARAMS = Path("params.yaml")
SOURCE = ("synthetic_car_loan", "analysis")
SEED = 20240615
FIRST_ID = 100_000_000
FIRST_TIME = "2019-01-01T00:00:00"
END_TIME = "2019-11-01T00:00:00"  # ten calendar months
BATCH = "2019-10"
SCORE_ROWS = 250_000
VERSION_COLUMN = "model_version"
VERSIONS = ("nannyml", "lightgbm", "scikit-learn", "pandas", "numpy", "pyarrow", "plotly")
TARGET_ROWS = 2_000_000
TARGET_WALL = 20.0
TARGET_BYTES = 2 * 10**9
TARGET_RATIO = 1.5
# what the stage calls, timed in the NannyML child (names missing from the code are skipped)
STAGE_FUNCTIONS = (
    "latest_batch", "recent_batches", "batch_rows", "load_champion", "read_features",
    "scored", "decide", "write_outputs", "write_nothing",
)  # fmt: skip
RUNNER_FUNCTIONS = ("params",)
ADAPTER_FUNCTIONS = ("monitor", "plain", "tidy", "write_report")
CALCULATORS = (
    ("univariate_drift", "univariate drift"),
    ("pca_reconstruction_error", "PCA reconstruction"),
    ("domain_classifier", "domain classifier"),
    ("estimated_performance", "CBPE"),
    ("realised_performance", "realised performance"),
    ("missing_values", "missing values"),
    ("unseen_values", "unseen values"),
)
WRAPPER = """\
import json, resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.call(sys.argv[2:])
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "wall": wall, "maxrss": peak}, out)
sys.exit(code)
"""


# --- the input batches -------------------------------------------------------------------


def config() -> DriftloopConfig:
    from driftloop.config.compose import load

    return load(ROOT / PARAMS)


def batch_dir(rows: int, champion: Champion) -> Path:
    """The incoming folder of one size (it holds one batch folder)."""
    return DATA / "batches" / f"{rows}-seed{SEED}-champion{champion.digest}"


def ensure_batch(rows: int, cfg: DriftloopConfig, champion: Champion) -> tuple[Path, float]:
    """The incoming folder of ``rows`` rows (generated unless cached), seconds spent."""
    incoming = batch_dir(rows, champion)
    if (incoming / BATCH / "labels.parquet").is_file():
        return incoming, 0.0
    start = time.perf_counter()
    tmp = incoming.with_name(f".{incoming.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / BATCH).mkdir(parents=True)
    generate(tmp / BATCH, rows, cfg, champion)
    shutil.rmtree(incoming, ignore_errors=True)
    tmp.replace(incoming)
    return incoming, time.perf_counter() - start


def resampled(rows: int) -> pd.DataFrame:
    """NannyML's analysis rows with their targets, drawn with replacement and kept in
    their order (the data set's drift stays where it was), fresh ids and times."""
    import numpy as np
    import pandas as pd

    from driftloop.adapters import nml

    data_file, targets_file = nml.packaged_files(*SOURCE)
    assert targets_file is not None
    source = pd.read_csv(data_file).drop(columns=["y_pred", "y_pred_proba"])
    source = source.merge(pd.read_csv(targets_file), on="id", how="inner")
    rng = np.random.default_rng(SEED)
    frame = source.iloc[np.sort(rng.integers(0, len(source), rows))].reset_index(drop=True)
    steps = np.arange(rows, dtype=np.int64)
    frame["id"] = FIRST_ID + steps
    first, end = np.datetime64(FIRST_TIME, "us"), np.datetime64(END_TIME, "us")
    frame["timestamp"] = first + steps * ((end - first) // rows)
    return frame


def generate(folder: Path, rows: int, cfg: DriftloopConfig, champion: Champion) -> None:
    """data.parquet (schema columns, the champion's predictions, model_version) and
    labels.parquet (id, target) of one batch."""
    from dataclasses import replace

    import pyarrow as pa
    import pyarrow.parquet as pq

    from driftloop.core.data import conform

    data = cfg.data
    target = data.columns.target
    frame = resampled(rows)
    schema = {k: v for k, v in data.schema.items() if k != target}
    batch = conform(frame, replace(data, schema=schema), "benchmark")
    batch = batch.assign(**predictions(batch, cfg, champion), **{VERSION_COLUMN: champion.version})
    labels = frame[[data.columns.id, target]].astype("int64")
    for name, part in (("data", batch), ("labels", labels)):
        # plain Arrow types, no pandas metadata: read back as a snapshot of the log reads
        table = pa.Table.from_pandas(part, preserve_index=False).replace_schema_metadata(None)
        pq.write_table(table, folder / f"{name}.parquet", compression="zstd")


def predictions(batch: pd.DataFrame, cfg: DriftloopConfig, champion: Champion) -> dict[str, Any]:
    """The champion's prediction columns, scored as driftloop.core.monitoring.scored does."""
    import numpy as np

    from driftloop.core.plan import plan
    from driftloop.core.predictor import Outputs, Predictor, frame_columns, input_columns

    predictor = Predictor(champion.model, plan(cfg.features, cfg.data), cfg.data.problem)
    outputs = Outputs.of(cfg.data)
    names = input_columns(cfg.data, predictor.plan)
    parts: dict[str, list[Any]] = {}
    for first in range(0, len(batch), SCORE_ROWS):
        part = batch.iloc[first : first + SCORE_ROWS]
        scores = predictor.predict(frame_columns(part, names, cfg.data.schema))
        for name, values in outputs.columns(scores).items():
            parts.setdefault(name, []).append(np.asarray(values))
    return {name: np.concatenate(values) for name, values in parts.items()}


# --- the NannyML child: the stage in-process, with timers ---------------------------------


# (name, peak RSS before, peak RSS after) of every timed call, in the order calls end
HIGH_WATER: list[tuple[str, int, int]] = []


def timer(function: Callable[..., Any], name: str, spent: dict[str, list[float]]) -> Any:
    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start, before = time.perf_counter(), vm_hwm()
        try:
            return function(*args, **kwargs)
        finally:
            entry = spent.setdefault(name, [0.0, 0])
            entry[0] += time.perf_counter() - start
            entry[1] += 1
            HIGH_WATER.append((name, before, vm_hwm()))

    return timed


def peak_set_in() -> Result:
    """The innermost timed call during which the process reached its peak RSS, and
    the largest rises of the high-water mark by call."""
    final = max((after for _, _, after in HIGH_WATER), default=0)
    where = next((n for n, before, after in HIGH_WATER if before < final == after), "-")
    rises: dict[str, int] = {}
    for name, before, after in HIGH_WATER:
        rises[name] = max(rises.get(name, 0), after - before)
    return {"peak": final, "in": where, "rises": rises}


def instrument(module: Any, names: tuple[str, ...], prefix: str, spent: dict[str, Any]) -> None:
    for name in names:
        original = getattr(module, name, None)
        if callable(original):
            setattr(module, name, timer(original, f"{prefix}{name}", spent))


def instrument_calculators(seen: Result, calculators: dict[str, Any]) -> None:
    """Time each callable that driftloop.adapters.nml._calculators builds, and keep
    the sizes of the frames the stage hands to NannyML."""
    from driftloop.adapters import nml

    build = nml._calculators
    monitor = nml.monitor

    def built(*args: Any, **kwargs: Any) -> Any:
        runs = build(*args, **kwargs)
        return {name: timer(run, name, calculators) for name, run in runs.items()}

    def monitored(reference: Any, analysis: Any, *args: Any, **kwargs: Any) -> Any:
        seen["reference_rows"], seen["analysis_rows"] = len(reference), len(analysis)
        seen["analysis_dtypes"] = {str(c): str(t) for c, t in analysis.dtypes.items()}
        signals = monitor(reference, analysis, *args, **kwargs)
        table = signals.table
        analysed = table[(table["signal"] == "univariate_drift") & (table["period"] == "analysis")]
        seen["chunks"] = int(analysed["key"].nunique())
        return signals

    nml._calculators = built
    nml.monitor = monitored


def instrument_scoring(seen: Result) -> None:
    from driftloop.core.predictor import Predictor

    predict = Predictor.predict

    def counted(self: Predictor, columns: Any) -> Any:
        seen["scored_rows"] = seen.get("scored_rows", 0) + len(next(iter(columns.values())))
        return predict(self, columns)

    Predictor.predict = counted  # type: ignore[method-assign]


def nannyml_child(args: argparse.Namespace) -> Result:
    phases: dict[str, float] = {}
    start = time.perf_counter()
    from driftloop import cli
    from driftloop.core import runner

    cli.build_parser()  # what the stage's process imports before main
    phases["cli_imports"] = time.perf_counter() - start
    start = time.perf_counter()
    from driftloop.adapters import nml

    nml.nannyml()
    phases["nannyml_import"] = time.perf_counter() - start
    from stages import monitor as stage

    spent: dict[str, list[float]] = {}
    calculators: dict[str, list[float]] = {}
    seen: Result = {}
    instrument(stage, STAGE_FUNCTIONS, "", spent)
    instrument(runner, RUNNER_FUNCTIONS, "", spent)
    instrument(nml, ADAPTER_FUNCTIONS, "nml.", spent)
    instrument(nml.Chunking, ("classifier_sample",), "nml.", spent)
    instrument_calculators(seen, calculators)
    instrument_scoring(seen)
    parser = argparse.ArgumentParser()
    stage.add_arguments(parser)
    runner.setup_logging()
    start, before_main = time.perf_counter(), vm_hwm()
    stage.main(parser.parse_args(stage_arguments(args.incoming, args.output)))
    phases["main"] = time.perf_counter() - start
    seen["high_water"] = {"before_main": before_main, **peak_set_in()}
    action = json.loads((args.output / "drift.json").read_text()).get("action")
    return {"status": "ok", "phases": phases, "functions": spent, "calculators": calculators,
            "seen": seen, "action": action}  # fmt: skip


# --- parent: the runs -----------------------------------------------------------------------


def stage_arguments(incoming: Path, output: Path) -> list[str]:
    """The stage's arguments as dvc.yaml gives them, with outputs under ``output``."""
    return [
        "--params", str(PARAMS), "--holdout", str(HOLDOUT), "--champion", str(CHAMPION),
        "--incoming", str(incoming), "--metrics", str(output / "drift.json"),
        "--plots", str(output / "monitoring"), "--report", str(output / "monitoring.html"),
    ]  # fmt: skip


def driftloop() -> str:
    found = Path(sys.executable).with_name("driftloop")
    return str(found) if found.exists() else shutil.which("driftloop") or "driftloop"


def stage_run(rows: int, incoming: Path, index: int, timeout: float) -> Result:
    """The stage as DVC runs it, in a fresh process under the timing wrapper."""
    out, log, result_file = child_files(DATA, f"stage-{rows}-{index}")
    command = [sys.executable, "-c", WRAPPER, str(result_file), driftloop(), "monitor"]
    command += stage_arguments(incoming, out)
    code, peaks, load = supervise(command, log, timeout)
    run = {**read_result(result_file, code, log), "load": load}
    if run["status"] == "ok":
        run["tree_peak"] = peaks["total"]
        run["said"] = stage_lines(log)
        run["timer"] = stage_timer(run["said"])
        run["action"] = json.loads((out / "drift.json").read_text()).get("action")
    run["warnings"] = warning_lines(log)
    shutil.rmtree(out, ignore_errors=True)
    return run


def nannyml_run(rows: int, incoming: Path, index: int, timeout: float) -> Result:
    out, log, result_file = child_files(DATA, f"nannyml-{rows}-{index}")
    command = [sys.executable, "-m", "benchmarks.monitor", "--child", "--incoming",
               str(incoming), "--output", str(out), "--result", str(result_file)]  # fmt: skip
    code, peaks, load = supervise(command, log, timeout)
    run = read_result(result_file, code, log)
    shutil.rmtree(out, ignore_errors=True)
    return {**run, "load": load, "tree_peak": peaks["total"]}


def profile_run(rows: int, incoming: Path, timeout: float) -> Result:
    """One stage run under cProfile: the stage's own functions and NannyML's, by
    cumulative seconds."""
    import pstats

    out, log, _ = child_files(DATA, f"profile-{rows}")
    stats_file = log.with_suffix(".prof")
    command = [sys.executable, "-m", "cProfile", "-o", str(stats_file), driftloop(), "monitor"]
    command += stage_arguments(incoming, out)
    start = time.perf_counter()
    with log.open("w") as output:
        done = subprocess.run(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
                              timeout=timeout, check=False)  # fmt: skip
    wall = time.perf_counter() - start
    shutil.rmtree(out, ignore_errors=True)
    if done.returncode != 0 or not stats_file.exists():
        return {"status": f"exit code {done.returncode}", "rows": rows}
    stats: dict[Any, Any] = cast(Any, pstats.Stats(str(stats_file))).stats
    lambdas = calculator_lines()
    entries = []
    for (file, line, name), (_, calls, _, cumulative, _) in stats.items():
        where = profile_place(file)
        if where:
            label = f"{where}:{line} {name}"
            if name == "<lambda>" and where == NML_FILE and line in lambdas:
                label += f" ({lambdas[line]})"
            entries.append({"name": label, "calls": calls, "cum": cumulative})
    entries.sort(key=lambda e: -e["cum"])
    return {"status": "ok", "rows": rows, "wall": wall, "entries": entries}


def calculator_lines() -> dict[int, str]:
    """Line numbers of the lambdas in the NannyML adapter, by calculator name."""
    import re

    source = (ROOT / NML_FILE).read_text().splitlines()
    pattern = re.compile(r"[\"'](\w+)[\"']\]?\s*[:=]\s*lambda")
    found = {number: pattern.search(text) for number, text in enumerate(source, start=1)}
    return {number: match.group(1) for number, match in found.items() if match}


NML_FILE = "driftloop/adapters/nml.py"
PROFILED = ("stages/", "driftloop/", "nannyml/", "plotly/io", "lightgbm/", "pandas/io/", "pyarrow/")
# wrappers whose cumulative time is just that of what they wrap
UNPROFILED = ("driftloop/cli.py", "driftloop/core/runner.py", "nannyml/usage_logging.py")


def profile_place(file: str) -> str | None:
    for marker in PROFILED:
        if marker in file:
            place = file[file.index(marker.split("/")[0]) :]
            return None if place.startswith(UNPROFILED) else place
    return None


def stage_lines(log_file: Path) -> list[str]:
    return [line for line in log_file.read_text().splitlines() if line.startswith("monitor:")]


def stage_timer(said: list[str]) -> float | None:
    """The seconds of the stage's own summary line (runner.timed around its work)."""
    import re

    found = re.search(r"\((\d+(?:\.\d+)?) s\)$", said[-1]) if said else None
    return float(found.group(1)) if found else None


def warning_lines(log_file: Path) -> list[str]:
    lines = log_file.read_text().splitlines() if log_file.exists() else []
    return sorted({line.strip() for line in lines if not line.startswith("monitor:")})[:8]


# --- parent: medians and the report -----------------------------------------------------


def calculator_seconds(run: Result) -> dict[str, float]:
    return {name: float(entry[0]) for name, entry in run.get("calculators", {}).items()}


def summarize(rows: int, stage_runs: list[Result], child_runs: list[Result]) -> Result:
    stages_ok = [r for r in stage_runs if r["status"] == "ok"]
    children_ok = [r for r in child_runs if r["status"] == "ok"]
    summary: Result = {"rows": rows, "stage_runs": stage_runs, "child_runs": child_runs}
    if not stages_ok or not children_ok:
        summary["status"] = (stage_runs + child_runs)[-1]["status"]
        return summary
    compute = [sum(calculator_seconds(r).values()) for r in children_ok]
    imports = [r["phases"]["nannyml_import"] for r in children_ok]
    summary.update(
        status="ok",
        wall=median([r["wall"] for r in stages_ok]),
        peak=max(max(r["maxrss"], r["tree_peak"]) for r in stages_ok),
        compute=median(compute),
        nannyml_import=median(imports),
        calculators={
            name: median([calculator_seconds(r).get(name, float("nan")) for r in children_ok])
            for name, _ in CALCULATORS
        },
        child=median_child(children_ok),
        load=max(r["load"] for r in stage_runs + child_runs),
    )
    summary["ratio"] = summary["wall"] / (summary["compute"] + summary["nannyml_import"])
    return summary


def median_child(runs: list[Result]) -> Result:
    """The NannyML child run with the median main() time."""
    return lower_median(runs, key=lambda r: float(r["phases"]["main"]))


def mib(value: float) -> str:
    return f"{value / MIB:,.0f}"


HEADER = [
    "analysis rows", "chunks", "stage wall s", "stage peak MiB", "NannyML compute s",
    "nannyml import s", "stage / (NannyML + import)", "NannyML child peak MiB",
    "other load, cores",
]  # fmt: skip


def headline_row(s: Result) -> list[str]:
    if s["status"] != "ok":
        return [f"{s['rows']:,}", "-", "-", "-", "-", "-", "-", "-", s["status"]]
    child = s["child"]
    return [
        f"{s['rows']:,}", str(child["seen"].get("chunks", "?")), secs(s["wall"]),
        mib(s["peak"]), secs(s["compute"]), secs(s["nannyml_import"]), f"{s['ratio']:.2f}x",
        mib(max(r["maxrss"] for r in s["child_runs"] if r["status"] == "ok")),
        f"{s['load']:.2f}",
    ]  # fmt: skip


def calculator_table(summaries: list[Result]) -> list[str]:
    header = ["analysis rows", *(label for _, label in CALCULATORS), "sum"]
    rows = [
        [
            f"{s['rows']:,}",
            *(secs(s["calculators"][name]) for name, _ in CALCULATORS),
            secs(s["compute"]),
        ]
        for s in summaries
        if s["status"] == "ok"
    ]
    return markdown(rows, header)


def breakdown(s: Result) -> list[tuple[str, float]]:
    """Where the stage's time goes: outside its own timer from the stage runs, the
    rest from the median NannyML child run (the stage's main in-process)."""
    child = s["child"]
    phases, spent = child["phases"], child["functions"]

    def took(*names: str) -> float:
        return sum(float(spent[n][0]) for n in names if n in spent)

    timers = [r["timer"] for r in s["stage_runs"] if r.get("timer") is not None]
    outside = s["wall"] - median(timers) if timers else float("nan")
    computed = sum(calculator_seconds(child).values())
    parts = [
        ("stage wall (median of the stage runs)", s["wall"]),
        ("outside the stage's own timer: interpreter start, imports, params load, exit "
         "(stage wall - the seconds its summary line reports)", outside),
        ("  CLI imports (driftloop.cli.build_parser: pandas, scikit-learn, scipy, every stage "
         "module)", phases["cli_imports"]),
        ("  params.yaml load + freshness check (runner.params)", took("params")),
        ("read batch + labels join + conform", took("latest_batch", "recent_batches")),
        ("load champion", took("load_champion")),
        ("read holdout", took("read_features")),
        ("score: driftloop.core.monitoring.scored (reference and analysis)", took("scored")),
        ("nannyml import (the adapter's nannyml())", phases["nannyml_import"]),
        ("NannyML calculators (fit + calculate)", computed),
        ("nml.monitor minus the calculators", took("nml.monitor") - computed),
        ("  plain dtypes for NannyML (nml.plain)", took("nml.plain")),
        ("  the domain classifier's sample (Chunking.classifier_sample)",
         took("nml.classifier_sample")),
        ("  tidy (nml.tidy)", took("nml.tidy")),
        ("decide", took("decide")),
        ("write_outputs: CSVs, figures (result.plot), HTML, JSON", took("write_outputs")),
        ("  of which nml.write_report (the HTML)", took("nml.write_report")),
    ]  # fmt: skip
    known = took("latest_batch", "recent_batches", "load_champion", "read_features", "scored")
    known += took("nml.monitor", "decide", "write_outputs")
    parts.append(("main, the rest", phases["main"] - took("params") - known))
    return parts


def breakdown_table(summaries: list[Result]) -> list[str]:
    done = [s for s in summaries if s["status"] == "ok"]
    if not done:
        return []
    names = [name for name, _ in breakdown(done[0])]
    values = [dict(breakdown(s)) for s in done]
    rows = [[name, *(secs(v[name]) for v in values)] for name in names]
    header = ["part of the stage (s)", *(f"{s['rows']:,} rows" for s in done)]
    return markdown(rows, header)


def profile_table(profile: Result | None, top: int) -> list[str]:
    if not profile or profile["status"] != "ok":
        return []
    rows = [[e["name"], f"{e['calls']:,}", secs(e["cum"])] for e in profile["entries"][:top]]
    return [
        "",
        f"## cProfile of one stage run, {profile['rows']:,} rows (wall {profile['wall']:.1f} s "
        "under the profiler)",
        "",
        "Functions of stages/, driftloop/, nannyml/, lightgbm/, plotly.io, pandas.io and pyarrow "
        "by cumulative seconds (nested entries overlap; the CLI, runner and NannyML usage-logging "
        f"wrappers are left out; {NML_FILE} <lambda> lines are the calculators of "
        "_calculators; the profiler slows Python-heavy code).",
        "",
        *markdown(rows, ["function", "calls", "cumulative s"]),
    ]


def verdict(summaries: list[Result]) -> list[str]:
    big = next((s for s in summaries if s["rows"] == TARGET_ROWS and s["status"] == "ok"), None)
    if big is None:
        return [f"- Targets at {TARGET_ROWS:,} rows: not measured in this run."]

    domain = big["calculators"]["domain_classifier"]

    def met(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    return [
        f"- Targets at {TARGET_ROWS:,} rows: whole stage under {TARGET_WALL:.0f} s: "
        f"{met(big['wall'] < TARGET_WALL)} ({big['wall']:.1f} s); under 2 GB "
        f"({TARGET_BYTES / MIB:,.0f} MiB): {met(big['peak'] < TARGET_BYTES)} "
        f"({mib(big['peak'])} MiB); the stage adding less than half again to NannyML's own "
        f"time (ratio < {TARGET_RATIO}): {met(big['ratio'] < TARGET_RATIO)} "
        f"({big['ratio']:.2f}x).",
        f"- Same comparison inside one process (the NannyML child: CLI imports + nannyml "
        f"import + the stage's main, over calculators + nannyml import, no interpreter "
        f"start): {same_process_ratio(big):.2f}x. The domain classifier alone took "
        f"{domain:.1f} s of the {big['compute']:.1f} s of NannyML compute; the stage's wall "
        f"without it would be about {big['wall'] - domain:.1f} s.",
    ]


def same_process_ratio(s: Result) -> float:
    phases = s["child"]["phases"]
    nannyml_part = sum(calculator_seconds(s["child"]).values()) + float(phases["nannyml_import"])
    return float(phases["cli_imports"] + phases["nannyml_import"] + phases["main"]) / nannyml_part


def run_notes(summaries: list[Result]) -> list[str]:
    notes = []
    for s in summaries:
        stage_walls = ", ".join(
            f"{r['wall']:.2f}" if r["status"] == "ok" else r["status"] for r in s["stage_runs"]
        )
        peaks = ", ".join(
            f"{mib(r['maxrss'])}/{mib(r['tree_peak'])}"
            for r in s["stage_runs"]
            if r["status"] == "ok"
        )
        children = ", ".join(
            f"{sum(calculator_seconds(r).values()):.2f} + {r['phases']['nannyml_import']:.2f}"
            if r["status"] == "ok" else r["status"]
            for r in s["child_runs"]
        )  # fmt: skip
        said = next((r["said"][-1] for r in s["stage_runs"] if r.get("said")), "-")
        note = (
            f"- {s['rows']:,} rows: stage walls {stage_walls} s; stage peak MiB (ru_maxrss / "
            f"polled tree) {peaks}; NannyML child compute + import {children} s; the stage "
            f"said: `{said}`"
        )
        if s["status"] == "ok":
            seen = s["child"]["seen"]
            note += high_water_text(seen.get("high_water"))
            note += (
                f"; frames given to NannyML: reference {seen.get('reference_rows', 0):,} rows, "
                f"analysis {seen.get('analysis_rows', 0):,} rows, {seen.get('chunks', '?')} "
                f"analysis chunks; rows the stage scored with the champion: "
                f"{seen.get('scored_rows', 0):,}"
            )
        notes.append(note)
    return notes


def high_water_text(high: Result | None) -> str:
    if not high:
        return ""
    rises = sorted(high["rises"].items(), key=lambda item: -item[1])[:4]
    return (
        f"; NannyML child's RSS high-water mark {mib(high['before_main'])} MiB before main, "
        f"{mib(high['peak'])} MiB at the end, reached during {high['in']} (largest rises "
        f"per call: {', '.join(f'{n} +{mib(r)}' for n, r in rises)} MiB)"
    )


def code_digest() -> str:
    """A digest of what the stage runs: stages/ and driftloop/ (Python), conf/, params.yaml."""
    import hashlib

    code = [path for folder in ("stages", "driftloop") for path in (ROOT / folder).rglob("*.py")]
    files = sorted([*code, *(ROOT / "conf").rglob("*.yaml")])
    digest = hashlib.sha256()
    for path in [*files, ROOT / PARAMS]:
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:12]


def code_notes(context: Result) -> list[str]:
    start, end = context["digest_start"], context["digest_end"]
    if start == end:
        return [
            f"- stages/, driftloop/, conf/ and params.yaml were unchanged during the run ({start})."
        ]
    return [
        f"- **stages/, driftloop/, conf/ or params.yaml changed during the run** (digest "
        f"{start} at the start, {end} at the end; the code at the end: {context['code_end']}): "
        "runs after the change measured other code."
    ]


def warnings_notes(summaries: list[Result]) -> list[str]:
    found = sorted({w for s in summaries for r in s["stage_runs"] for w in r.get("warnings", [])})
    if not found:
        return []
    return [
        "- Lines the stage printed besides its summary (all sizes, deduplicated): "
        + "; ".join(f"`{w[:160]}`" for w in found[:6])
    ]


def dtype_note(summaries: list[Result]) -> list[str]:
    done = [s for s in summaries if s["status"] == "ok"]
    if not done:
        return []
    dtypes = done[-1]["child"]["seen"].get("analysis_dtypes", {})
    return [
        "- Analysis frame handed to NannyML (dtypes): "
        + ", ".join(f"{c} {t}" for c, t in dtypes.items())
        + "."
    ]


def setup_notes(cfg: DriftloopConfig, context: Result) -> list[str]:
    mon = cfg.monitor
    return [
        f"- Champion: version {context['version']} ({cfg.model.name}, "
        f"{cfg.model.estimator.get('_target_')}), digest {context['digest']}; reference: "
        f"{HOLDOUT} (the featurize stage's holdout); params.yaml monitor: chunk_period "
        f"{mon.chunk_period}, domain_classifier_rows "
        f"{getattr(mon, 'domain_classifier_rows', 'n/a')}, primary metric "
        f"{mon.primary_metric}, continuous methods "
        f"{', '.join(mon.continuous_methods)}, categorical methods "
        f"{', '.join(mon.categorical_methods)}.",
        f"- Batches: NannyML {SOURCE[0]} {SOURCE[1]} rows and targets resampled with "
        f"default_rng({SEED}) with replacement (draws sorted, so the data set's drift "
        f"stays where it was; values unchanged), ids from {FIRST_ID:,}, timestamps evenly from "
        f"{FIRST_TIME[:10]} to {END_TIME[:10]} (ten calendar months), one batch folder "
        f"'{BATCH}' per size with data.parquet (schema columns conformed by driftloop.core.data, "
        f"y_pred, y_pred_proba of the champion, {VERSION_COLUMN} = its version) and "
        "labels.parquet (id, repaid, every row), zstd; in the page cache.",
        "- stage wall s: the `driftloop` console script from process spawn to exit (the "
        "wrapper's timer), as `dvc repro` runs the command minus DVC itself and the shell; "
        "median of --repeat runs. stage peak MiB: the larger of the stage process's "
        "ru_maxrss (RUSAGE_CHILDREN in a wrapper that imports only the standard library) and "
        "the psutil-polled summed RSS of the tree (every 0.1 s), the largest over the runs.",
        "- NannyML compute s: the sum of the calculators' fit + calculate seconds, each timed "
        "around the callable driftloop.adapters.nml._calculators builds, while the stage's own "
        "main() runs in a fresh child process (the same frames, chunking, methods and "
        "metrics); nannyml import s: driftloop.adapters.nml.nannyml() timed in that child after "
        "the imports the stage's CLI makes anyway (pandas, scikit-learn, scipy, every stage "
        "module). Both are medians over the children. NannyML child peak MiB: its VmHWM (it "
        "runs the whole stage in-process, so it is close to the stage's).",
        "- stage / (NannyML + import): median stage wall over (median compute + median "
        "import). Other load: cores the machine spent outside the measured process tree "
        "during the run (other tenants), the largest of the size's runs.",
    ]


def report(summaries: list[Result], profile: Result | None, context: Result) -> str:
    lines = ["# monitor benchmark: the stage vs NannyML's own time", ""]
    lines += markdown([headline_row(s) for s in summaries], HEADER)
    lines += ["", *verdict(summaries)]
    lines += ["", "## NannyML calculators, fit + calculate s (median)", ""]
    lines += calculator_table(summaries)
    lines += ["", "## Where the stage's time goes (median NannyML child run, in-process)", ""]
    lines += breakdown_table(summaries)
    lines += profile_table(profile, context["top"])
    lines += ["", "## Notes", ""]
    lines += [
        context["session"].about(context["generation"], "batch generation"),
        context["session"].machine("Shared and noisy: compare ratios, not absolute times."),
        f"- Versions: {versions(VERSIONS)}.",
        *code_notes(context),
        *setup_notes(context["config"], context),
        *run_notes(summaries),
        *dtype_note(summaries),
        *warnings_notes(summaries),
    ]
    return "\n".join(lines) + "\n"


# --- entry point ----------------------------------------------------------------------------


def measure_size(rows: int, incoming: Path, args: argparse.Namespace) -> Result:
    stage_runs, child_runs = [], []
    for index in range(args.repeat):
        stage_runs.append(stage_run(rows, incoming, index, args.timeout))
        child_runs.append(nannyml_run(rows, incoming, index, args.timeout))
        last_stage, last_child = stage_runs[-1], child_runs[-1]
        stage_text = f"{last_stage['wall']:.2f} s" if last_stage["status"] == "ok" else "failed"
        child_text = (
            f"{sum(calculator_seconds(last_child).values()):.2f} s compute"
            if last_child["status"] == "ok"
            else last_child["status"]
        )
        print(f"{rows:,} rows, run {index + 1}: stage {stage_text} ({last_stage['status']}), "
              f"NannyML child {child_text}", flush=True)  # fmt: skip
    return summarize(rows, stage_runs, child_runs)


def run_all(args: argparse.Namespace) -> None:
    from driftloop.core.champion import load_champion

    session, digest_start = Session("benchmarks.monitor"), code_digest()
    cfg = config()
    if not (ROOT / CHAMPION / "model.pkl").is_file() or not (ROOT / HOLDOUT).is_dir():
        raise SystemExit(f"no champion at {CHAMPION} or no {HOLDOUT}: run `make run` first")
    champion = load_champion(ROOT / CHAMPION)
    generation = 0.0
    folders: dict[int, Path] = {}
    for rows in args.sizes:
        folders[rows], spent = ensure_batch(rows, cfg, champion)
        generation += spent
    summaries = [measure_size(rows, folders[rows], args) for rows in args.sizes]
    profile = None
    if args.profile:
        profile = profile_run(max(args.sizes), folders[max(args.sizes)], args.timeout)
    context = {
        "session": session,
        "generation": generation,
        "config": cfg,
        "version": champion.version,
        "digest": champion.digest,
        "top": args.profile_top,
        "digest_start": digest_start,
        "digest_end": code_digest(),
        "code_end": code_version(),
    }
    write_results("monitor.md", report(summaries, profile, context))
    if not args.keep_data:
        shutil.rmtree(DATA / "out", ignore_errors=True)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = arguments("benchmarks.monitor", __doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 500_000, 2_000_000])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (median)")
    parser.add_argument("--no-profile", dest="profile", action="store_false",
                        help="skip the cProfile run at the largest size")  # fmt: skip
    parser.add_argument("--profile-top", type=int, default=30, help="profile rows shown")
    parser.add_argument("--keep-data", action="store_true", help="keep the runs' outputs")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per child run")
    # internal: the NannyML child
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    child_arguments(parser, "incoming", "output", "result")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.child:
        child_main(lambda: nannyml_child(args), args.result)
    else:
        run_all(args)


if __name__ == "__main__":
    main()
