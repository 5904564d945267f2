"""promote: the model gate, and the atomic switch of the champion.

Rules from conf/evaluate: a minimum for named metrics, the largest allowed
regression against the champion, slices that must each meet the minimums,
and the behavioural and prediction checks of evaluate. The first model (no
champion yet) needs only the minimums. On a pass the model is registered in
the MLflow registry, the alias ``champion`` moves to it, and
data/models/<data set>/champion (a symlink to versions/<v> beside it) is switched with
one atomic rename: a reader sees the old champion or the new one, never a
half-written one. On a failure the champion is untouched.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from driftloop.config.compose import find_root
from driftloop.core import lineage, runner
from driftloop.core.champion import current_version
from driftloop.core.gate import judge, table
from driftloop.core.model import MODEL_FILE
from driftloop.core.outputs import write_json
from driftloop.core.promotion import (
    adopt,
    register_champion,
    registry_champion,
    same_model,
    switch_champion,
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
        current = current_version(args.models)
        if (
            same_model(args.model, args.models / "champion")
            and registry_champion(config, args.params) == current
        ):
            write_outputs(args, decision)
            say(f"the candidate is the champion already (version {current}); nothing to switch")
            return
        meta = {
            "trained_at": training_run(args.model).get("trained_at"),
            "promoted_at": lineage.now(),
            "holdout_metrics": report["candidate"],
        }
        version, run_id = register_champion(config, args.params, args.model, current, meta)
        switch_champion(
            args.models,
            version,
            args.model,
            {**meta, "version": version, "run_id": run_id},
            args.params,
        )
        write_outputs(args, decision)
        say(f"champion is now version {version} of {config.model_name}")


def write_outputs(args: argparse.Namespace, decision: dict[str, Any]) -> None:
    write_json(args.out, decision)
    write_json(args.record, {"model_md5": decision["model_md5"]})
