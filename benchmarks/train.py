"""Benchmark of the train stage: fit, evaluate and MLflow logging per shipped model.

    python -m benchmarks.train [--rows 50000 1000000] [--models hgb logreg rf] [--keep-data]

Data: NannyML's synthetic car loan reference resampled with seeded jitter
(benchmarks/inputs.py, the featurize benchmark's input files), featurized
in-process with driftloop.core.plan.featurize_pandas and the plan of
params.yaml, split with driftloop.core.plan.holdout_mask; the train split is cut
to exactly ``--rows`` rows (the holdout keeps the ids up to the last of them).

Per model config (conf/model/<name>.yaml, composed with ``model=<name>`` into a
temporary project root that holds a copy of conf/) and row count, the stage's
own functions are timed one after another in this process:

* fit: driftloop.core.model.build_estimator + build_pipeline, then ``fit``;
* persist: model.pkl (driftloop.core.model.model_bytes) and card.json written as
  the train stage writes them;
* MLflow log: stages.train.log_training against a SQLite store in the
  temporary root (params, metrics, the model with signature and input example);
* evaluate: driftloop.core.evaluation.evaluate_model + build_report on the
  holdout, no champion.

One-off costs are measured before the runs and kept out of them: importing
MLflow, the first logging run on a fresh store (DB migrations), the same
logging from a fresh process on the existing store (what each DVC stage run
pays), and Great Expectations' first validation. Results:
benchmarks/results/train.md.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import math
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
from sklearn.pipeline import Pipeline

from benchmarks.harness import (
    DATA,
    ROOT,
    Session,
    arguments,
    busy_seconds,
    child_arguments,
    lower_median,
    markdown,
    mib,
    phase,
    reset_vm_hwm,
    seconds,
    spread,
    versions,
    vm_hwm,
    write_results,
)
from benchmarks.inputs import ensure_input
from driftloop.adapters import parquet
from driftloop.config.compose import compose, conf_digest, load
from driftloop.config.schema import DriftloopConfig
from driftloop.core import evaluation, lineage
from driftloop.core import model as model_core
from driftloop.core.outputs import atomic_dir, write_json
from driftloop.core.plan import featurize_pandas, holdout_mask, plan
from stages import train as train_stage

MODELS = ("hgb", "logreg", "rf")
WARMUP_TRAIN_ROWS = 2_000
WARMUP_HOLDOUT_ROWS = 500
VERSIONS = ("scikit-learn", "mlflow", "numpy", "pandas", "great-expectations", "hydra-core")
# (module, attribute, label): functions timed while the stage code runs
Probe = tuple[str, str, str]
Timed = tuple[float, dict[str, float]]  # wall seconds and where they went
STAGE_LOG_PROBES: tuple[Probe, ...] = (
    ("driftloop.adapters.tracking", "configure", "configure"),
    ("driftloop.adapters.tracking", "log_params", "params"),
    ("driftloop.adapters.tracking", "log_metrics", "metrics"),
    ("driftloop.adapters.tracking", "log_sklearn_model", "log_model"),
    ("stages.train", "model_bytes", "md5_pickle"),
)
LOG_PROBES: tuple[Probe, ...] = (
    *STAGE_LOG_PROBES,
    ("mlflow.models", "infer_pip_requirements", "requirements"),
    ("mlflow.models.utils", "_validate_serving_input", "input_check"),
)
EVAL_PROBES: tuple[Probe, ...] = (
    ("driftloop.core.evaluation", "evaluate_model", "scoring"),
    ("driftloop.adapters.gx", "validate", "gate"),
    ("driftloop.core.evaluation", "slice_metrics", "slices"),
    ("driftloop.core.evaluation", "behaviour", "behaviour"),
)


# --- timing helpers -------------------------------------------------------------------


def timing(func: Callable[..., Any], label: str, spans: dict[str, float]) -> Callable[..., Any]:
    """``func`` that adds its wall seconds to ``spans[label]``."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            spans[label] = spans.get(label, 0.0) + time.perf_counter() - start

    return wrapper


