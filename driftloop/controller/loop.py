"""loop: the controller that closes the loop (`driftloop loop --once | --watch S`).

One pass: take the new part of the prediction log as a batch (DVC-tracked),
run the monitor stage alone (`dvc repro --single-item monitor`), read its
decision from metrics/drift.json and act on it:

- none: record it;
- warn: record it, append an alert line and keep a copy of the report;
- retrain: `dvc repro`, which trains on the labelled batches inside the
  training window, tests the candidate and promotes it if it passes the gate
  (a running service hot-reloads the new champion);
- experiment: queue the sweep of conf/monitor, run the queue and write a
  review report (driftloop.controller.experiments); nothing is promoted.

Every decision goes to a JSON-lines log and to MLflow. Each data set has its
own loop: batches, decisions (reports/loop/<name>/), lock and journal
(.driftloop/<name>/); `--data NAME` passes over another data set than the
composed one (the project is composed for it for the pass and put back
after, see driftloop.controller.datasets), `--all` over every data set that
has a champion. A data set's lock keeps a second controller of it out; the
project's DVC workspace is taken by one pass at a time (others wait). Before
acting the controller writes what it is about to do to a journal, and clears
it once the decision is logged, so a pass killed half-way is finished by the
next one (every action is idempotent).
"""

from __future__ import annotations

import argparse
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from driftloop.config.schema import DriftloopConfig
from driftloop.controller import datasets, experiments, rollout, snapshot
from driftloop.controller.workspace import (
    GATE_REFUSED,
    Paths,
    append_line,
    gate_blocked,
    locked,
    repro,
    run,
    tail,
)
from driftloop.core import host, lineage, promotion, runner
from driftloop.core.champion import CHALLENGER, current_version, role_version
from driftloop.core.drift import DriftRecord
from driftloop.core.outputs import write_json
from driftloop.errors import DriftloopError

log = logging.getLogger("driftloop")


# --- lock and journal -------------------------------------------------------------


