"""simulate: the closed loop end to end on the default data's analysis period.

`driftloop simulate SCENARIO` starts the service (`driftloop serve`, a real
uvicorn process), then replays the analysis period of the data set month by
month: each month's records go through POST /predict, the labels of the
month `label_delay` months back arrive (a labels.parquet in that month's
batch), and the controller makes one pass (driftloop.controller.loop). After the last
month the outstanding labels arrive, one pass each. Drift is injected into
the replayed months as conf/simulate/<scenario>.yaml says (shift or scale a
feature, change a category mix, flip a share of labels, add missing values,
give the affected rows a new label), seeded, so each scenario is repeatable.

Output: reports/simulation/<scenario>/timeline.csv, timeline.md and
timeline.html (estimated vs realised performance, the decisions and the
model version that served each month).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from driftloop.adapters import nml
from driftloop.config.instantiate import load_typed
from driftloop.config.schema import ColumnType, DataConfig, DriftloopConfig, Problem, SourceKind
from driftloop.controller import datasets, loop, rollout, workspace
from driftloop.core import runner, trial
from driftloop.core.champion import CHALLENGER, PREVIOUS, role_version
from driftloop.core.data import conform, load_source
from driftloop.core.host import free_port
from driftloop.core.metrics import compute_metrics
from driftloop.core.outputs import atomic_file
from driftloop.core.predictor import Outputs
from driftloop.errors import ConfigError, DataError, DriftloopError

log = logging.getLogger("driftloop")
KINDS = ("shift", "scale", "category_mix", "flip_labels", "missing")


@dataclass
class Injection:
    kind: str  # shift | scale | category_mix | flip_labels | missing
    column: str | None = None
    # shift: added; scale: the factor
    value: float | None = None
    # share of the month's rows affected (drawn at random, seeded)
    share: float = 1.0
    # category_mix: the new proportions of the affected rows' categories
    mix: dict[str, float] = field(default_factory=dict)
    # the affected rows' label becomes this (a change of concept, learnable)
    label: Any = None
    # the first replayed month (1-based) it applies to, and the last (null: to the end)
    from_month: int = 1
    to_month: int | None = None


@dataclass
class Scenario:
    name: str = "none"
    description: str = ""
    # months of the analysis period replayed, from its start (null: all)
    months: int | None = None
    # share of each month's rows sent (small runs for tests)
    sample: float = 1.0
    label_delay: int = 1
    seed: int = 0
    records_per_request: int = 500
    # Hydra overrides composed for the replay (e.g. rollout=canary), put back after
    overrides: list[str] = field(default_factory=list)
    drift: list[Injection] = field(default_factory=list)


# --- scenario -----------------------------------------------------------------------


def load_scenario(path: Path, data: DataConfig) -> Scenario:
    if not path.is_file():
        raise ConfigError(f"{path}: scenario file not found")
    scenario = load_typed(Scenario, path)
    for index, injection in enumerate(scenario.drift):
        check_injection(injection, data, f"{path}: drift[{index}]")
    if not 0 < scenario.sample <= 1 or scenario.label_delay < 0:
        raise ConfigError(f"{path}: sample must be in (0, 1] and label_delay 0 or more")
    return scenario


def check_injection(injection: Injection, data: DataConfig, where: str) -> None:
    kind, column = injection.kind, injection.column
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind '{kind}' is not one of {', '.join(KINDS)}")
    if kind != "flip_labels" and column not in data.schema:
        raise ConfigError(f"{where}: column '{column}' is not in data.schema")
    numeric = (ColumnType.int, ColumnType.float)
    if kind in ("shift", "scale") and (
        injection.value is None or data.schema.get(column or "") not in numeric
    ):
        raise ConfigError(f"{where}: {kind} needs a numeric column and a value")
    if kind == "category_mix":
        unknown = set(injection.mix) - set(data.categories.get(column or "", []))
        if not injection.mix or unknown:
            raise ConfigError(
                f"{where}: mix needs allowed categories of '{column}' {sorted(unknown)}"
            )
    if kind == "missing" and column not in data.optional:
        raise ConfigError(f"{where}: the API refuses missing '{column}': add it to data.optional")
    if (
        kind == "flip_labels" or injection.label is not None
    ) and data.problem is Problem.regression:
        raise ConfigError(f"{where}: labels can be flipped or set for classification only")
    if not 0 < injection.share <= 1 or injection.from_month < 1:
        raise ConfigError(f"{where}: share must be in (0, 1] and from_month 1 or more")


# --- drift injection (pure) ---------------------------------------------------------


def inject(
    frame: pd.DataFrame, injections: list[Injection], month: int, seed: int, data: DataConfig
) -> pd.DataFrame:
    """The month's rows with every injection active in ``month`` applied."""
    out = frame.copy()
    for index, injection in enumerate(injections):
        if month < injection.from_month or (injection.to_month or month) < month:
            continue
        rng = np.random.default_rng([seed, month, index])
        hit = rng.random(len(out)) < injection.share
        out = apply(out, injection, hit, rng, data)
    return out


