"""The champion: the model that serves. data/models/champion is a symlink to
data/models/versions/<v>, switched with one atomic rename, and the MLflow
registry alias 'champion' points at the same version."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from driftloop.core.model import CARD_FILE, MODEL_FILE
from driftloop.errors import DriftloopError


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
