"""Where the service gets its models, and how it notices that one changed.

Each role (champion, challenger, previous: driftloop.core.champion.ROLES) has
a source: the local link data/models/<data set>/<role> (a symlink that
promote, the controller and rollback switch with one rename) or the registry
alias of the same name. Each has a cheap ``key`` (the link target, the alias's
version) that the service polls; a changed key means load the new model, check
it, then swap; no key means nobody has the role.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from driftloop.adapters import tracking
from driftloop.config.schema import DriftloopConfig
from driftloop.core.champion import CHALLENGER, CHAMPION, load_champion
from driftloop.core.model import MODEL_FILE
from driftloop.core.plan import plan
from driftloop.core.predictor import Predictor
from driftloop.core.rollout import SHADOW, Rollout, challenger_rollout


@dataclass(frozen=True)
class Champion:
    """A loaded model in one role (the name is the champion's, the first role)."""

    key: str
    version: str
    predictor: Predictor
    info: dict[str, Any]
    role: str = CHAMPION
    # how a second model takes part (the champion's is unused)
    rollout: Rollout = SHADOW


class Source(Protocol):
    role: str

    def key(self) -> str | None: ...

    def version(self, key: str) -> str: ...

    def load(self, key: str) -> Champion: ...


class LocalChampion:
    """data/models/<data set>/<role> -> versions/<v>: model.pkl and card.json."""

    def __init__(self, config: DriftloopConfig, models: Path, role: str = CHAMPION) -> None:
        self.config = config
        self.role = role
        self.link = models / config.data.name / role

    def key(self) -> str | None:
        return os.path.realpath(self.link) if (self.link / MODEL_FILE).is_file() else None

    def version(self, key: str) -> str:
        return Path(key).name

    def load(self, key: str) -> Champion:
        loaded = load_champion(Path(key))
        card = loaded.card
        info = {
            "name": self.config.model_name,
            "version": loaded.version,
            "run_id": card.get("run_id"),
            "trained_at": card.get("trained_at"),
            "promoted_at": card.get("promoted_at"),
            "holdout_metrics": card.get("holdout_metrics"),
            "model": card.get("model"),
            "data": card.get("data"),
            "source": str(loaded.folder),
        }
        predictor = _predictor(loaded.model, self.config)
        rollout = _rollout(self.role, card, None, self.config)
        return Champion(key, loaded.version, predictor, info, self.role, rollout)


class RegistryChampion:
    """The registry alias named after the role, of the configured registered model."""

    def __init__(self, config: DriftloopConfig, root: Path, role: str = CHAMPION) -> None:
        self.config = config
        self.role = role
        tracking.configure(config.tracking, root)

    def key(self) -> str | None:
        return tracking.alias_version(self.config.model_name, self.role)

    def version(self, key: str) -> str:
        return key

    def load(self, key: str) -> Champion:
        name = self.config.model_name
        model = tracking.download_model(name, key)
        info = {"name": name, "source": "registry", **tracking.version_info(name, key)}
        tags = tracking.version_tags(name, key) if self.role == CHALLENGER else None
        rollout = _rollout(self.role, None, tags, self.config)
        return Champion(key, key, _predictor(model, self.config), info, self.role, rollout)


def _predictor(model: Any, config: DriftloopConfig) -> Predictor:
    return Predictor(model, plan(config.features, config.data), config.data.problem)


def _rollout(
    role: str, card: dict[str, Any] | None, tags: dict[str, str] | None, config: DriftloopConfig
) -> Rollout:
    """A challenger's own rollout; the previous champion always scores in shadow."""
    return challenger_rollout(card, tags, config.rollout) if role == CHALLENGER else SHADOW


def source(config: DriftloopConfig, root: Path, models: Path, role: str = CHAMPION) -> Source:
    if config.serve.from_registry:
        return RegistryChampion(config, root, role)
    return LocalChampion(config, models, role)
