"""promote: the model gate, and the atomic switch of a role.

Rules from conf/evaluate: a minimum for named metrics, the largest allowed
regression against the champion, slices that must each meet the minimums,
and the behavioural and prediction checks of evaluate. The first model (no
champion yet) needs only the minimums. A candidate that passes is registered
in the MLflow registry and stored as data/models/<data set>/versions/<v>; what
it becomes depends on conf/rollout:

- the first model of a data set, or ``strategy: direct``: the champion (the
  one it replaces becomes ``previous`` and keeps scoring in shadow for the
  watch, see driftloop.core.moves);
- ``shadow`` or ``canary``: the challenger, on trial beside the champion (a
  newer passing candidate replaces an older challenger); the controller
  promotes it on live evidence (driftloop.controller.rollout).

Each role is a registry alias and a symlink beside versions/, switched with
one atomic rename: a reader sees the old model or the new one, never a
half-written one. On a failure nothing moves.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from driftloop.config.compose import find_root
from driftloop.config.schema import DriftloopConfig, RolloutStrategy
from driftloop.core import lineage, moves, runner
from driftloop.core.champion import CHALLENGER, CHAMPION, current_version, role_version
from driftloop.core.gate import judge, table
from driftloop.core.model import MODEL_FILE
from driftloop.core.moves import Move
from driftloop.core.outputs import write_json
from driftloop.core.promotion import (
    adopt,
    point,
    register,
    registry_version,
    same_model,
    store_version,
    training_run,
)
from driftloop.errors import DriftloopError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--report", type=Path, required=True, help="metrics/eval.json")
    parser.add_argument("--model", type=Path, required=True, help="candidate model folder")
    parser.add_argument(
        "--models", type=Path, required=True, help="folder holding champion and versions"
    )
    parser.add_argument("--out", type=Path, required=True, help="promotion decision (DVC metric)")
    parser.add_argument(
        "--record",
        type=Path,
        required=True,
        help="the promoted model's digest (a cached DVC output: a fresh clone re-runs promote)",
    )


def main(args: argparse.Namespace) -> None:
    config = runner.params(args.params)
    report = json.loads(args.report.read_text())
    verdicts = judge(report, config.evaluate)
    digest = hashlib.md5((args.model / MODEL_FILE).read_bytes()).hexdigest()
    decision = {
        "promoted": all(v.passed for v in verdicts),
        "rules": [v.__dict__ | {"margin": v.margin} for v in verdicts],
        # the model's content, not its registry version (local to each MLflow store)
        "model_md5": digest,
    }
    with runner.timed("promote") as say:
        adopt(config, find_root(args.params.resolve().parent), args.models)
        if not decision["promoted"]:
            failed = [v for v in verdicts if not v.passed]
            raise DriftloopError(
                f"model gate refused the candidate ({len(failed)} rule(s) failed); "
                f"the champion is unchanged\n{table(verdicts)}"
            )
        say(place(args, config, report, decision))


def place(
    args: argparse.Namespace,
    config: DriftloopConfig,
    report: dict[str, Any],
    decision: dict[str, Any],
) -> str:
    """Give the passing candidate its role; what was done, in a line."""
    models, current = args.models, current_version(args.models)
    # the first model: no champion here, or none in the configured registry (a
    # project newly pointed at a shared server)
    first = current is None or registry_version(config, args.params) is None
    direct = first or config.rollout.strategy is RolloutStrategy.direct
    role = CHAMPION if direct else CHALLENGER
    held = held_by(args, config)
    if held is not None:
        write_outputs(args, decision | {"role": held[0]})
        return f"the candidate is the {held[0]} already (version {held[1]}); nothing to switch"
    meta = card_meta(args, config, report, direct)
    version, run_id = register(config, args.params, args.model, meta, role)
    card = meta | {"version": version, "run_id": run_id}
    store_version(models, version, args.model, card, args.params)
    replaced = role_version(models, role)
    if role == CHAMPION and not first:
        move = Move.of("promote", version, current, "direct rollout: passed the model gate")
        moves.apply(config, find_root(args.params.resolve().parent), models, move)
    else:
        point(models, role, version)
    write_outputs(args, decision | {"role": role})
    if role == CHAMPION:
        return f"champion is now version {version} of {config.model_name}"
    older = f", replacing challenger {replaced}" if replaced else ""
    return (
        f"version {version} of {config.model_name} is the challenger ({meta['rollout']['strategy']}"
        f" beside champion {current}{older}); the controller judges it on live traffic"
    )


def card_meta(
    args: argparse.Namespace, config: DriftloopConfig, report: dict[str, Any], direct: bool
) -> dict[str, Any]:
    """What the version's card and registry tags record beside the model."""
    meta: dict[str, Any] = {
        "trained_at": training_run(args.model).get("trained_at"),
        "holdout_metrics": report["candidate"],
    }
    if direct:
        return meta | {"promoted_at": lineage.now()}
    rules = config.rollout
    rollout = {"strategy": rules.strategy.value, "canary_share": rules.canary_share}
    return meta | {"staged_at": lineage.now(), "rollout": rollout}


def held_by(args: argparse.Namespace, config: DriftloopConfig) -> tuple[str, str] | None:
    """(role, version) when the candidate's exact bytes already are the champion
    or the challenger, locally and in the registry."""
    for role in (CHAMPION, CHALLENGER):
        local = role_version(args.models, role)
        if (
            local is not None
            and same_model(args.model, args.models / role)
            and registry_version(config, args.params, role) == local
        ):
            return role, local
    return None


def write_outputs(args: argparse.Namespace, decision: dict[str, Any]) -> None:
    write_json(args.out, decision)
    write_json(args.record, {"model_md5": decision["model_md5"]})