def apply(
    frame: pd.DataFrame,
    injection: Injection,
    hit: np.ndarray,
    rng: np.random.Generator,
    data: DataConfig,
) -> pd.DataFrame:
    target, column = data.columns.target, injection.column
    value = float(injection.value) if injection.value is not None else 0.0
    if injection.kind == "shift":
        frame.loc[hit, column] = frame.loc[hit, column] + value
    elif injection.kind == "scale":
        frame.loc[hit, column] = frame.loc[hit, column] * value
    elif injection.kind == "category_mix":
        names = list(injection.mix)
        weights = np.asarray([injection.mix[n] for n in names], dtype="float64")
        frame.loc[hit, column] = rng.choice(names, size=int(hit.sum()), p=weights / weights.sum())
    elif injection.kind == "missing":
        frame.loc[hit, column] = pd.NA
    elif injection.kind == "flip_labels":
        frame.loc[hit, target] = flipped(frame.loc[hit, target], data, rng)
    if injection.label is not None:
        frame.loc[hit, target] = injection.label
    return frame


def flipped(labels: pd.Series, data: DataConfig, rng: np.random.Generator) -> np.ndarray:
    """Binary: the other class; multiclass: another class at random."""
    values = labels.to_numpy()
    if data.problem is Problem.binary:
        return 1 - values.astype("int64")
    classes = np.asarray(sorted(pd.unique(labels.dropna())))
    shift = rng.integers(1, len(classes), size=len(values))
    return np.asarray(classes[(np.searchsorted(classes, values) + shift) % len(classes)])


# --- the replayed period --------------------------------------------------------------


def analysis_months(data: DataConfig, min_rows: int) -> list[tuple[str, pd.DataFrame]]:
    """The analysis part of the packaged data set, typed, by calendar month
    (months with fewer than ``min_rows`` rows, partial edges, are left out)."""
    if data.source.kind is not SourceKind.nannyml or data.source.dataset is None:
        raise ConfigError("simulate replays a nannyml data set's analysis period: data.source")
    analysis = replace(data, source=replace(data.source, part="analysis"))
    frame, name = load_source(analysis, Path(data.source.path or "."))
    typed = conform(frame, data, name)
    stamp = data.columns.timestamp
    if stamp is None:
        raise ConfigError("simulate needs data.columns.timestamp to replay months")
    months = typed[stamp].dt.to_period("M").astype(str)
    return [
        (m, rows.reset_index(drop=True))
        for m, rows in typed.groupby(months)
        if len(rows) >= min_rows
    ]


def records(frame: pd.DataFrame, data: DataConfig) -> list[dict[str, Any]]:
    """Request records: every raw column but the target, JSON types, null for missing."""
    columns = [c for c in data.schema if c != data.columns.target]
    stamp = data.columns.timestamp
    out: list[dict[str, Any]] = []
    for record in frame[columns].astype(object).to_dict("records"):
        row = {str(k): (None if pd.isna(v) else v) for k, v in record.items()}
        if stamp and row.get(stamp) is not None:
            row[stamp] = pd.Timestamp(str(row[stamp])).isoformat()
        out.append(row)
    return out


# --- service ----------------------------------------------------------------------------