@contextmanager
def instrumented(probes: tuple[Probe, ...], spans: dict[str, float]) -> Iterator[None]:
    """Time the probed functions (module attributes, looked up at call time)."""
    saved: list[tuple[Any, str, Any]] = []
    for module_name, attribute, label in probes:
        module = importlib.import_module(module_name)
        original = getattr(module, attribute)
        saved.append((module, attribute, original))
        setattr(module, attribute, timing(original, label, spans))
    try:
        yield
    finally:
        for module, attribute, original in reversed(saved):
            setattr(module, attribute, original)


def median_timed(samples: list[Timed]) -> tuple[float, dict[str, float], list[float]]:
    """The sample with the median seconds (lower median), and every sample's seconds."""
    chosen = lower_median(samples, key=lambda sample: sample[0])
    return chosen[0], chosen[1], [sample[0] for sample in samples]


def own_cpu() -> float:
    """CPU seconds of this process and its waited-for children."""
    t = psutil.Process().cpu_times()
    return float(t.user + t.system + t.children_user + t.children_system)


# --- data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame
    source: Path
    generated: float  # seconds spent generating the input file (0 when cached)


def source_rows(train_rows: int, holdout_fraction: float) -> int:
    """Rows to resample so the random split leaves at least ``train_rows`` (1 % margin)."""
    return math.ceil(train_rows / (1.0 - holdout_fraction) * 1.01) + 100


def prepare(train_rows: int, base: DriftloopConfig) -> Split:
    """Resampled raw rows, featurized in-process, split; train cut to ``train_rows``."""
    total = source_rows(train_rows, base.features.split.holdout_fraction)
    source, spent = ensure_input(total, base)
    raw = parquet.read_table(source).to_pandas()
    frame = featurize_pandas(raw, plan(base.features, base.data))
    ids = frame[base.data.columns.id]
    held = holdout_mask(ids, base.features.split)
    train = frame[~held].iloc[:train_rows]
    if len(train) < train_rows:
        raise RuntimeError(f"resampled data has only {len(train)} train rows")
    last = train[base.data.columns.id].iloc[-1]
    holdout = frame[held & (ids <= last).to_numpy()]
    return Split(train.reset_index(drop=True), holdout.reset_index(drop=True), source, spent)


def small(split: Split) -> Split:
    train, holdout = split.train.head(WARMUP_TRAIN_ROWS), split.holdout.head(WARMUP_HOLDOUT_ROWS)
    return Split(train, holdout, split.source, 0.0)


# --- the temporary project: conf/ copy, composed params, MLflow store ------------------


@dataclass(frozen=True)
class Model:
    name: str
    config: DriftloopConfig
    params: Path


def make_root() -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="train-", dir=DATA))
    shutil.copytree(ROOT / "conf", root / "conf")
    return root


def compose_model(root: Path, name: str) -> Model:
    params = root / f"params-{name}.yaml"
    return Model(name, compose(root, params, [f"model={name}"]), params)


def fit(model: Model, train: pd.DataFrame) -> tuple[Pipeline, pd.DataFrame, float]:
    """The train stage's estimator and pipeline, fitted; with X and the fit seconds."""
    cfg = model.config
    cols = model_core.columns(cfg)
    x, y = model_core.split_xy(train, cols, "train")
    estimator = model_core.build_estimator(cfg.model, cfg.data.problem)
    pipeline = model_core.build_pipeline(estimator, cols, cfg.data, cfg.train.scale_numeric)
    start = time.perf_counter()
    pipeline.fit(x, y)
    return pipeline, x, time.perf_counter() - start


def persist(model: Model, pipeline: Pipeline, folder: Path, inputs: dict[str, str]) -> int:
    """model.pkl and card.json as the train stage writes them; the pickle's size."""
    cols = model_core.columns(model.config)
    with atomic_dir(folder) as tmp:
        data = model_core.model_bytes(pipeline)
        (tmp / model_core.MODEL_FILE).write_bytes(data)
        card = model_core.card(model.config, cols, pipeline, {"inputs": inputs})
        write_json(tmp / model_core.CARD_FILE, card)
    return len(data)


