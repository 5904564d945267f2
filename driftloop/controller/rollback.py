"""driftloop rollback: move the champion back to the version it replaced."""

from __future__ import annotations

import argparse
import logging
import pickle
from pathlib import Path

from driftloop.adapters import tracking
from driftloop.config.compose import find_root
from driftloop.core import moves, runner
from driftloop.core.champion import MODELS
from driftloop.core.model import CARD_FILE, MODEL_FILE
from driftloop.core.moves import Move
from driftloop.core.outputs import atomic_dir, write_json
from driftloop.core.promotion import adopt
from driftloop.errors import DriftloopError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument(
        "--models",
        type=Path,
        default=MODELS,
        help="the folder of every data set's models (its champion and versions)",
    )


def main(args: argparse.Namespace) -> None:
    """Move the champion back to the version it replaced (registry alias and local copy)."""
    config = runner.load_params(args.params)
    root = find_root(args.params.resolve().parent)
    models = args.models / config.data.name
    adopt(config, root, models)
    tracking.configure(config.tracking, root)
    name = config.model_name
    current = tracking.alias_version(name, tracking.CHAMPION)
    if current is None:
        raise DriftloopError(f"no champion of model '{name}' in the registry: nothing to roll back")
    previous = tracking.version_tags(name, current).get("driftloop.previous_champion")
    if not previous:
        raise DriftloopError(
            f"version {current} of '{name}' was the first champion: nothing to roll back to"
        )
    if not (models / "versions" / previous / MODEL_FILE).is_file():
        model = tracking.download_model(name, previous)
        with atomic_dir(models / "versions" / previous) as folder:
            (folder / MODEL_FILE).write_bytes(pickle.dumps(model, protocol=5))
            write_json(folder / CARD_FILE, {"version": previous, "restored_from": "registry"})
    moves.apply(config, root, models, Move.of("rollback", previous, current, "rolled back by hand"))
    log.info("rollback: champion of '%s' is now version %s (was %s)", name, previous, current)