def last_decision(decisions: Path) -> dict[str, Any] | None:
    if not decisions.is_file():
        return None
    lines = [line for line in decisions.read_text().splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else None


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def is_new(drift_digest: str, last: dict[str, Any] | None) -> bool:
    """A decision not acted on yet (the monitor ran on something new)."""
    if last is None:
        return True
    return drift_digest not in (last.get("drift_digest"), last.get("drift_after"))


def clear_stale_dvc_locks(root: Path) -> list[int]:
    """Drop the entries a killed DVC process left in .dvc/tmp/rwlock (DVC
    refuses to run while they are there), or the empty file a DVC killed while
    writing it left; the pids dropped.

    The file is edited under DVC's own rwlock.lock. An entry of a DVC process
    still running (one a killed controller started) is an error: the next pass
    continues once it has finished."""
    path = root / ".dvc/tmp/rwlock"
    if not path.is_file():
        return []
    with (root / ".dvc/tmp/rwlock.lock").open("a") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            info = json.loads(path.read_text())
        except ValueError:  # empty or cut short: its writer was killed mid-write
            write_json(path, {"write": {}, "read": {}})
            return []
        writers = info.get("write", {})
        readers = info.get("read", {})
        pids = {e["pid"] for e in writers.values()}
        pids |= {e["pid"] for entries in readers.values() for e in entries}
        running = sorted(p for p in pids if host.alive(p))
        if running:
            raise DriftloopError(
                f"dvc (pid {', '.join(map(str, running))}) is still running in {root}; "
                "the next pass continues once it has finished"
            )
        if pids:
            write_json(path, {"write": {}, "read": {}})
        return sorted(pids)


# --- commands ---------------------------------------------------------------------


def track_batches(paths: Paths) -> list[str]:
    """`dvc add` the batches git does not hold (the controller's snapshots and
    labels dropped into them) and stage their .dvc files, so commits and queued
    experiments carry them."""
    if not paths.incoming.is_dir():
        return []
    in_git = set(run(["git", "ls-files", str(paths.incoming)], paths.root).stdout.split())
    batches = [
        b
        for b in sorted(p for p in paths.incoming.iterdir() if p.is_dir())
        if not any(name.startswith(str(b.relative_to(paths.root)) + "/") for name in in_git)
    ]
    if not batches:
        return []
    names = [str(b.relative_to(paths.root)) for b in batches]
    run(["dvc", "add", "--quiet", *names], paths.root)
    extra = [paths.incoming / ".gitignore", paths.incoming / snapshot.STATE]
    staged = [f"{n}.dvc" for n in names]
    staged += [str(f.relative_to(paths.root)) for f in extra if f.exists()]
    run(["git", "add", "--", *staged], paths.root)
    return [b.name for b in batches]


def adopt_legacy_loop(paths: Paths) -> None:
    """An older project's loop files (reports/loop/*, .driftloop/acting.json)
    become the project's data set's, once, with one line saying so."""
    old = paths.root / "reports/loop"
    moves = []
    if old.is_dir() and not paths.decisions.exists():
        moves += [(f, paths.reports / f.name) for f in old.iterdir() if f.is_file()]
    journal = paths.root / ".driftloop/acting.json"
    if journal.is_file() and not paths.journal.exists():
        moves.append((journal, paths.journal))
    for source, target in moves:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
    if moves:
        log.warning(
            "loop: moved %d loop file(s) of an older layout under %s", len(moves), paths.name
        )


def champion_version(paths: Paths) -> str | None:
    return current_version(paths.models)


# --- actions ----------------------------------------------------------------------


def act(action: str, drift: DriftRecord, paths: Paths, config: DriftloopConfig) -> dict[str, Any]:
    if action == "warn":
        return warn(drift, paths)
    if action == "retrain":
        on_trial = role_version(paths.models, CHALLENGER)
        if on_trial is not None:  # a retrain would replace it before it was ever judged
            return {"done": "deferred", "reason": f"challenger {on_trial} is on trial"}
        return retrain(paths)
    if action == "experiment":
        return experiments.run_sweep(paths, drift, config)
    return {"done": "recorded"}


def warn(drift: DriftRecord, paths: Paths) -> dict[str, Any]:
    kept = paths.reports / f"monitoring-{drift.batch}.html"
    report = paths.root / "reports/monitoring.html"
    if report.is_file():
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(report, kept)
    found = drift.primary
    assert found is not None
    alerts = "; ".join(drift.alerts) or "no data alerts"
    append_line(
        paths.alerts,
        f"{lineage.now()} WARN batch {drift.batch}: {found.basis} {found.metric} "
        f"{found.current} vs {found.reference} (drop {drift.deviation_percent:.2f} %); "
        f"{alerts}; report {kept.relative_to(paths.root)}",
    )
    return {"done": "alert", "report": str(kept.relative_to(paths.root))}


def retrain(paths: Paths) -> dict[str, Any]:
    """The whole DAG: ingest takes the labelled batches, the gates decide."""
    before = champion_version(paths)
    code, output = repro(paths.root)
    blocked = gate_blocked(paths, output, "retrain") if code else None
    if blocked is not None:
        return blocked
    if code != 0 and GATE_REFUSED not in output:
        raise DriftloopError(f"retrain: `dvc repro` failed ({code}):\n{tail(output)}")
    after = champion_version(paths)
    promoted = after != before
    challenger = role_version(paths.models, CHALLENGER)
    outcome: dict[str, Any] = {
        "done": "retrained",
        "promoted": promoted,
        "champion_before": before,
        "champion_after": after,
    }
    if challenger is not None:
        outcome["challenger"] = challenger  # on trial: the rollout step judges it
    elif not promoted:
        outcome["gate"] = "refused" if GATE_REFUSED in output else "kept the champion"
    return outcome


# --- one pass -----------------------------------------------------------------------


def once(root: Path, params: Path, data: str | None = None) -> dict[str, Any] | None:
    """One controller pass over data set ``data`` (default: the composed one);
    the decision logged, or None when nothing was new."""
    project = runner.load_params(params).data.name
    name = data or project
    with locked(datasets.state_dir(root, name)), datasets.composed_for(root, name, project) as kept:
        config = runner.load_params(params)
        paths = Paths.of(root, config)
        if name != project:
            paths = dataclasses.replace(paths, composition=tuple(datasets.overrides_of(root, name)))
        return one_pass(paths, config, kept, adopt=name == project)


def one_pass(
    paths: Paths, config: DriftloopConfig, kept: bool, adopt: bool
) -> dict[str, Any] | None:
    """The pass itself. ``kept``: the data set's pipeline state is in place, so
    the monitor runs alone; otherwise its data stages run first (they make its
    holdout). ``adopt``: the project's data set takes over an older project's
    single champion and loop files."""
    root = paths.root
    if adopt:
        promotion.adopt(config, root, paths.models)
        adopt_legacy_loop(paths)
    dropped = clear_stale_dvc_locks(root)
    if dropped:
        log.info("loop: cleared DVC locks of stopped processes %s", dropped)
    rollout.finish_move(paths, config)  # a promotion or rollback a stopped pass began
    if paths.journal.is_file():
        pending = json.loads(paths.journal.read_text())
        log.info("loop: finishing the pass a stopped controller left (%s)", pending["action"])
        return finish(pending, paths, config)
    pending = monitored(paths, config, kept)
    if pending is None:
        return None
    write_json(paths.journal, pending)
    return finish(pending, paths, config)


def monitored(paths: Paths, config: DriftloopConfig, kept: bool) -> dict[str, Any] | None:
    """Snapshot the log, run the monitor; the new decision, or None if not new."""
    taken = snapshot.snapshot(paths.log_dir, paths.incoming, config.data)
    if taken is not None:
        log.info("loop: %d logged rows -> batch %s", taken[1], taken[0])
    track_batches(paths)
    # the challenger is judged (and perhaps promoted) before the monitor runs,
    # so the monitor measures the model that serves from now on
    judged = rollout.step(paths, config)
    run(["dvc", "repro", *(["--single-item"] if kept else []), "monitor"], paths.root)
    if not paths.drift.is_file():
        raise DriftloopError(f"{paths.drift}: the monitor stage wrote no decision")
    drift = DriftRecord.read(paths.drift)
    assert drift is not None
    drift_digest = digest(paths.drift)
    if not is_new(drift_digest, last_decision(paths.decisions)):
        log.info("loop: nothing new since the last decision (%s)", drift.action)
        return None
    return {
        "started_at": lineage.now(),
        "action": drift.action,
        "drift": drift.to_json(),
        "drift_digest": drift_digest,
        "champion": champion_version(paths),
        "snapshot": taken[0] if taken else None,
        "rollout": brief(judged),
    }


def brief(judged: dict[str, Any] | None) -> dict[str, Any] | None:
    """The rollout step's verdict as the decision log keeps it (the evidence is
    in rollout.jsonl)."""
    if judged is None:
        return None
    return {key: judged.get(key) for key in ("kind", "judged", "against", "verdict", "reason")}


def finish(pending: dict[str, Any], paths: Paths, config: DriftloopConfig) -> dict[str, Any]:
    """Act on the journalled decision, log it, clear the journal."""
    drift = DriftRecord.from_json(pending["drift"])
    recorded = drift.to_json()
    outcome = act(pending["action"], drift, paths, config)
    entry = {
        "decided_at": pending["started_at"],
        "logged_at": lineage.now(),
        "batch": drift.batch,
        "batches": drift.batches,
        "action": pending["action"],
        "deviation_percent": drift.deviation_percent,
        "primary": recorded.get("primary"),
        "evidence": recorded.get("evidence", []),
        "alerts": drift.alerts,
        "champion": pending["champion"],
        "snapshot": pending["snapshot"],
        "rollout": pending.get("rollout"),
        "drift_digest": pending["drift_digest"],
        "outcome": outcome,
    }
    if pending["action"] == "retrain" and paths.drift.is_file():
        entry["drift_after"] = digest(paths.drift)  # the monitor re-ran on the new champion
    append_line(paths.decisions, json.dumps(entry, sort_keys=True))
    log_to_mlflow(entry, config, paths.root)
    paths.journal.unlink()
    log.info("loop: %s (%.2f %% drop) -> %s", entry["action"], entry["deviation_percent"], outcome)
    return entry


def log_to_mlflow(entry: dict[str, Any], config: DriftloopConfig, root: Path) -> None:
    from driftloop.adapters import tracking

    tracking.configure(config.tracking, root)
    tags = {"driftloop.stage": "loop", "driftloop.action": entry["action"]}
    with tracking.run(f"loop-{entry['batch']}", tags):
        tracking.log_params(
            {
                "batch": str(entry["batch"]),
                "action": entry["action"],
                "champion": str(entry["champion"]),
                "outcome": json.dumps(entry["outcome"], sort_keys=True)[:6000],
            }
        )
        figures = {"deviation_percent": entry["deviation_percent"]}
        for each in entry["evidence"]:
            figures[f"{each['basis']}_current"] = each["current"]
            figures[f"{each['basis']}_reference"] = each["reference"]
        tracking.log_metrics(figures)


# --- wrapper ------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--once", action="store_true", help="one pass (for cron or CI)")
    mode.add_argument("--watch", type=float, metavar="SECONDS", help="a pass every SECONDS")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--data", metavar="NAME", help="the data set (default: the composed one)")
    which.add_argument(
        "--all", action="store_true", help="every data set that has a champion, one by one"
    )


def main(args: argparse.Namespace) -> None:
    root = args.params.resolve().parent
    names: list[str | None] = [*datasets.with_champion(root)] if args.all else [args.data]
    if not names:
        raise DriftloopError("--all: no data set has a champion yet (run `dvc repro` first)")
    if args.once:
        failed = passes(root, args.params, names)
        if failed:
            raise DriftloopError(f"the pass over {', '.join(failed)} failed (see above)")
        return
    watch(root, args.params, args.watch, names)


def passes(root: Path, params: Path, names: list[str | None]) -> list[str]:
    """One pass over each data set (None: the composed one); those that failed.

    With several, one data set's failure is logged and the others still pass."""
    failed = []
    for name in names:
        with runner.timed(f"loop {name}" if name else "loop") as say:
            try:
                entry = once(root, params, name)
            except DriftloopError as exc:
                if len(names) == 1:
                    raise
                log.error("loop: %s: %s", name, exc)
                failed.append(str(name))
                continue
            say("nothing new" if entry is None else f"{entry['action']}: {entry['outcome']}")
    return failed


def watch(root: Path, params: Path, seconds: float, names: list[str | None]) -> None:
    """Passes every ``seconds`` until SIGINT or SIGTERM (the current pass ends first)."""
    stopping: list[int] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, _frame: stopping.append(number))
    while not stopping:
        try:
            passes(root, params, names)
        except DriftloopError as exc:  # the next pass retries; the journal says what
            log.error("loop: %s", exc)
        deadline = time.monotonic() + seconds
        while not stopping and time.monotonic() < deadline:
            time.sleep(min(0.5, seconds))
    log.info("loop: stopped")