def log(
    model: Model, pipeline: Pipeline, x: pd.DataFrame, fit_seconds: float, inputs: dict[str, str]
) -> Timed:
    """stages.train.log_training: wall seconds and where they went."""
    cols = model_core.columns(model.config)
    metrics = {"train_rows": len(x), "features": len(cols.features), "fit_seconds": fit_seconds}
    spans: dict[str, float] = {}
    with instrumented(LOG_PROBES, spans), phase(spans, "total"):
        train_stage.log_training(model.config, model.params, pipeline, x, metrics, inputs)
    return spans.pop("total"), spans


def evaluate(model: Model, pipeline: Pipeline, holdout: pd.DataFrame) -> dict[str, Any]:
    """evaluate_model + build_report on the holdout (no champion); the report."""
    cfg = model.config
    cols = model_core.columns(cfg)
    result = evaluation.evaluate_model(pipeline, holdout, cfg, cols)
    return evaluation.build_report(pipeline, holdout, cfg, cols, result, None)


def timed_evaluate(
    model: Model, pipeline: Pipeline, holdout: pd.DataFrame
) -> tuple[float, dict[str, float], dict[str, Any]]:
    spans: dict[str, float] = {}
    with instrumented(EVAL_PROBES, spans), phase(spans, "total"):
        report = evaluate(model, pipeline, holdout)
    return spans.pop("total"), spans, report


# --- one-off costs ----------------------------------------------------------------------


def cold_start(model: Model, split: Split, inputs: dict[str, str], repeat: int) -> dict[str, Any]:
    """First-call costs, on a small model: MLflow import, migrations, GX, fresh process.

    Warm and fresh-process logging: the median of ``repeat`` runs each.
    """
    tiny = small(split)
    pipeline, x, fit_seconds = fit(model, tiny.train)
    out: dict[str, Any] = {"model": model.name, "rows": len(x)}
    start = time.perf_counter()
    importlib.import_module("mlflow")
    out["import_mlflow"] = time.perf_counter() - start
    out["first_log"], out["first_spans"] = log(model, pipeline, x, fit_seconds, inputs)
    warm = [log(model, pipeline, x, fit_seconds, inputs) for _ in range(repeat)]
    out["warm_log"], out["warm_spans"], out["warm_walls"] = median_timed(warm)
    fresh = [fresh_process_log(model, pipeline, x) for _ in range(repeat)]
    out["fresh_log"], out["fresh_spans"], out["fresh_walls"] = median_timed(fresh)
    out["first_evaluate"] = timed_evaluate(model, pipeline, tiny.holdout)[0]
    out["warm_evaluate"] = timed_evaluate(model, pipeline, tiny.holdout)[0]
    return out


def fresh_process_log(model: Model, pipeline: Pipeline, x: pd.DataFrame) -> Timed:
    """log_training in a new interpreter on the existing store, as a DVC stage run does."""
    bundle = model.params.with_suffix(".bundle.pkl")
    result = model.params.with_suffix(".child.json")
    bundle.write_bytes(pickle.dumps((str(model.params), pipeline, x), protocol=5))
    command = [sys.executable, "-m", "benchmarks.train", "--child-log", str(bundle)]
    subprocess.run([*command, "--result", str(result)], cwd=ROOT, check=True)
    done = json.loads(result.read_text())
    spans = {str(key): float(value) for key, value in done["spans"].items()}
    return float(done["total"]), spans


def child_log(bundle: Path, result: Path) -> None:
    """Child: unpickle the model (untimed), then time log_training from a cold interpreter."""
    params, pipeline, x = pickle.loads(bundle.read_bytes())
    config = load(Path(params))
    if "mlflow" in sys.modules:
        raise RuntimeError("mlflow was imported before the timer: not a cold process")
    spans: dict[str, float] = {}
    with instrumented(STAGE_LOG_PROBES, spans), phase(spans, "total"):
        metrics = {"train_rows": len(x), "fit_seconds": 0.0}
        train_stage.log_training(config, Path(params), pipeline, x, metrics, {})
    total = spans.pop("total")
    result.write_text(json.dumps({"total": total, "spans": spans}))


# --- one run ----------------------------------------------------------------------------


