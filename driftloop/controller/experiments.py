"""The experiment action: a sweep back in experimentation, reviewed by a person.

The grid of conf/monitor (`monitor.experiment.sweep`) is queued as DVC
experiments (`dvc exp run <until> --queue -n NAME -S override ...`), one per
combination, named after the batch so a second pass queues nothing twice.
The data stages run first in the workspace (`dvc repro featurize`), so every
experiment trains on the same validated data and skips them. The queue runs
(`dvc queue start -j jobs`, the cores shared out between the workers) up to
`until` (evaluate): the experiments are trained and tested, never promoted.
Each experiment's model is read back from the DVC cache through its commit's
dvc.lock and scored on the newest labelled batch next to the champion; the
ranking goes to a markdown review that recommends one and says how to adopt
it. Each training is an MLflow run tagged with its experiment's name.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from driftloop.config.schema import DriftloopConfig, SweepAxis
from driftloop.controller import workspace
from driftloop.core import runner
from driftloop.core.champion import load_champion, models_folder
from driftloop.core.data import batch_labels
from driftloop.core.drift import DriftRecord
from driftloop.core.metrics import LOWER_IS_BETTER, compute_metrics
from driftloop.core.monitoring import batch_rows
from driftloop.core.outputs import atomic_file
from driftloop.core.plan import plan
from driftloop.core.predictor import Predictor, frame_columns, input_columns
from driftloop.errors import DriftloopError

DONE = {"Success", "Failed"}


@dataclass
class Trial:
    name: str
    overrides: list[str]
    status: str = "Queued"
    rev: str | None = None
    holdout: dict[str, float] = field(default_factory=dict)
    newest: float | None = None


# --- core ---------------------------------------------------------------------------


def grid(sweep: list[SweepAxis]) -> list[list[str]]:
    """Every combination of the axes' values as Hydra overrides (a grid sweep)."""
    axes = [[f"{axis.override}={_text(v)}" for v in axis.values] for axis in sweep]
    return [list(combo) for combo in itertools.product(*axes)] if axes else []


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def trial_names(batch: str, count: int) -> list[str]:
    short = batch.replace("log-", "")[:24].rstrip("-")
    return [f"drift-{short}-{i + 1}" for i in range(count)]


def ranked(trials: list[Trial], metric: str) -> list[Trial]:
    """Best first on the newest labelled data (the holdout when there is none)."""
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0

    def key(trial: Trial) -> float:
        value = trial.newest if trial.newest is not None else trial.holdout.get(metric)
        return float("inf") if value is None else sign * value

    return sorted((t for t in trials if t.status == "Success"), key=key)


def queue_status(text: str) -> dict[str, str]:
    """`dvc queue status` as name -> status."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[0] != "Task" and parts[-1] in {*DONE, "Queued", "Running"}:
            out[parts[1]] = parts[-1]
    return out


# --- DVC ----------------------------------------------------------------------------


def run_sweep(
    paths: workspace.Paths, drift: DriftRecord, config: DriftloopConfig
) -> dict[str, Any]:
    root, setup = paths.root, config.monitor.experiment
    combos = grid(setup.sweep)
    if not combos:
        raise DriftloopError("monitor.experiment.sweep: empty; nothing to queue")
    trials = [
        Trial(name, overrides)
        for name, overrides in zip(trial_names(str(drift.batch), len(combos)), combos, strict=True)
    ]
    # the data stages run once here, with the new labelled batches through the
    # data gate; the experiments find them up to date and train on the same data
    code, output = workspace.repro(root, "featurize")
    blocked = workspace.gate_blocked(paths, output, "experiment") if code else None
    if blocked is not None:
        return blocked
    if code != 0:
        raise DriftloopError(f"experiment: `dvc repro featurize` failed ({code})\n{output[-2000:]}")
    known = queue_status(workspace.run(["dvc", "queue", "status"], root).stdout)
    for trial in trials:
        if trial.name not in known:
            # a data set lent the project for this pass is composed in each experiment too
            overrides = [*paths.composition, *trial.overrides]
            sets = [arg for o in overrides for arg in ("-S", o)]
            workspace.run(
                ["dvc", "exp", "run", setup.until, "--queue", "-n", trial.name, *sets], root
            )
    workspace.run(
        ["dvc", "queue", "start", "-j", str(setup.jobs)], root, env=worker_env(setup.jobs)
    )
    wait(root, trials)
    collect(root, trials)
    newest = newest_labelled(root / "data/incoming" / config.data.name, config)
    if newest is not None:
        score_newest(root, trials, newest[1])
    review = paths.reports / f"review-{drift.batch}.md"
    best = write_review(review, trials, drift, config, root, newest)
    return {
        "done": "experiments",
        "queued": len(trials),
        "succeeded": sum(t.status == "Success" for t in trials),
        "recommended": best,
        "review": str(review.relative_to(root)),
    }


def worker_env(jobs: int) -> dict[str, str]:
    """The queue workers' environment: the cores shared out between them, so
    parallel trainings do not run more OpenMP threads than there are cores."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    return {**os.environ, "OMP_NUM_THREADS": str(threads)}


