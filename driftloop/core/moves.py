"""Moving a data set's roles: a challenger crowned or rejected, a champion
rolled back, the watch over a replaced champion ended.

A move touches the registry (aliases and tags) and the local links. Each step
is idempotent and a move is described by a small record (``Move``) the caller
journals before it starts, so a process killed half-way leaves a state the
next run finishes by applying the same move again. Links go last: a running
service follows the local links, so it sees the old roles or the new ones.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from driftloop.adapters import tracking
from driftloop.config.schema import DriftloopConfig
from driftloop.core import lineage
from driftloop.core.champion import CHALLENGER, CHAMPION, PREVIOUS
from driftloop.core.model import CARD_FILE
from driftloop.core.outputs import read_json, write_json
from driftloop.core.promotion import clear, point

log = logging.getLogger(__name__)
KINDS = ("promote", "reject", "rollback", "end_watch")


@dataclass(frozen=True)
class Move:
    # promote: challenger ``version`` becomes champion, champion ``other`` previous;
    # reject: challenger ``version`` leaves; rollback: previous ``version`` is
    # champion again, champion ``other`` leaves; end_watch: previous ``version`` leaves
    kind: str
    version: str
    other: str | None
    reason: str
    at: str

    @classmethod
    def of(cls, kind: str, version: str, other: str | None, reason: str) -> Move:
        if kind not in KINDS:
            raise ValueError(f"move '{kind}' is not one of {', '.join(KINDS)}")
        return cls(kind, version, other, reason, lineage.now())

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Move:
        return cls(**{key: raw.get(key) for key in cls.__dataclass_fields__})  # type: ignore[arg-type]


def apply(config: DriftloopConfig, root: Path, models: Path, move: Move) -> None:
    """Carry out ``move`` in the registry, then on disk (every step idempotent)."""
    tracking.configure(config.tracking, root)
    name = config.model_name
    steps = {"promote": _promote, "reject": _reject, "rollback": _rollback, "end_watch": _end}
    steps[move.kind](name, models, move)
    log.info("%s: %s version %s (%s)", name, move.kind, move.version, move.reason)


def _promote(name: str, models: Path, move: Move) -> None:
    tags = {"driftloop.promoted_at": move.at, "driftloop.promotion": move.reason}
    if move.other is not None:
        tracking.set_alias(name, PREVIOUS, move.other)
        tags["driftloop.previous_champion"] = move.other
    tracking.tag_version(name, move.version, tags)
    tracking.set_alias(name, CHAMPION, move.version)
    _unalias(name, CHALLENGER, move.version)
    _card(models, move.version, {"promoted_at": move.at})
    if move.other is not None:
        point(models, PREVIOUS, move.other)
    point(models, CHAMPION, move.version)
    clear(models, CHALLENGER, move.version)


def _reject(name: str, models: Path, move: Move) -> None:
    tracking.tag_version(name, move.version, {"driftloop.rejected": move.reason})
    _unalias(name, CHALLENGER, move.version)
    clear(models, CHALLENGER, move.version)


def _rollback(name: str, models: Path, move: Move) -> None:
    if move.other is not None:
        tracking.tag_version(name, move.other, {"driftloop.rolled_back": move.reason})
    tracking.set_alias(name, CHAMPION, move.version)
    _unalias(name, PREVIOUS, move.version)
    point(models, CHAMPION, move.version)
    clear(models, PREVIOUS, move.version)


def _end(name: str, models: Path, move: Move) -> None:
    _unalias(name, PREVIOUS, move.version)
    clear(models, PREVIOUS, move.version)


def _unalias(name: str, alias: str, version: str) -> None:
    if tracking.alias_version(name, alias) == version:
        tracking.delete_alias(name, alias)


def _card(models: Path, version: str, extra: dict[str, Any]) -> None:
    path = models / "versions" / version / CARD_FILE
    card = read_json(path)
    if card is not None and any(card.get(k) != v for k, v in extra.items()):
        write_json(path, {**card, **extra})