@dataclass
class Run:
    model: str
    rows: int
    holdout_rows: int
    fit: float = 0.0
    persist: float = 0.0
    log: float = 0.0
    evaluate: float = 0.0
    model_bytes: int = 0
    roc_auc: float | None = None
    gate: bool = False
    peak_rss: int = 0
    load: float = 0.0
    other_cores: float = 0.0
    log_spans: dict[str, float] = field(default_factory=dict)
    log_walls: list[float] = field(default_factory=list)
    eval_spans: dict[str, float] = field(default_factory=dict)

    @property
    def train_stage(self) -> float:
        return self.fit + self.persist + self.log

    @property
    def total(self) -> float:
        return self.train_stage + self.evaluate

    def share(self, extra: float = 0.0) -> float:
        """MLflow logging over the train stage (fit + pickling/writing + logging)."""
        return (self.log + extra) / (self.train_stage + extra)


def run_one(model: Model, split: Split, root: Path, inputs: dict[str, str], repeat: int) -> Run:
    """Fit, persist, log (median of ``repeat`` logging runs), evaluate; one model, one size."""
    reset_vm_hwm()
    busy, cpu, start = busy_seconds(), own_cpu(), time.perf_counter()
    run = Run(model.name, len(split.train), len(split.holdout))
    pipeline, x, run.fit = fit(model, split.train)
    folder = root / "models" / f"{model.name}-{run.rows}"
    started = time.perf_counter()
    run.model_bytes = persist(model, pipeline, folder, inputs)
    run.persist = time.perf_counter() - started
    logs = [log(model, pipeline, x, run.fit, inputs) for _ in range(repeat)]
    run.log, run.log_spans, run.log_walls = median_timed(logs)
    run.evaluate, run.eval_spans, report = timed_evaluate(model, pipeline, split.holdout)
    run.roc_auc = report["candidate"].get("roc_auc")
    run.gate = bool(report["predictions_gate"]["success"])
    run.peak_rss = vm_hwm()
    wall = time.perf_counter() - start
    run.other_cores = max(0.0, busy_seconds() - busy - (own_cpu() - cpu)) / wall
    run.load = os.getloadavg()[0]
    shutil.rmtree(folder, ignore_errors=True)
    return run


# --- report -------------------------------------------------------------------------------

HEADER = [
    "train rows", "model", "holdout rows", "fit s", "persist s", "MLflow log s", "evaluate s",
    "total s", "MLflow share", "share with process start", "model.pkl", "peak RSS",
    "ROC AUC", "load avg / other cores",
]  # fmt: skip
SPLIT_HEADER = [
    "train rows", "model", "configure", "params + metrics", "log_model", "- requirements",
    "- input example check", "md5 re-pickle", "log other", "scoring", "GX gate", "slices",
    "behaviour", "evaluate other",
]  # fmt: skip


def percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def process_start(cold: dict[str, Any]) -> float:
    """Extra seconds a fresh process pays for the same logging (imports, engine)."""
    return max(0.0, float(cold["fresh_log"]) - float(cold["warm_log"]))


def table_row(run: Run, cold: dict[str, Any]) -> list[str]:
    return [
        f"{run.rows:,}", run.model, f"{run.holdout_rows:,}", seconds(run.fit),
        seconds(run.persist), seconds(run.log), seconds(run.evaluate), seconds(run.total),
        percent(run.share()), percent(run.share(process_start(cold))), mib(run.model_bytes, 1),
        mib(run.peak_rss, 1), "-" if run.roc_auc is None else f"{run.roc_auc:.4f}",
        f"{run.load:.2f} / {run.other_cores:.2f}",
    ]  # fmt: skip


def split_row(run: Run) -> list[str]:
    ls, es = run.log_spans, run.eval_spans
    log_named = sum(ls.get(k, 0.0) for k in ("configure", "params", "metrics", "log_model"))
    eval_named = sum(es.values())
    return [
        f"{run.rows:,}", run.model, seconds(ls.get("configure", 0.0)),
        seconds(ls.get("params", 0.0) + ls.get("metrics", 0.0)), seconds(ls.get("log_model", 0.0)),
        seconds(ls.get("requirements", 0.0)), seconds(ls.get("input_check", 0.0)),
        seconds(ls.get("md5_pickle", 0.0)),
        seconds(run.log - log_named - ls.get("md5_pickle", 0.0)), seconds(es.get("scoring", 0.0)),
        seconds(es.get("gate", 0.0)), seconds(es.get("slices", 0.0)),
        seconds(es.get("behaviour", 0.0)), seconds(run.evaluate - eval_named),
    ]  # fmt: skip