class Service:
    """`driftloop serve` in the project, on a free loopback port."""

    def __init__(self, root: Path, output: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        output.parent.mkdir(parents=True, exist_ok=True)
        self._out = output.open("w")
        command = [sys.executable, "-m", "driftloop", "serve", "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, cwd=root, stdout=self._out, stderr=subprocess.STDOUT
        )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DriftloopError(
                    f"the service exited ({self.process.returncode}); see {self._out.name}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/ready", timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise DriftloopError(f"the service never became ready; see {self._out.name}")

    def predict(self, batch: list[dict[str, Any]]) -> list[str]:
        """POST the records; the model version that answered each."""
        request = urllib.request.Request(
            f"{self.url}/predict",
            data=json.dumps(batch).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise DataError(f"POST /predict: {exc.code} {exc.read()[:500]!r}") from exc
        # a prediction the canary answered names its own version
        default = str(body["model_version"])
        return [str(p.get("model_version", default)) for p in body["predictions"]]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()


def logged_rows(log_dir: Path) -> int:
    return sum(pq.ParquetFile(f).metadata.num_rows for f in log_dir.glob("part-*.parquet"))


def wait_logged(log_dir: Path, expected: int, timeout: float = 120) -> None:
    """Until the service's log holds every row sent (it flushes every few seconds)."""
    deadline = time.monotonic() + timeout
    while logged_rows(log_dir) < expected:
        if time.monotonic() > deadline:
            raise DriftloopError(f"{log_dir}: {logged_rows(log_dir)} of {expected} rows logged")
        time.sleep(0.25)


# --- the replay ---------------------------------------------------------------------------


@dataclass
class Month:
    month: str
    rows: int
    served_by: list[str]
    batch: str | None = None
    action: str | None = None
    deviation_percent: float | None = None
    estimated: float | None = None
    reference: float | None = None
    realised: float | None = None
    champion_after: str | None = None
    # the rollout: records the canary answered, the roles after the pass, its verdict
    by_challenger: int = 0
    challenger_after: str | None = None
    previous_after: str | None = None
    rollout: str | None = None


class Replay:
    def __init__(self, root: Path, config: DriftloopConfig, scenario: Scenario) -> None:
        self.root, self.config, self.scenario = root, config, scenario
        self.paths = workspace.Paths.of(root, config)
        self.months: list[Month] = []
        self.labels: list[pd.DataFrame] = []
        self.sent = logged_rows(self.paths.log_dir) if self.paths.log_dir.is_dir() else 0

    def month(self, index: int, name: str, rows: pd.DataFrame, service: Service) -> None:
        data, scenario = self.config.data, self.scenario
        keep = np.random.default_rng([scenario.seed, index, 99]).random(len(rows)) < scenario.sample
        drifted = inject(
            rows[keep].reset_index(drop=True), scenario.drift, index, scenario.seed, data
        )
        sent = records(drifted, data)
        size = scenario.records_per_request
        champion = loop.champion_version(self.paths)
        answered = [
            v for i in range(0, len(sent), size) for v in service.predict(sent[i : i + size])
        ]
        self.sent += len(sent)
        wait_logged(self.paths.log_dir, self.sent)
        month = Month(name, len(sent), sorted(set(answered)))
        month.by_challenger = sum(v != champion for v in answered)
        self.months.append(month)
        self.labels.append(drifted[[data.columns.id, data.columns.target]])
        due = index - 1 - scenario.label_delay
        if due >= 0:
            self.deliver(due)
        self.decide(self.months[-1])

    def deliver(self, index: int) -> None:
        """The labels of month ``index`` arrive in its batch."""
        month = self.months[index]
        if month.batch is None:
            raise DriftloopError(f"month {month.month}: no batch was snapshotted for it")
        folder = self.paths.incoming / month.batch
        with atomic_file(folder / "labels.parquet") as tmp:
            self.labels[index].to_parquet(tmp, index=False)
        month.realised = self.served_metric(folder)

    def served_metric(self, folder: Path) -> float:
        """The primary metric of what the service answered that month."""
        data = self.config.data
        rows = pd.read_parquet(folder / "data.parquet").merge(
            pd.read_parquet(folder / "labels.parquet"), on=data.columns.id
        )
        classes = sorted(pd.unique(rows[data.columns.target]).tolist())
        out = trial.score_matrix(rows, Outputs.of(data), classes)
        metrics = compute_metrics(data.problem, rows[data.columns.target], out, classes)
        return metrics[self.config.monitor.primary_metric]

    def decide(self, month: Month) -> None:
        """One controller pass; what it decided goes on the month's row."""
        judged = rollout.decisions(self.paths)
        seen = len(judged.read_text().splitlines()) if judged.is_file() else 0
        entry = loop.once(self.root, self.root / "params.yaml")
        month.champion_after = loop.champion_version(self.paths)
        month.challenger_after = role_version(self.paths.models, CHALLENGER)
        month.previous_after = role_version(self.paths.models, PREVIOUS)
        verdicts = judged.read_text().splitlines()[seen:] if judged.is_file() else []
        said = [json.loads(line) for line in verdicts]
        month.rollout = "; ".join(f"{e['verdict']} {e.get('judged') or ''}".strip() for e in said)
        month.rollout = month.rollout or None
        if entry is None:
            return
        month.batch = entry.get("snapshot") or month.batch
        month.action = entry["action"]
        month.deviation_percent = entry["deviation_percent"]
        for each in entry.get("evidence", []):
            month.reference = each["reference"]
            if each["basis"] == "estimated":
                month.estimated = each["current"]

    def finish(self) -> None:
        """The outstanding labels arrive after the last month, a pass each
        (a row of its own in the timeline)."""
        first = max(0, len(self.months) - self.scenario.label_delay)
        for index in range(first, len(self.months)):
            self.deliver(index)
            row = Month(f"{self.months[index].month} labels", 0, [], self.months[index].batch)
            self.decide(row)
            row.batch = self.months[index].batch
            self.months.append(row)


@contextmanager
def composed_with(root: Path, config: DriftloopConfig, overrides: list[str]) -> Iterator[None]:
    """The project composed with the scenario's overrides for the replay, and
    as it was after."""
    if not overrides:
        yield
        return
    before = datasets.overrides_of(root, config.data.name)
    keys = {o.split("=", 1)[0] for o in overrides}
    kept = [o for o in before if o.split("=", 1)[0] not in keys]
    log.info("simulate: composing with %s for the replay", " ".join(overrides))
    datasets.compose_project(root, root / "params.yaml", [*kept, *overrides])
    try:
        yield
    finally:
        datasets.compose_project(root, root / "params.yaml", before)


def simulate(root: Path, config: DriftloopConfig, scenario: Scenario) -> list[Month]:
    months = analysis_months(config.data, config.monitor.min_chunk_rows)
    months = months[: scenario.months] if scenario.months else months
    out = root / "reports/simulation" / scenario.name
    service = Service(root, out / "serve.log")
    replay = Replay(root, config, scenario)
    try:
        service.wait_ready()
        for index, (name, rows) in enumerate(months, start=1):
            log.info("simulate: month %d/%d (%s)", index, len(months), name)
            replay.month(index, name, rows, service)
        replay.finish()
    finally:
        service.stop()
    write_timeline(out, scenario, replay.months, config.monitor.primary_metric)
    return replay.months


# --- timeline ---------------------------------------------------------------------------


def write_timeline(folder: Path, scenario: Scenario, months: list[Month], metric: str) -> None:
    table = pd.DataFrame([asdict(m) for m in months])
    table["served_by"] = table["served_by"].map(lambda v: ",".join(v))
    with atomic_file(folder / "timeline.csv") as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_file(folder / "timeline.md") as tmp:
        tmp.write_text(
            f"# Simulation: {scenario.name}\n\n{scenario.description}\n\n" + markdown(table) + "\n"
        )
    with atomic_file(folder / "timeline.html") as tmp:
        nml.write_report(
            tmp,
            f"Simulation: {scenario.name}",
            [("Timeline", table.to_html(index=False))],
            {f"{metric} by month": figure(table, metric)},
        )


def markdown(table: pd.DataFrame) -> str:
    head = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "---|" * len(table.columns)
    body = [
        "| " + " | ".join(_cell(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    return "\n".join([head, rule, *body])


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def figure(table: pd.DataFrame, metric: str) -> Any:
    import plotly.graph_objects as go

    fig = go.Figure()
    for column, name in (
        ("estimated", "estimated"),
        ("realised", "realised (served)"),
        ("reference", "reference"),
    ):
        fig.add_trace(
            go.Scatter(x=table["month"], y=table[column], mode="lines+markers", name=name)
        )
    labels = [
        f"{a or ''}<br>v{c or ''}" + (f" (challenger v{h})" if isinstance(h, str) else "")
        for a, c, h in zip(
            table["action"], table["champion_after"], table["challenger_after"], strict=True
        )
    ]
    fig.add_trace(
        go.Scatter(
            x=table["month"],
            y=table["estimated"],
            mode="text",
            text=labels,
            textposition="top center",
            name="decision, champion after",
        )
    )
    fig.update_layout(yaxis_title=metric, xaxis_title="month")
    return fig


# --- wrapper ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", help="a name under conf/simulate/ or a YAML file")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))


def main(args: argparse.Namespace) -> None:
    config = runner.load_params(args.params)
    root = args.params.resolve().parent
    path = Path(args.scenario)
    if not path.suffix:
        path = root / "conf/simulate" / f"{args.scenario}.yaml"
    scenario = load_scenario(path, config.data)
    with runner.timed("simulate") as say, composed_with(root, config, scenario.overrides):
        months = simulate(root, runner.load_params(args.params), scenario)
        actions = ", ".join(f"{m.month} {m.action}" for m in months)
        say(
            f"{scenario.name}: {len(months)} months ({actions}); reports/simulation/{scenario.name}"
        )
