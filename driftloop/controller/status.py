"""`driftloop status`: the project's state on one screen.

Which model serves (version, trained when, on what data, holdout metrics),
the monitor's last decision and deviation, batches whose labels are pending,
prediction-log files not yet taken into a batch, whether `dvc status` is
clean, and what the controller (`driftloop loop --once`) would do next. It
reads files only, and runs `dvc status`; it changes nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from driftloop.config.compose import find_root, load
from driftloop.controller import datasets, loop, rollout, snapshot, workspace
from driftloop.core import runner
from driftloop.core.champion import CHALLENGER, PREVIOUS, current_version, role_version
from driftloop.core.drift import DriftRecord
from driftloop.core.model import CARD_FILE
from driftloop.core.outputs import read_json

# --- core --------------------------------------------------------------------------


@dataclass
class State:
    """What status reads, gathered from the project's files."""

    data: str = ""
    version: str | None = None
    card: dict[str, Any] = field(default_factory=dict)
    drift: DriftRecord | None = None
    drift_digest: str | None = None
    last: dict[str, Any] | None = None
    journal: dict[str, Any] | None = None
    pending_labels: list[str] = field(default_factory=list)
    unbatched_files: int = 0
    dvc_changed: list[str] | None = None  # None: `dvc status` could not run
    dvc_error: str = ""
    # the project's data set, when status is about another one
    composed: str | None = None
    # the rollout: the challenger on trial, the previous champion under watch,
    # and the last judgement (reports/loop/<data set>/rollout.jsonl)
    challenger: str | None = None
    previous: str | None = None
    judged: dict[str, Any] | None = None


def next_action(state: State) -> str:
    """What one controller pass would do now, in the controller's own order."""
    if state.journal is not None:
        return (
            f"finish the '{state.journal['action']}' a stopped pass began "
            f"(batch {state.journal['drift'].get('batch')})"
        )
    if state.unbatched_files:
        return (
            f"take {state.unbatched_files} new prediction-log file(s) into a batch, "
            "run the monitor and act on its decision"
        )
    if state.dvc_changed is None or "monitor" in state.dvc_changed or state.drift is None:
        return "run the monitor (`dvc repro --single-item monitor`) and act on its decision"
    if not state.drift.monitored:
        return "wait: there is no production batch to monitor yet"
    if state.drift_digest is not None and loop.is_new(state.drift_digest, state.last):
        return f"act on batch {state.drift.batch}'s decision: {state.drift.action}"
    return f"nothing: batch {state.drift.batch}'s decision was acted on already"


def render(state: State) -> list[str]:
    return [
        *serving_lines(state),
        *rollout_lines(state),
        *monitoring_lines(state),
        *label_lines(state),
        dvc_line(state),
        f"{'next':11} the controller would {next_action(state)}",
    ]


def rollout_lines(state: State) -> list[str]:
    """The challenger on trial or the champion under watch, and the last verdict."""
    if state.challenger is None and state.previous is None:
        return []
    if state.challenger is not None:
        said = f"challenger {state.challenger} on trial beside champion {state.version}"
    else:
        said = f"champion {state.version} watched against previous {state.previous}"
    last = state.judged
    if last is not None:
        said += f"; last verdict {last['verdict']} ({last['at']}): {last['reason']}"
    return [f"{'rollout':11} {said}"]


def serving_lines(state: State) -> list[str]:
    if state.version is None:
        return [f"{'serving':11} no champion yet: `dvc repro` trains and promotes one"]
    card = state.card
    inputs = card.get("inputs", {})
    data = ", ".join(
        f"{path} {md5[:8]}" for path, md5 in sorted(inputs.items()) if path.startswith("data/")
    )
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted(card.get("holdout_metrics", {}).items()))
    return [
        f"{'serving':11} version {state.version}: {card.get('model')} on {card.get('data')}, "
        f"trained {card.get('trained_at')}, promoted {card.get('promoted_at')}",
        f"{'':11} data: {data or 'unknown'}",
        f"{'':11} holdout: {metrics or 'unknown'}",
    ]


