"""The rollout step of a controller pass, and `driftloop approve | reject`.

Each pass, after the new log rows are taken as a batch:

- with a challenger on trial, it is judged against the champion on the rows
  both scored (driftloop.core.trial): promoted (challenger -> champion,
  champion -> previous), rejected with the reason, or left waiting. Under
  ``rollout.approval: required`` a promotion waits for a person: the evidence
  report is written and `driftloop approve VERSION` promotes;
- after a promotion, for ``rollout.watch_days``, the new champion is judged
  against the previous one (which keeps scoring in shadow): rolled back by
  itself when worse, else the watch ends.

Every judgement goes to reports/loop/<data set>/rollout.jsonl and MLflow, and
the latest evidence to rollout.md beside it (the pull request's report shows
it). A move is journalled before it starts (.driftloop/<data set>/rollout.json),
so a controller killed half-way is finished by the next pass.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.config.schema import Approval, DriftloopConfig, Problem
from driftloop.controller import datasets
from driftloop.controller.workspace import Paths, append_line, locked
from driftloop.core import lineage, moves, rollout, runner, trial
from driftloop.core.champion import CHALLENGER, PREVIOUS, current_version, role_version
from driftloop.core.data import batch_labels
from driftloop.core.model import CARD_FILE
from driftloop.core.moves import Move
from driftloop.core.outputs import read_json, write_json
from driftloop.core.predictor import Outputs
from driftloop.errors import DriftloopError

log = logging.getLogger("driftloop")
MOVES = {
    trial.PROMOTE: "promote",
    trial.REJECT: "reject",
    trial.ROLLBACK: "rollback",
    trial.END_WATCH: "end_watch",
}


# verdicts a person hears of (reports/loop/<data set>/alerts.log), not only reads
ALERTS = (trial.REJECT, trial.ROLLBACK, "awaiting approval")


def journal(paths: Paths) -> Path:
    return paths.state / "rollout.json"


def decisions(paths: Paths) -> Path:
    return paths.reports / "rollout.jsonl"


def report(paths: Paths) -> Path:
    return paths.reports / "rollout.md"


# --- one step -----------------------------------------------------------------------------


def step(paths: Paths, config: DriftloopConfig) -> dict[str, Any] | None:
    """Judge the challenger, or watch the new champion; the entry logged, or
    None when there is nothing on trial or under watch."""
    finish_move(paths, config)
    models = paths.models
    champion = current_version(models)
    challenger, previous = role_version(models, CHALLENGER), role_version(models, PREVIOUS)
    if champion is None or (challenger is None and previous is None):
        return None
    if challenger is not None:
        found = gather(paths, config, champion, challenger, since(models, challenger, "staged_at"))
        verdict = trial.judge_challenger(found, config.rollout)
        kind = "trial"
    else:
        assert previous is not None
        found = gather(paths, config, previous, champion, since(models, champion, "promoted_at"))
        verdict = trial.judge_watch(found, config.rollout)
        kind = "watch"
    return act(paths, config, kind, found, verdict)


def act(
    paths: Paths, config: DriftloopConfig, kind: str, found: trial.Evidence, verdict: trial.Verdict
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "at": lineage.now(),
        "kind": kind,
        "champion": current_version(paths.models),
        "judged": found.new,
        "against": found.base,
        "verdict": verdict.action,
        "reason": verdict.reason,
        "evidence": found.to_json(),
    }
    waiting = verdict.action == trial.PROMOTE and config.rollout.approval is Approval.required
    if waiting:
        entry["verdict"] = "awaiting approval"
        entry["reason"] += f"; approve with `driftloop approve {found.new}`"
    elif verdict.action in MOVES:
        target = found.base if verdict.action == trial.ROLLBACK else found.new
        other = found.new if verdict.action == trial.ROLLBACK else found.base
        move = Move.of(MOVES[verdict.action], target, other, verdict.reason)
        entry["move"] = move.to_json()
        carry_out(paths, config, move)
    if entry["verdict"] in ALERTS:
        said = f"{entry['verdict'].upper()} version {found.new}: {entry['reason']}"
        append_line(paths.alerts, f"{entry['at']} ROLLOUT {said}; see {report(paths).name}")
    record(paths, config, entry)
    return entry


# --- the evidence ---------------------------------------------------------------------------


def since(models: Path, version: str, key: str) -> float:
    """Days since the card's ``key`` time (staged_at, promoted_at); 0 when unknown."""
    card = read_json(models / "versions" / version / CARD_FILE) or {}
    try:
        since = datetime.fromisoformat(str(card.get(key)))
    except ValueError:  # none recorded (a version from before the rollout) or unreadable
        return 0.0
    return (datetime.now(UTC) - since).total_seconds() / 86400


