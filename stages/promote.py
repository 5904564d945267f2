"""promote: the model gate, and the atomic switch of the champion.

Rules from conf/evaluate: a minimum for named metrics, the largest allowed
regression against the champion, slices that must each meet the minimums,
and the behavioural and prediction checks of evaluate. The first model (no
champion yet) needs only the minimums. On a pass the model is registered in
the MLflow registry, the alias ``champion`` moves to it, and
data/models/champion (a symlink to data/models/versions/<v>) is switched with
one atomic rename: a reader sees the old champion or the new one, never a
half-written one. On a failure the champion is untouched.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stages import lineage, runner
from stages.adapters import tracking
from stages.config.compose import find_root
from stages.config.schema import DriftloopConfig, EvaluateConfig
from stages.errors import DriftloopError
from stages.outputs import atomic_dir, write_json
from stages.train import CARD_FILE, MODEL_FILE, run_file

log = logging.getLogger(__name__)
LOWER_IS_BETTER = {"log_loss", "brier", "rmse", "mae"}


@dataclass(frozen=True)
class Verdict:
    rule: str
    value: float | None
    limit: float
    passed: bool

    @property
    def margin(self) -> float | None:
        return None if self.value is None else round(self.value - self.limit, 6)


# --- core -----------------------------------------------------------------------


def judge(report: dict[str, Any], rules: EvaluateConfig) -> list[Verdict]:
    """Every rule's verdict; the first model (no champion) skips regressions."""
    verdicts: list[Verdict] = []
    candidate, champion = report["candidate"], report.get("champion")
    for rule in rules.rules:
        value = candidate.get(rule.metric)
        lower = rule.metric in LOWER_IS_BETTER
        if rule.min is not None:
            verdicts.append(
                _bound(
                    f"{rule.metric} {'<=' if lower else '>='} {rule.min}", value, rule.min, lower
                )
            )
        if rule.max_regression is not None and champion and rule.metric in champion:
            base = champion[rule.metric]
            limit = base + rule.max_regression if lower else base - rule.max_regression
            verdicts.append(_bound(f"{rule.metric} vs champion {base:.4f}", value, limit, lower))
        for column in rules.required_slices:
            for name, metrics in report.get("slices", {}).get(column, {}).items():
                if rule.min is not None:
                    verdicts.append(
                        _bound(
                            f"{rule.metric} on {column}={name}",
                            metrics.get(rule.metric),
                            rule.min,
                            lower,
                        )
                    )
    verdicts.extend(
        Verdict(c["check"], c["value"], c["limit"], c["passed"])
        for c in report.get("behaviour", [])
    )
    gate = report.get("predictions_gate", {"success": True})
    verdicts.append(Verdict("predictions suite", None, 0.0, bool(gate["success"])))
    return verdicts


def _bound(name: str, value: float | None, limit: float, lower_is_better: bool) -> Verdict:
    if value is None:
        return Verdict(name, None, limit, False)
    passed = value <= limit if lower_is_better else value >= limit
    return Verdict(name, value, limit, passed)


def table(verdicts: list[Verdict]) -> str:
    """A short table: rule, value, limit, margin, result."""
    rows = [f"{'rule':40} {'value':>9} {'limit':>9} {'margin':>9}  result"]
    for v in verdicts:
        value = "-" if v.value is None else f"{v.value:.4f}"
        margin = "-" if v.margin is None else f"{v.margin:+.4f}"
        rows.append(
            f"{v.rule:40} {value:>9} {v.limit:>9.4f} {margin:>9}  {'pass' if v.passed else 'FAIL'}"
        )
    return "\n".join(rows)


# --- the champion on disk ---------------------------------------------------------------


def switch_champion(models: Path, version: str, candidate: Path, meta: dict[str, Any]) -> Path:
    """Copy the candidate to versions/<v>, then atomically repoint champion at it."""
    target = models / "versions" / version
    with atomic_dir(target) as folder:
        shutil.copy2(candidate / MODEL_FILE, folder / MODEL_FILE)
        card = json.loads((candidate / CARD_FILE).read_text())
        write_json(folder / CARD_FILE, {**card, **meta})
    point_champion(models, version)
    return target


def point_champion(models: Path, version: str) -> None:
    link = models / "champion"
    tmp = models / f".champion.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path("versions") / version)
    os.replace(tmp, link)  # one rename: readers see the old link or the new one


def current_version(models: Path) -> str | None:
    link = models / "champion"
    return Path(os.readlink(link)).name if link.is_symlink() else None


@dataclass(frozen=True)
class Champion:
    folder: Path
    data: bytes  # model.pkl as promote wrote it: what the workers unpickle
    model: Any
    version: str
    card: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:16]


