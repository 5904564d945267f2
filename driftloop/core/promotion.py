"""Moving the champion: the local symlink switched with one atomic rename, and
the MLflow registry entry and alias that go with it."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

from driftloop.adapters import tracking
from driftloop.config.compose import find_root
from driftloop.config.schema import DriftloopConfig
from driftloop.core import lineage
from driftloop.core.champion import CHAMPION, PARAMS_FILE, adopt_legacy, role_version
from driftloop.core.model import CARD_FILE, MODEL_FILE, run_file
from driftloop.core.outputs import atomic_dir, write_json

log = logging.getLogger(__name__)


def adopt(config: DriftloopConfig, root: Path, models: Path) -> None:
    """An older project's single champion becomes its data set's (local folder
    and registered model), with one line saying so."""
    version = adopt_legacy(models)
    if version is None:
        return
    tracking.configure(config.tracking, root)
    old, new = config.tracking.registered_model, config.model_name
    renamed = tracking.rename_model(old, new)
    registry = f"registered model '{old}' is now '{new}'" if renamed else "registry unchanged"
    log.warning(
        "adopted the single champion of %s (version %s) for data set %s: now %s; %s",
        models.parent, version, config.data.name, models, registry,
    )  # fmt: skip


def store_version(
    models: Path, version: str, candidate: Path, meta: dict[str, Any], params: Path
) -> Path:
    """Copy the candidate (and the params it was trained with) to versions/<v>,
    its card merged with ``meta``."""
    target = models / "versions" / version
    with atomic_dir(target) as folder:
        shutil.copy2(candidate / MODEL_FILE, folder / MODEL_FILE)
        shutil.copy2(params, folder / PARAMS_FILE)
        card = json.loads((candidate / CARD_FILE).read_text())
        write_json(folder / CARD_FILE, {**card, **meta})
    return target


def switch_champion(
    models: Path, version: str, candidate: Path, meta: dict[str, Any], params: Path
) -> Path:
    """Store the candidate as versions/<v>, then atomically repoint champion at it."""
    target = store_version(models, version, candidate, meta, params)
    point_champion(models, version)
    return target


def point_champion(models: Path, version: str) -> None:
    point(models, CHAMPION, version)


def point(models: Path, role: str, version: str) -> None:
    """Point a role's link at versions/<version> with one rename: readers see
    the old link or the new one."""
    tmp = models / f".{role}.tmp-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path("versions") / version)
    os.replace(tmp, models / role)


def clear(models: Path, role: str, version: str | None = None) -> None:
    """Nobody has the role any more (only if ``version`` has it, when given);
    the version folder stays."""
    if version is None or role_version(models, role) == version:
        (models / role).unlink(missing_ok=True)


def register(
    config: DriftloopConfig, params: Path, candidate: Path, meta: dict[str, Any], role: str
) -> tuple[str, str | None]:
    """Register the candidate (its training run's model) and give it the role's alias."""
    root = find_root(params.resolve().parent)
    tracking.configure(config.tracking, root)
    run = training_run(candidate)
    uri = run.get("model_uri")
    if uri is None:  # the training run is not known here: log the model file itself
        model = pickle.loads((candidate / MODEL_FILE).read_bytes())
        uri = tracking.log_model_file(model, None, "promote", {"driftloop.stage": "promote"})
    name = config.model_name
    tags = {"driftloop.role": role, "git.commit": lineage.git_commit(root)}
    tags |= {f"driftloop.{key}": str(value) for key, value in meta.items() if key.endswith("_at")}
    tags |= {f"driftloop.rollout.{k}": str(v) for k, v in meta.get("rollout", {}).items()}
    tags |= {f"{tracking.HOLDOUT_TAG}{k}": str(v) for k, v in meta["holdout_metrics"].items()}
    version = tracking.register(uri, name, tags)
    tracking.set_alias(name, role, version)
    return version, run.get("run_id")


def training_run(candidate: Path) -> dict[str, str]:
    """The candidate's MLflow run, if it is the run that trained these exact bytes."""
    path = run_file(candidate)
    if not path.is_file():
        return {}
    run: dict[str, str] = json.loads(path.read_text())
    digest = hashlib.md5((candidate / MODEL_FILE).read_bytes()).hexdigest()
    return run if run.get("model_md5") == digest else {}


def registry_version(config: DriftloopConfig, params: Path, role: str = CHAMPION) -> str | None:
    """The version the registry's alias of ``role`` points at (None without one)."""
    tracking.configure(config.tracking, find_root(params.resolve().parent))
    return tracking.alias_version(config.model_name, role)


def same_model(candidate: Path, champion: Path) -> bool:
    """The same fitted model (byte-identical files): re-registering it adds nothing."""
    theirs = champion / MODEL_FILE
    return theirs.is_file() and theirs.read_bytes() == (candidate / MODEL_FILE).read_bytes()