def gather(
    paths: Paths, config: DriftloopConfig, base: str, new: str, days: float
) -> trial.Evidence:
    """The evidence of every batch's rows both versions scored, labels joined."""
    data, outputs = config.data, Outputs.of(config.data)
    frames = [f for b in batches(paths) if (f := batch_rows(b, config, {base, new})) is not None]
    frame = pd.concat(frames, ignore_index=True) if frames else empty(outputs)
    target = data.columns.target if data.columns.target in frame else None
    found = trial.pairs(frame, base, new, outputs, target)
    metric = config.evaluate.primary_metric
    return trial.evidence(
        found, (base, new), outputs, classes(frame, outputs, found), metric, config.rollout, days
    )


def batches(paths: Paths) -> list[Path]:
    if not paths.incoming.is_dir():
        return []
    return sorted(p for p in paths.incoming.iterdir() if (p / "data.parquet").is_file())


def batch_rows(batch: Path, config: DriftloopConfig, versions: set[str]) -> pd.DataFrame | None:
    """A batch's logged rows that either version scored, with their labels
    where they have arrived (None: the batch has no rollout columns)."""
    frame = pd.read_parquet(batch / "data.parquet")
    if rollout.SHADOW_VERSION not in frame:
        return None
    mine = frame["model_version"].astype("string").isin(versions) | frame[
        rollout.SHADOW_VERSION
    ].astype("string").isin(versions)
    rows = frame[mine.fillna(False)]
    data = config.data
    labels = batch_labels(batch, data)
    if labels is None or rows.empty:
        return rows
    rows = rows.drop(columns=[data.columns.target], errors="ignore")
    return rows.merge(labels, on=data.columns.id, how="left")


def empty(outputs: Outputs) -> pd.DataFrame:
    """No logged rows yet: the columns the judgement reads, empty."""
    names = ["model_version", rollout.SHADOW_VERSION, rollout.SHADOW_STATUS]
    names += [rollout.MODEL_MS, rollout.SHADOW_MS]
    for name in outputs.names([]):
        names += [name, rollout.shadow_column(name)]
    return pd.DataFrame({name: pd.Series(dtype="object") for name in names})


def classes(frame: pd.DataFrame, outputs: Outputs, found: trial.Pairs) -> list[Any]:
    """The classes the metrics take: 0/1 for binary (labels are encoded), the
    logged class columns for multiclass."""
    if outputs.problem is Problem.binary:
        return [0, 1]
    if outputs.problem is Problem.regression:
        return []
    prefix = f"{outputs.proba}_"
    return [c.removeprefix(prefix) for c in found.base.columns if c.startswith(prefix)]


# --- moves and records -------------------------------------------------------------------------


def carry_out(paths: Paths, config: DriftloopConfig, move: Move) -> None:
    """Journal the move, make it, clear the journal."""
    write_json(journal(paths), move.to_json())
    moves.apply(config, paths.root, paths.models, move)
    journal(paths).unlink()


def finish_move(paths: Paths, config: DriftloopConfig) -> None:
    """A move a stopped controller left half-done is made again (every step is idempotent)."""
    pending = read_json(journal(paths))
    if pending is None:
        return
    move = Move.from_json(pending)
    log.info(
        "rollout: finishing the %s of version %s a stopped controller left", move.kind, move.version
    )
    carry_out(paths, config, move)
    entry = {
        "at": lineage.now(),
        "kind": "resumed",
        "verdict": move.kind,
        "move": move.to_json(),
        "reason": move.reason,
        "champion": current_version(paths.models),
    }
    record(paths, config, entry)


