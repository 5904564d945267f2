"""The champion: the model that serves. Each data set has its own models
folder, data/models/<data set>: its champion is a symlink to versions/<v>
there, switched with one atomic rename, and the MLflow registry alias
'champion' of the data set's registered model points at the same version. A
champion can therefore only ever meet models of its own data set."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftloop.core.model import CARD_FILE, MODEL_FILE
from driftloop.core.outputs import read_json
from driftloop.errors import DriftloopError

MODELS = Path("data/models")
# the composition a version was trained with, kept beside it: what serves a
# data set that is not the composed one reads it
PARAMS_FILE = "params.yaml"
# what a project kept in data/models itself when it had a single champion
LEGACY = ("versions", "promoted.json", "champion")
# the links of a data set's models folder, each to versions/<v>: the champion
# answers; a challenger is on trial beside it; the previous champion keeps
# scoring in shadow for a while after it was replaced
CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
ROLES = (CHAMPION, CHALLENGER, PREVIOUS)


def models_folder(root: Path, data_name: str) -> Path:
    """data/models/<data set>: its candidate, versions, champion and promoted.json."""
    return root / MODELS / data_name


def adopt_legacy(models: Path) -> str | None:
    """Move the single champion of an older layout (data/models/champion,
    versions/, promoted.json) into ``models``, its data set's folder, unless
    its card names another data set; the version adopted, or None.

    The link is moved last, and it is relative (versions/<v>): it never points
    at a folder that is not there."""
    parent = models.parent
    link = parent / "champion"
    if not link.is_symlink() or (models / "champion").is_symlink():
        return None
    card = read_json(link / CARD_FILE) or {}
    if card.get("data", models.name) != models.name:
        return None  # another data set's champion: that data set adopts it
    models.mkdir(parents=True, exist_ok=True)
    for name in LEGACY:
        if (parent / name).exists() or (parent / name).is_symlink():
            os.replace(parent / name, models / name)
    return current_version(models)


def current_version(models: Path) -> str | None:
    return role_version(models, CHAMPION)


def role_version(models: Path, role: str) -> str | None:
    """The version a role's link points at (None: nobody has the role)."""
    link = models / role
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