def wait(root: Path, trials: list[Trial], poll: float = 2.0) -> None:
    while True:
        status = queue_status(workspace.run(["dvc", "queue", "status"], root).stdout)
        for trial in trials:
            trial.status = status.get(trial.name, trial.status)
        if all(t.status in DONE for t in trials):
            return
        time.sleep(poll)


def collect(root: Path, trials: list[Trial]) -> None:
    """Each finished experiment's commit and its evaluate metrics."""
    refs = workspace.run(
        ["git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps"], root
    )
    commits = {
        ref.rsplit("/", 1)[-1]: sha
        for ref, sha in (line.split() for line in refs.stdout.splitlines() if line.strip())
    }
    for trial in trials:
        trial.rev = commits.get(trial.name)
        if trial.status != "Success" or trial.rev is None:
            trial.status = "Failed" if trial.rev is None else trial.status
            continue
        report = json.loads(git_show(root, trial.rev, "metrics/eval.json"))
        trial.holdout = report.get("candidate", {})


def git_show(root: Path, rev: str, path: str) -> str:
    return workspace.run(["git", "show", f"{rev}:{path}"], root).stdout


def cached_model(root: Path, rev: str) -> Any:
    """The candidate model an experiment trained, from the DVC cache."""
    lock = yaml.safe_load(git_show(root, rev, "dvc.lock"))
    outs = lock["stages"]["train"]["outs"]
    folder = next(o for o in outs if o["path"].endswith("/candidate"))
    cache = root / ".dvc/cache/files/md5"
    manifest = json.loads(_cache_file(cache, folder["md5"]).read_text())
    entry = next(e for e in manifest if e["relpath"] == "model.pkl")
    return pickle.loads(_cache_file(cache, entry["md5"]).read_bytes())


def _cache_file(cache: Path, md5: str) -> Path:
    path = cache / md5[:2] / md5[2:]
    if not path.is_file():
        raise DriftloopError(f"{path}: not in the DVC cache (dvc pull first)")
    return path


def trial_config(root: Path, rev: str) -> DriftloopConfig:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "params.yaml"
        path.write_text(git_show(root, rev, "params.yaml"))
        return runner.load_params(path)


# --- ranking ------------------------------------------------------------------------


def newest_labelled(incoming: Path, config: DriftloopConfig) -> tuple[str, pd.DataFrame] | None:
    """The newest batch whose labels arrived, labelled rows only."""
    batches = sorted((p for p in incoming.iterdir() if p.is_dir()), reverse=True)
    for batch in batches if incoming.is_dir() else []:
        if batch_labels(batch, config.data) is not None:
            rows = batch_rows(batch, config.data, [])
            return batch.name, rows[rows[config.data.columns.target].notna()]
    return None