def cold_notes(cold: dict[str, Any]) -> list[str]:
    """The three MLflow cases: new store, new process on the store, warm (the table)."""
    first, fresh = cold["first_spans"], cold["fresh_spans"]
    new_store = cold["import_mlflow"] + cold["first_log"]
    return [
        f"- MLflow cold start, kept out of the table (measured first, on the {cold['model']} "
        f"config fitted on {cold['rows']:,} rows; warm and fresh-process cases are medians of "
        f"--log-repeat runs): (1) first log_training ever, fresh store and fresh process: "
        f"{new_store:.2f} s (`import mlflow` {cold['import_mlflow']:.2f} s, tracking.configure "
        f"with DB migrations and experiment creation {first.get('configure', 0):.2f} s, first "
        f"log_model with MLflow's lazy imports {first.get('log_model', 0):.2f} s); (2) a fresh "
        "Python process on the existing store (`python -m benchmarks.train --child-log`, what "
        f"every later `dvc repro` of the train stage does): {cold['fresh_log']:.2f} s "
        f"({walls(cold, 'fresh')}; configure incl. `import mlflow` "
        f"{fresh.get('configure', 0):.2f} s, log_model {fresh.get('log_model', 0):.2f} s); "
        f"(3) warm, in a process that has logged before: {cold['warm_log']:.2f} s "
        f"({walls(cold, 'warm')}). So creating a store costs about "
        f"{new_store - cold['fresh_log']:.1f} s once, and each stage run pays about "
        f"{process_start(cold):.1f} s of MLflow start-up (mostly imports) on top of the warm "
        "numbers in the table; 'share with process start' adds (2) - (3) to the logging and to "
        "the stage time.",
        f"- Evaluate cold start: the first evaluate (Great Expectations import and first "
        f"context) {cold['first_evaluate']:.2f} s on {WARMUP_HOLDOUT_ROWS} holdout rows, warm "
        f"{cold['warm_evaluate']:.2f} s; kept out of the table.",
    ]


def walls(cold: dict[str, Any], kind: str) -> str:
    return f"runs {spread(cold[f'{kind}_walls'])} s"


def run_notes(runs: list[Run]) -> list[str]:
    """Every logging run's seconds, so the spread behind each median is visible."""
    return [
        f"- {run.rows:,} rows, {run.model}: MLflow log runs "
        f"{spread(run.log_walls)} s; predictions gate "
        f"{'passed' if run.gate else 'FAILED'}."
        for run in runs
    ]


def method_notes() -> list[str]:
    return [
        "- fit s: `pipeline.fit` of driftloop.core.model.build_pipeline around "
        "driftloop.core.model.build_estimator (the composed `model=<name>` config, "
        "${train.seed} resolved). persist s: driftloop.core.model.model_bytes + model.pkl + "
        "card.json in an atomic folder, as the train stage writes them. MLflow log s: "
        "stages.train.log_training (configure, start run, params of the composed params file, "
        "metrics, log_sklearn_model with signature and 5-row input example, md5 of a second "
        "pickle), the median of --log-repeat runs logging the same fitted model (each a new "
        "MLflow run, every one listed below; its breakdown is that of the median run). "
        "evaluate s: driftloop.core.evaluation.evaluate_model + build_report on the holdout "
        "(champion None): scoring, GX predictions gate, slices, behavioural checks.",
        "- total s = fit + persist + MLflow log + evaluate. MLflow share = log / (fit + persist "
        "+ log) (target: under 10 %). Excluded everywhere: reading the features parquet, "
        "composing/validating params, the evaluate stage's unpickling of model.pkl and its "
        "plot CSVs, interpreter start and imports.",
        "- Second table: where log and evaluate time goes, timed by wrapping the functions "
        "the stage code calls (driftloop.adapters.tracking.*, model_bytes as stages.train "
        "calls it, mlflow.models.infer_pip_requirements (a subprocess that imports the model "
        "to list its packages), mlflow.models.utils._validate_serving_input (reloads the saved "
        "model and predicts the input example), driftloop.adapters.gx.validate, "
        "driftloop.core.evaluation.slice_metrics/behaviour). '- requirements' and '- input "
        "example check' are parts of log_model.",
        "- peak RSS: this process's VmHWM, reset before each run (/proc/self/clear_refs). "
        "load avg: 1-min load average at the end of the run; other cores: CPU the machine "
        "spent outside this process during the run, in cores (of "
        f"{os.cpu_count()}). HistGradientBoosting fits and predicts with OpenMP threads on "
        "every core, so it slows down most when another tenant holds a core: read its rows "
        "with the load column; the MLflow share moves with the fit time.",
    ]