def monitoring_lines(state: State) -> list[str]:
    drift = state.drift
    if drift is None:
        return [f"{'monitoring':11} no decision yet (metrics/drift.json is missing)"]
    lines = [f"{'monitoring':11} {drift.text()}"]
    last = state.last
    if last is not None:
        lines.append(
            f"{'':11} last controller pass {last.get('logged_at')}: batch {last.get('batch')} "
            f"{last.get('action')} -> {outcome_text(last.get('outcome'))}"
        )
    return lines


def outcome_text(outcome: Any) -> str:
    if isinstance(outcome, dict):
        return ", ".join(f"{k} {v}" for k, v in sorted(outcome.items()))
    return str(outcome)


def label_lines(state: State) -> list[str]:
    pending = state.pending_labels
    lines = [
        f"{'labels':11} "
        + (
            f"pending for {len(pending)} batch(es): {', '.join(pending)}"
            if pending
            else "none pending"
        )
    ]
    if state.unbatched_files:
        lines.append(f"{'':11} {state.unbatched_files} prediction-log file(s) not in a batch yet")
    return lines


def dvc_line(state: State) -> str:
    if state.composed is not None:
        return (
            f"{'dvc':11} the project is composed for {state.composed}; a pass over this "
            "data set composes it for the pass (its pipeline is kept under .driftloop)"
        )
    if state.dvc_changed is None:
        return f"{'dvc':11} `dvc status` failed: {state.dvc_error}"
    if not state.dvc_changed:
        return f"{'dvc':11} clean: every stage is up to date"
    return f"{'dvc':11} changed: {', '.join(state.dvc_changed)} (`dvc repro` runs them)"


# --- reading the project -------------------------------------------------------------


def gather(root: Path, params: Path, data: str | None = None) -> State:
    config = runner.load_params(params)
    project = config.data.name
    pipeline = None
    if data is not None and data != project:
        config = load(datasets.kept_params(root, data), name=f"data set '{data}'")
        pipeline = datasets.state_dir(root, data) / "pipeline"
    paths = replace(workspace.Paths.of(root, config), pipeline=pipeline)
    models = paths.models
    state = State(data=config.data.name, version=current_version(models))
    if state.version is not None:
        state.card = read_json(models / "champion" / CARD_FILE) or {}
    state.drift = DriftRecord.read(paths.drift)
    state.drift_digest = loop.digest(paths.drift) if paths.drift.is_file() else None
    state.last = loop.last_decision(paths.decisions)
    state.journal = read_json(paths.journal)
    state.challenger = role_version(models, CHALLENGER)
    state.previous = role_version(models, PREVIOUS)
    state.judged = loop.last_decision(rollout.decisions(paths))
    state.pending_labels = pending_labels(paths.incoming)
    taken = read_json(paths.incoming / snapshot.STATE) or []
    state.unbatched_files = len(snapshot.new_files(paths.log_dir, set(taken)))
    if pipeline is None:
        state.dvc_changed, state.dvc_error = dvc_changed(root)
    else:
        state.composed = project
    return state


def pending_labels(incoming: Path) -> list[str]:
    """Batches with rows and no labels file yet."""
    if not incoming.is_dir():
        return []
    batches = sorted(p for p in incoming.iterdir() if p.is_dir())
    return [b.name for b in batches if any(b.glob("data.*")) and not any(b.glob("labels.*"))]


def dvc_changed(root: Path) -> tuple[list[str] | None, str]:
    """The stages `dvc status` lists as changed, or None and the reason it failed."""
    done = subprocess.run(
        ["dvc", "status", "--json"], cwd=root, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return None, (done.stderr.strip().splitlines() or ["no output"])[-1]
    changed = json.loads(done.stdout or "{}")
    return sorted(name.rsplit(":", 1)[-1] for name in changed), ""


# --- wrapper -------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--json", action="store_true", help="the state as JSON")
    parser.add_argument("--data", metavar="NAME", help="the data set (default: the composed one)")


def main(args: argparse.Namespace) -> None:
    root = find_root(args.params.resolve().parent)
    state = gather(root, args.params, args.data)
    if args.json:
        print(json.dumps({**state.__dict__, "next": next_action(state)}, indent=2, default=str))
        return
    print(f"driftloop status: {root}, data set {state.data}")
    print("\n".join(render(state)))