def metric_on(model: Any, config: DriftloopConfig, rows: pd.DataFrame) -> float:
    data = config.data
    predictor = Predictor(model, plan(config.features, data), data.problem)
    names = input_columns(data, predictor.plan)
    scores = predictor.predict(frame_columns(rows, names, data.schema))
    out = scores.label if scores.proba is None else scores.proba
    y = rows[data.columns.target]
    metrics = compute_metrics(data.problem, y, np.asarray(out, dtype="float64"), predictor.classes)
    return metrics[config.monitor.primary_metric]


def score_newest(root: Path, trials: list[Trial], rows: pd.DataFrame) -> None:
    for trial in trials:
        if trial.status == "Success" and trial.rev is not None:
            trial_cfg = trial_config(root, trial.rev)
            trial.newest = metric_on(cached_model(root, trial.rev), trial_cfg, rows)


def write_review(
    path: Path,
    trials: list[Trial],
    drift: DriftRecord,
    config: DriftloopConfig,
    root: Path,
    found: tuple[str, pd.DataFrame] | None,
) -> str | None:
    metric = config.monitor.primary_metric
    champion = load_champion(models_folder(root, config.data.name) / "champion")
    base = metric_on(champion.model, config, found[1]) if found else None
    order = ranked(trials, metric)
    best = order[0] if order else None
    lines = review_lines(trials, order, drift, metric, found, base, champion.version)
    with atomic_file(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return best.name if best else None


def review_lines(
    trials: list[Trial],
    order: list[Trial],
    drift: DriftRecord,
    metric: str,
    found: tuple[str, pd.DataFrame] | None,
    base: float | None,
    version: str,
) -> list[str]:
    primary = drift.primary
    assert primary is not None
    where = f"batch {found[0]} ({len(found[1])} labelled rows)" if found else "the holdout"
    lines = [
        f"# Experiment review: batch {drift.batch}",
        "",
        f"The monitor measured a {drift.deviation_percent:.2f} % drop of {metric} "
        f"({primary.basis} {primary.current} against {primary.reference} in the "
        "reference period): the policy sends the model back to experimentation.",
        f"{len(trials)} experiments ran; ranked by {metric} on {where}. "
        f"The champion (version {version}) is unchanged: nothing here is promoted.",
        "",
        f"| rank | experiment | overrides | {metric} on newest labelled | vs champion "
        f"| holdout {metric} |",
        "|---|---|---|---|---|---|",
    ]
    for rank, trial in enumerate(order, start=1):
        change = _change(trial.newest, base)
        lines.append(
            f"| {rank} | {trial.name} | {', '.join(f'`{o}`' for o in trial.overrides)} "
            f"| {_fmt(trial.newest)} | {change} | {_fmt(trial.holdout.get(metric))} |"
        )
    lines.append(f"| - | champion v{version} | - | {_fmt(base)} | - | - |")
    failed = [t.name for t in trials if t.status != "Success"]
    if failed:
        lines += ["", f"Failed (see `dvc queue logs NAME`): {', '.join(failed)}"]
    lines += ["", *recommendation(order[0] if order else None, base, metric)]
    return lines


def recommendation(best: Trial | None, base: float | None, metric: str) -> list[str]:
    if best is None:
        return ["No experiment finished: nothing to recommend."]
    verdict = f"Recommended: **{best.name}** ({', '.join(best.overrides)})"
    if best.newest is not None and base is not None:
        better = best.newest < base if metric in LOWER_IS_BETTER else best.newest > base
        if not better:
            verdict += (
                ". It does not beat the champion on the newest labelled data: the drop "
                "may not be fixable by these settings; look at the data first"
            )
    return [
        verdict + ".",
        "",
        "To adopt it: `dvc exp apply " + best.name + "`, review `git diff`, then `dvc repro` "
        "(the model gate decides the promotion) and open a pull request with the result.",
    ]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _change(value: float | None, base: float | None) -> str:
    if value is None or base is None:
        return "-"
    return f"{value - base:+.4f}"