def record(paths: Paths, config: DriftloopConfig, entry: dict[str, Any]) -> None:
    append_line(decisions(paths), json.dumps(entry, sort_keys=True))
    write_report(paths, entry)
    log_to_mlflow(entry, config, paths.root)
    log.info(
        "rollout: %s %s -> %s (%s)",
        entry["kind"],
        entry.get("judged", ""),
        entry["verdict"],
        entry["reason"],
    )


def write_report(paths: Paths, entry: dict[str, Any]) -> None:
    lines = [
        f"# Rollout of {paths.name}: {entry['verdict']}",
        "",
        f"{entry['at']}, {entry['kind']}: {entry['reason']}",
        "",
        f"- champion: {current_version(paths.models)}",
        f"- challenger: {role_version(paths.models, CHALLENGER) or '-'}",
        f"- previous (watched): {role_version(paths.models, PREVIOUS) or '-'}",
    ]
    evidence = entry.get("evidence")
    if evidence:
        lines += ["", "| evidence | value |", "|---|---|"]
        lines += [f"| {key} | {value} |" for key, value in evidence.items()]
    paths.reports.mkdir(parents=True, exist_ok=True)
    with_newline = "\n".join(lines) + "\n"
    report(paths).write_text(with_newline)


def log_to_mlflow(entry: dict[str, Any], config: DriftloopConfig, root: Path) -> None:
    from driftloop.adapters import tracking

    tracking.configure(config.tracking, root)
    tags = {"driftloop.stage": "rollout", "driftloop.verdict": entry["verdict"]}
    with tracking.run(f"rollout-{entry.get('judged') or entry['champion']}", tags):
        tracking.log_params(
            {
                "kind": entry["kind"],
                "reason": entry["reason"][:6000],
                "champion": str(entry["champion"]),
            }
        )
        evidence = entry.get("evidence") or {}
        figures = {k: float(v) for k, v in evidence.items() if isinstance(v, int | float)}
        tracking.log_metrics(figures)


# --- approve and reject ----------------------------------------------------------------------


def decide_by_hand(params: Path, version: str, approve: bool, who: str) -> dict[str, Any]:
    """A person's verdict on the challenger ``version`` (the composed data set)."""
    config = runner.load_params(params)
    root = params.resolve().parent
    with locked(datasets.state_dir(root, config.data.name)):
        paths = Paths.of(root, config)
        finish_move(paths, config)
        challenger = role_version(paths.models, CHALLENGER)
        if challenger != version:
            now = f"the challenger is version {challenger}" if challenger else "there is none"
            raise DriftloopError(
                f"version {version} is not the challenger of {config.model_name} ({now})"
            )
        said = "approved" if approve else "rejected"
        move = Move.of(
            "promote" if approve else "reject",
            version,
            current_version(paths.models),
            f"{said} by {who}",
        )
        carry_out(paths, config, move)
        entry = {
            "at": move.at,
            "kind": "by hand",
            "verdict": move.kind,
            "judged": version,
            "reason": move.reason,
            "by": who,
            "move": move.to_json(),
            "champion": current_version(paths.models),
        }
        record(paths, config, entry)
        return entry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("version", help="the challenger's registry version")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--by", default=None, help="who decides (default: the login name)")
    parser.add_argument("--reason", default=None, help="a note kept with the decision")


def approve(args: argparse.Namespace) -> None:
    decide(args, approve=True)


def reject(args: argparse.Namespace) -> None:
    decide(args, approve=False)


def decide(args: argparse.Namespace, approve: bool) -> None:
    who = args.by or getpass.getuser()
    if args.reason:
        who = f"{who}: {args.reason}"
    with runner.timed("approve" if approve else "reject") as say:
        entry = decide_by_hand(args.params, args.version, approve, who)
        say(f"{entry['verdict']}: version {args.version}; the champion is {entry['champion']}")