def report(runs: list[Run], cold: dict[str, Any], context: dict[str, Any]) -> str:
    lines = ["# train benchmark: fit, evaluate and MLflow logging per model", ""]
    lines += markdown([table_row(run, cold) for run in runs], HEADER)
    lines += ["", "## Where the logging and evaluate seconds go", ""]
    lines += markdown([split_row(run) for run in runs], SPLIT_HEADER)
    lines += ["", "## Notes", ""]
    lines += [
        context["session"].about(context["generation"]),
        context["session"].machine("Shared and noisy: other tenants' load is listed per run."),
        f"- Versions: {versions(VERSIONS)}.",
        f"- Data: {context['data']}",
        *method_notes(),
        *cold_notes(cold),
        *run_notes(runs),
    ]
    return "\n".join(lines) + "\n"


def data_note(base: DriftloopConfig) -> str:
    split = base.features.split
    stale = base.conf_digest != conf_digest(ROOT / "conf")
    warning = " Note: params.yaml is stale against conf/ (its conf_digest differs)."
    return (
        "NannyML synthetic_car_loan reference resampled by benchmarks.inputs.ensure_input "
        "(seeded jitter, fresh ids), read back with pyarrow, "
        "driftloop.core.plan.featurize_pandas with the plan of params.yaml "
        f"({', '.join(plan(base.features, base.data).names)}), "
        f"driftloop.core.plan.holdout_mask (fraction {split.holdout_fraction}, seed {split.seed}); "
        "the train split cut to the row count, the holdout keeps the ids up to the last train "
        "id. Models composed from conf/ (`model=<name>`) in a temporary root under "
        "benchmarks/data with a copy of conf/ and its own mlflow.db / mlruns/, deleted at the "
        "end." + (warning if stale else "")
    )


# --- entry point --------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = arguments("benchmarks.train", __doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[50_000, 1_000_000])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument(
        "--log-repeat", type=int, default=3, help="MLflow logging runs per model (median)"
    )
    parser.add_argument("--keep-data", action="store_true", help="keep generated input files")
    child_arguments(parser, "child-log", "result")
    return parser.parse_args(argv)


def run_all(args: argparse.Namespace) -> None:
    session = Session("benchmarks.train")
    base = load(ROOT / "params.yaml")
    inputs = lineage.stage_outputs(ROOT / "dvc.lock", "featurize")
    root = make_root()
    runs: list[Run] = []
    cold: dict[str, Any] = {}
    generated: list[Path] = []
    generation = 0.0
    try:
        models = [compose_model(root, name) for name in args.models]
        for rows in args.rows:
            split = prepare(rows, base)
            if split.generated:
                generated.append(split.source)
                generation += split.generated
            cold = cold or cold_start(models[0], split, inputs, args.log_repeat)
            for model in models:
                runs.append(run_one(model, split, root, inputs, args.log_repeat))
                print(" | ".join(table_row(runs[-1], cold)), flush=True)
            del split
    finally:
        shutil.rmtree(root, ignore_errors=True)
        for path in [] if args.keep_data else generated:
            path.unlink(missing_ok=True)
    context = {"session": session, "generation": generation, "data": data_note(base)}
    write_results("train.md", report(runs, cold, context))


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.child_log:
        child_log(args.child_log, args.result)
    else:
        run_all(args)


if __name__ == "__main__":
    main()
