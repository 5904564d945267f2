"""The rollout of a challenger: which records it answers, what the log keeps
of it, and (driftloop.core.trial) how it is judged.

The service writes, beside each answer, the role and version of the model that
answered and, when a second model scored the record off the answer's path
(a challenger in shadow, the champion beside a canary's answer, or the
previous champion while the new one is watched), that model's role, version,
outputs (prefixed ``shadow_``) and status. Each model's scoring time per row is
kept too, so the controller compares both on the same batches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from driftloop.config.schema import RolloutConfig, RolloutStrategy

# log columns the service adds for the rollout
ROLE = "model_role"
SHADOW_ROLE = "shadow_role"
SHADOW_VERSION = "shadow_version"
# ok | error (the second model failed on the batch) | skipped (it fell behind)
SHADOW_STATUS = "shadow_status"
MODEL_MS = "model_ms"  # the answering model's scoring time per row of its call, ms
SHADOW_MS = "shadow_ms"
SHADOW_PREFIX = "shadow_"
OK, ERROR, SKIPPED = "ok", "error", "skipped"


def shadow_column(output: str) -> str:
    """Where the second model's output ``output`` goes in the log."""
    return f"{SHADOW_PREFIX}{output}"


def in_canary(key: str, share: float) -> bool:
    """Whether the record with this key (its id, or its request's id) is
    answered by the canary: the same key always lands on the same side, and
    over many keys the share answered is ``share``."""
    if share <= 0:
        return False
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < share * 2**64


# --- how a second model takes part ----------------------------------------------------

# where promote writes a challenger's rollout: its card (local) and its registry tags
CARD_KEY = "rollout"
TAG_PREFIX = "driftloop.rollout."


@dataclass(frozen=True)
class Rollout:
    """How the second model takes part: in shadow, or answering a canary share."""

    strategy: RolloutStrategy
    canary_share: float

    @property
    def canary(self) -> bool:
        return self.strategy is RolloutStrategy.canary and self.canary_share > 0

    def to_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy.value, "canary_share": self.canary_share}


SHADOW = Rollout(RolloutStrategy.shadow, 0.0)


def challenger_rollout(
    card: Mapping[str, Any] | None, tags: Mapping[str, str] | None, default: RolloutConfig
) -> Rollout:
    """A challenger's rollout as promote recorded it (its card's ``rollout``, or
    its registry tags), else conf/rollout's. A challenger is never ``direct``
    (promote crowns such a candidate at once): should one say so, it is shadowed,
    which costs no user an answer."""
    found: dict[str, Any] = dict((card or {}).get(CARD_KEY) or {})
    for key, value in (tags or {}).items():
        if key.startswith(TAG_PREFIX):
            found.setdefault(key.removeprefix(TAG_PREFIX), value)
    strategy = _strategy(found.get("strategy"), default.strategy)
    share = _share(found.get("canary_share"), default.canary_share)
    if strategy is RolloutStrategy.direct:
        strategy = RolloutStrategy.shadow
    return Rollout(strategy, share if strategy is RolloutStrategy.canary else 0.0)


def _strategy(value: Any, default: RolloutStrategy) -> RolloutStrategy:
    try:
        return RolloutStrategy(value) if value is not None else default
    except ValueError:
        return default


def _share(value: Any, default: float) -> float:
    try:
        share = float(value) if value is not None else default
    except (TypeError, ValueError):
        return default
    return min(max(share, 0.0), 1.0)
