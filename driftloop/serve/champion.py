"""Where the service gets its model, and how it notices a new champion.

Two sources: the local champion (data/models/<data set>/champion, a symlink that promote
and rollback switch with one rename) or the registry alias ``champion``. Each
has a cheap ``key`` (the link target, the alias's version) that the service
polls; a changed key means load the new model, check it, then swap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from driftloop.adapters import tracking
from driftloop.config.schema import DriftloopConfig
from driftloop.core.champion import load_champion
from driftloop.core.model import MODEL_FILE
from driftloop.core.plan import plan
from driftloop.core.predictor import Predictor


@dataclass(frozen=True)
class Champion:
    key: str
    version: str
    predictor: Predictor
    info: dict[str, Any]


class Source(Protocol):
    def key(self) -> str | None: ...

    def load(self, key: str) -> Champion: ...


class LocalChampion:
    """data/models/<data set>/champion -> versions/<v>: model.pkl and card.json."""

    def __init__(self, config: DriftloopConfig, models: Path) -> None:
        self.config = config
        self.link = models / config.data.name / "champion"

    def key(self) -> str | None:
        return os.path.realpath(self.link) if (self.link / MODEL_FILE).is_file() else None

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
        return Champion(key, loaded.version, _predictor(loaded.model, self.config), info)


class RegistryChampion:
    """The registry's ``champion`` alias of the configured registered model."""

    def __init__(self, config: DriftloopConfig, root: Path) -> None:
        self.config = config
        tracking.configure(config.tracking, root)

    def key(self) -> str | None:
        return tracking.alias_version(self.config.model_name, tracking.CHAMPION)

    def load(self, key: str) -> Champion:
        name = self.config.model_name
        model = tracking.download_model(name, key)
        info = {"name": name, "source": "registry", **tracking.version_info(name, key)}
        return Champion(key, key, _predictor(model, self.config), info)


def _predictor(model: Any, config: DriftloopConfig) -> Predictor:
    return Predictor(model, plan(config.features, config.data), config.data.problem)


def source(config: DriftloopConfig, root: Path, models: Path) -> Source:
    if config.serve.from_registry:
        return RegistryChampion(config, root)
    return LocalChampion(config, models)
