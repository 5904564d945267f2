"""The `driftloop` command: compose the config and run each pipeline stage.

DVC calls the stage commands (see dvc.yaml); people mostly call `compose`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from driftloop.core import runner

log = logging.getLogger("driftloop")


def _compose_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model=logreg")
    parser.add_argument("--out", type=Path, default=Path("params.yaml"))


def _compose(args: argparse.Namespace) -> None:
    from driftloop.config.compose import find_root
    from driftloop.controller.datasets import compose_project

    root = find_root()
    output = args.out if args.out.is_absolute() else Path.cwd() / args.out
    config = compose_project(root, output, args.overrides)
    log.info(
        "compose: wrote %s (data=%s, model=%s, conf digest %s)",
        args.out,
        config.data.name,
        config.model.name,
        config.conf_digest,
    )


def _stage(
    name: str,
) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], None]]:
    """A command's module (``module`` or ``module:main function``): its
    add_arguments and its main."""
    import importlib

    path, _, main = name.partition(":")
    module: ModuleType = importlib.import_module(path)
    return module.add_arguments, getattr(module, main or "main")


COMMANDS: dict[str, tuple[str, str | None]] = {
    "compose": ("compose conf/ into params.yaml (what `dvc exp run -S` does too)", None),
    "check-params": ("stage: stop on a stale or invalid params.yaml", "stages.check_params"),
    "ingest": ("stage: read the source and labelled batches into data/raw", "stages.ingest"),
    "validate-data": ("stage: the Great Expectations data gate", "stages.validate_data"),
    "featurize": (
        "stage: Spark feature engineering and the train/holdout split",
        "stages.featurize",
    ),
    "train": ("stage: fit the configured model and track the run in MLflow", "stages.train"),
    "evaluate": (
        "stage: holdout metrics, slices, behaviour, plots; compare with the champion",
        "stages.evaluate",
    ),
    "promote": (
        "stage: the model gate; on a pass the candidate becomes champion",
        "stages.promote",
    ),
    "rollback": (
        "move the champion back to the version it replaced",
        "driftloop.controller.rollback",
    ),
    "approve": (
        "promote the challenger on trial (rollout.approval: required)",
        "driftloop.controller.rollout:approve",
    ),
    "reject": (
        "take the challenger off trial; the champion stays",
        "driftloop.controller.rollout:reject",
    ),
    "batch-predict": (
        "stage: score data with the champion in Spark into data/predictions",
        "stages.batch_predict",
    ),
    "monitor": (
        "stage: NannyML drift and performance on the newest batch; the policy's action",
        "stages.monitor",
    ),
    "snapshot": (
        "take the new part of the prediction log as a production batch",
        "driftloop.controller.snapshot",
    ),
    "loop": (
        "the controller: snapshot, monitor, act on the drift decision",
        "driftloop.controller.loop",
    ),
    "simulate": (
        "replay the analysis period through the service and the loop",
        "driftloop.controller.simulate",
    ),
    "report": (
        "a pull request's review: params, metrics, gates, drift, plots vs a base",
        "driftloop.controller.report",
    ),
    "init-data": (
        "profile a CSV or parquet file into conf/ for a new data set",
        "driftloop.controller.init_data",
    ),
    "status": (
        "one screen: champion, last decision, pending labels, dvc status, next",
        "driftloop.controller.status",
    ),
    "serve": ("serve the champion over HTTP (FastAPI + uvicorn)", "driftloop.serve.command"),
}


def build_parser() -> tuple[
    argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], None]]
]:
    parser = argparse.ArgumentParser(prog="driftloop", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    commands = parser.add_subparsers(dest="command", required=True)
    mains: dict[str, Callable[[argparse.Namespace], None]] = {}
    for command, (help_text, module) in COMMANDS.items():
        sub = commands.add_parser(command, help=help_text, description=help_text)
        if module is None:
            _compose_arguments(sub)
            mains[command] = _compose
        else:
            add_arguments, main = _stage(module)
            add_arguments(sub)
            mains[command] = main
    return parser, mains


def own_tools_first() -> None:
    """The dvc and driftloop this command runs come from its own environment,
    whether or not that environment is activated (`.venv/bin/driftloop status`)."""
    here = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if here not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([here, path]) if path else here


def main(argv: list[str] | None = None) -> int:
    own_tools_first()
    parser, mains = build_parser()
    args = parser.parse_args(argv)
    runner.setup_logging(args.verbose)
    return runner.run(lambda: mains[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
