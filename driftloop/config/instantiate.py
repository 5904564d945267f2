"""Objects built from config nodes: a typed YAML file read into its schema, and a
Hydra ``_target_`` node instantiated, each error naming the file and the key."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from driftloop.errors import ConfigError

T = TypeVar("T")


def load_typed(schema: type[T], path: Path) -> T:
    """A YAML file merged onto the dataclass ``schema``; a wrong key or type names it."""
    try:
        merged = OmegaConf.merge(OmegaConf.structured(schema), OmegaConf.load(path))
        loaded: T = OmegaConf.to_object(merged)  # type: ignore[assignment]
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{path}: {exc}".splitlines()[0]) from exc
    return loaded


def instantiate(node: dict[str, Any], where: str) -> Any:
    """The object a ``_target_`` node names, built with its keys as arguments."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    try:
        return hydra_instantiate(node, _convert_="all")
    except InstantiationException as exc:
        raise ConfigError(f"{where}: {_instantiation_reason(exc)}") from exc


def _instantiation_reason(exc: Exception) -> str:
    text = str(exc)
    unexpected = re.search(r"unexpected keyword argument '(\w+)'", text)
    if unexpected:
        return f"key {unexpected.group(1)}: the estimator takes no such hyperparameter"
    located = re.search(r"Error locating target '([^']+)'", text)
    if located:
        return f"_target_: cannot import '{located.group(1)}'"
    return text.strip().splitlines()[0]