def load_champion(folder: Path) -> Champion:
    """model.pkl and card.json of a champion folder (or its link): what serving,
    batch scoring and monitoring load."""
    model_file = folder / MODEL_FILE
    if not model_file.is_file():
        raise DriftloopError(
            f"no champion model at {model_file}: run the pipeline (dvc repro) so that "
            "promote makes one"
        )
    try:
        data = model_file.read_bytes()
        model = pickle.loads(data)
        card = json.loads((folder / CARD_FILE).read_text())
    except (OSError, ValueError, pickle.UnpicklingError) as exc:
        raise DriftloopError(f"{folder}: cannot load the champion: {exc}") from exc
    version = str(card.get("version", folder.resolve().name))
    return Champion(folder, data, model, version, card)


# --- wrapper ---------------------------------------------------------------------


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


def register_champion(
    config: DriftloopConfig,
    params: Path,
    candidate: Path,
    previous: str | None,
    meta: dict[str, Any],
) -> tuple[str, str | None]:
    """Register the candidate (its training run's model) and move the alias to it."""
    root = find_root(params.resolve().parent)
    tracking.configure(config.tracking, root)
    run = _training_run(candidate)
    uri = run.get("model_uri")
    if uri is None:  # the training run is not known here: log the model file itself
        model = pickle.loads((candidate / MODEL_FILE).read_bytes())
        uri = tracking.log_model_file(model, None, "promote", {"driftloop.stage": "promote"})
    name = config.tracking.registered_model
    previous = tracking.alias_version(name, tracking.CHAMPION) or previous
    tags = {"driftloop.previous_champion": previous or "", "git.commit": lineage.git_commit(root)}
    tags |= {f"driftloop.{key}": str(meta[key]) for key in ("trained_at", "promoted_at")}
    tags |= {f"{tracking.HOLDOUT_TAG}{k}": str(v) for k, v in meta["holdout_metrics"].items()}
    version = tracking.register(uri, name, tags)
    tracking.set_alias(name, tracking.CHAMPION, version)
    return version, run.get("run_id")


def _training_run(candidate: Path) -> dict[str, str]:
    """The candidate's MLflow run, if it is the run that trained these exact bytes."""
    path = run_file(candidate)
    if not path.is_file():
        return {}
    run: dict[str, str] = json.loads(path.read_text())
    digest = hashlib.md5((candidate / MODEL_FILE).read_bytes()).hexdigest()
    return run if run.get("model_md5") == digest else {}


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
            "trained_at": _training_run(args.model).get("trained_at"),
            "promoted_at": lineage.now(),
            "holdout_metrics": report["candidate"],
        }
        version, run_id = register_champion(config, args.params, args.model, current, meta)
        switch_champion(
            args.models, version, args.model, {**meta, "version": version, "run_id": run_id}
        )
        write_outputs(args, decision)
        say(f"champion is now version {version} of {config.tracking.registered_model}")


def write_outputs(args: argparse.Namespace, decision: dict[str, Any]) -> None:
    write_json(args.out, decision)
    write_json(args.record, {"model_md5": decision["model_md5"]})


def registry_champion(config: DriftloopConfig, params: Path) -> str | None:
    """The version the registry's champion alias points at (None without one)."""
    tracking.configure(config.tracking, find_root(params.resolve().parent))
    return tracking.alias_version(config.tracking.registered_model, tracking.CHAMPION)


def same_model(candidate: Path, champion: Path) -> bool:
    """The same fitted model (byte-identical files): re-registering it adds nothing."""
    theirs = champion / MODEL_FILE
    return theirs.is_file() and theirs.read_bytes() == (candidate / MODEL_FILE).read_bytes()


# --- rollback ---------------------------------------------------------------------


def add_rollback_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument(
        "--models", type=Path, default=Path("data/models"), help="champion and versions"
    )


def rollback(args: argparse.Namespace) -> None:
    """Move the champion back to the version it replaced (registry alias and local copy)."""
    config = runner.load_params(args.params)
    root = find_root(args.params.resolve().parent)
    tracking.configure(config.tracking, root)
    name = config.tracking.registered_model
    current = tracking.alias_version(name, tracking.CHAMPION)
    if current is None:
        raise DriftloopError(f"no champion of model '{name}' in the registry: nothing to roll back")
    previous = tracking.version_tags(name, current).get("driftloop.previous_champion")
    if not previous:
        raise DriftloopError(
            f"version {current} of '{name}' was the first champion: nothing to roll back to"
        )
    if not (args.models / "versions" / previous / MODEL_FILE).is_file():
        model = tracking.download_model(name, previous)
        with atomic_dir(args.models / "versions" / previous) as folder:
            (folder / MODEL_FILE).write_bytes(pickle.dumps(model, protocol=5))
            write_json(folder / CARD_FILE, {"version": previous, "restored_from": "registry"})
    tracking.set_alias(name, tracking.CHAMPION, previous)
    point_champion(args.models, previous)
    log.info("rollback: champion of '%s' is now version %s (was %s)", name, previous, current)
