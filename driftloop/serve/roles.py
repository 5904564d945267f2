"""The models one data set's service holds: the champion, which answers, and a
second one that scores beside it: the challenger when there is one, else the
previous champion during its watch.

Each role is loaded and hot-reloaded by its own key, as the champion always
was: a new key is loaded and probed in a thread, then swapped in between two
model calls. A model that fails to load or the probe is refused (one log line
naming its role, version and why; a counter by role) and its key is not tried
again; the champion keeps serving. A role whose link (or alias) disappeared is
unloaded on the next check.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from driftloop.core.champion import CHALLENGER, CHAMPION, PREVIOUS
from driftloop.core.predictor import Predictor
from driftloop.core.rollout import SHADOW
from driftloop.serve.champion import Champion, Source
from driftloop.serve.metrics import ModelMetrics

log = logging.getLogger("driftloop.serve")
# which linked model scores beside the champion: the first of these that loads
SECOND = (CHALLENGER, PREVIOUS)


class Roles:
    def __init__(
        self,
        sources: dict[str, Source],
        probe: Callable[[Predictor], None],
        loaded: Callable[[Champion], None],
        metrics: ModelMetrics,
    ) -> None:
        self.sources = sources
        self.probe = probe
        self.loaded = loaded  # told of every model before it is swapped in
        self.metrics = metrics
        self.champion: Champion | None = None
        self.second: Champion | None = None
        self._failed: dict[str, str] = {}  # role -> the key refused last

    async def refresh(self) -> bool:
        """Load what changed; True when the champion was swapped."""
        replaced = self.champion
        swapped = await self._refresh_champion()
        await self._refresh_second(replaced if swapped else None)
        return swapped

    # --- the champion ---------------------------------------------------------------

    async def _refresh_champion(self) -> bool:
        key = await asyncio.to_thread(self.sources[CHAMPION].key)
        current = self.champion
        if key is None or key == self._failed.get(CHAMPION) or (current and current.key == key):
            return False
        loaded = await self._try(CHAMPION, key)
        if loaded is None:
            self.metrics.reloaded("failed")
            return False
        self.champion = loaded
        self.metrics.reloaded("loaded")
        self.metrics.serving(loaded.version)
        self.metrics.role(CHAMPION, loaded.version)
        log.info("serve: now serving version %s (%s)", loaded.version, loaded.info.get("source"))
        return True

    # --- the second model -------------------------------------------------------------

    async def _refresh_second(self, replaced: Champion | None) -> None:
        keys = await asyncio.to_thread(self._second_keys)
        current = self.second
        for role, key in keys.items():
            if key == self._failed.get(role):
                continue
            if current is not None and (current.role, current.key) == (role, key):
                return
            loaded = await self._try(role, key, replaced)
            if loaded is not None:
                self._swap_second(loaded, keys)
                return
        if current is not None:
            self._swap_second(None, keys)

    def _second_keys(self) -> dict[str, str]:
        """The linked second roles, in order of precedence; a role that points at
        the champion itself (a move half done) is left out: nothing to compare."""
        champion = self.champion.key if self.champion else None
        keys = {role: self.sources[role].key() for role in SECOND}
        return {role: key for role, key in keys.items() if key is not None and key != champion}

    def _swap_second(self, new: Champion | None, keys: dict[str, str]) -> None:
        old, self.second = self.second, new
        if old is not None:
            self.metrics.role(old.role, None)
            if keys.get(old.role) == old.key and new is not None:
                why = f"the {new.role} (version {new.version}) takes its place"
            else:
                why = f"it no longer has the role ({old.role} link or alias gone or moved)"
            log.info("serve: unloaded the %s (version %s): %s", old.role, old.version, why)
        if new is not None:
            self.metrics.role(new.role, new.version)
            champion = self.champion.version if self.champion else "none yet"
            how = "in shadow" if not new.rollout.canary else (
                f"as a canary answering {new.rollout.canary_share:.1%} of the records"
            )  # fmt: skip
            log.info(
                "serve: the %s (version %s, %s) scores beside champion %s %s",
                new.role, new.version, new.info.get("source"), champion, how,
            )  # fmt: skip

    # --- loading ------------------------------------------------------------------------

    async def _try(self, role: str, key: str, replaced: Champion | None = None) -> Champion | None:
        """The model of ``role`` at ``key``, loaded and probed; None when refused."""
        reused = self._reuse(role, key, replaced)
        try:
            if reused is None:
                loaded = await asyncio.to_thread(self._load, role, key)
            else:
                await asyncio.to_thread(self.loaded, reused)
                loaded = reused
        except Exception as exc:
            self._refuse(role, key, exc)
            return None
        self._failed.pop(role, None)
        return loaded

    def _reuse(self, role: str, key: str, replaced: Champion | None) -> Champion | None:
        """The champion a promotion replaced, as the previous one: not read and
        probed again. A new champion is read again (its card now says when it was
        promoted), and so is a challenger (its rollout comes from its card or tags)."""
        if role != PREVIOUS:
            return None
        for model in (self.champion, self.second, replaced):
            if model is not None and model.key == key:
                return replace(model, role=role, rollout=SHADOW)
        return None

    def _load(self, role: str, key: str) -> Champion:
        loaded = self.sources[role].load(key)
        self.probe(loaded.predictor)
        self.loaded(loaded)
        return loaded

    def _refuse(self, role: str, key: str, exc: Exception) -> None:
        self._failed[role] = key
        self.metrics.refused(role)
        version = self.sources[role].version(key)
        if role == CHAMPION:
            then = "keeping the old one" if self.champion else "no model is served yet"
        else:
            then = "the champion keeps serving"
        log.error(
            "serve: refused the %s, version %s (%s): %s: %s; %s",
            role, version, key, type(exc).__name__, exc, then,
        )  # fmt: skip

    # --- what /model shows ------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """Each role's model info (None: no model loaded in that role)."""
        out: dict[str, Any] = {CHAMPION: None, CHALLENGER: None, PREVIOUS: None}
        for model in (self.champion, self.second):
            if model is not None:
                out[model.role] = describe(model)
        return out


def describe(model: Champion) -> dict[str, Any]:
    return {**model.info, "compiled_preprocessing": model.predictor.compiled}
