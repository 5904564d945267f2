"""The project as the controller sees it: where it reads and writes, the
commands it runs in it (dvc, git), and what their output says."""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftloop.config.schema import DriftloopConfig
from driftloop.core import lineage
from driftloop.core.champion import models_folder
from driftloop.errors import DriftloopError

log = logging.getLogger("driftloop")
GATE_REFUSED = "model gate refused the candidate"


DATA_GATE_FAILED = "data gate failed"


@dataclass(frozen=True)
class Paths:
    """Where the controller reads and writes, relative to the project root."""

    root: Path
    name: str
    incoming: Path
    log_dir: Path
    models: Path
    # the Hydra overrides that compose this data set when the project's
    # composition is another one (queued experiments need them); else empty
    composition: tuple[str, ...] = ()
    # where the data set's pipeline outputs are: the project (None), or the
    # copy kept while the project is composed for another data set
    pipeline: Path | None = None

    @classmethod
    def of(cls, root: Path, config: DriftloopConfig) -> Paths:
        log_dir = Path(config.serve.prediction_log_dir)
        return cls(
            root,
            config.data.name,
            root / "data/incoming" / config.data.name,
            (log_dir if log_dir.is_absolute() else root / log_dir) / config.data.name,
            models_folder(root, config.data.name),
        )

    @property
    def drift(self) -> Path:
        return (self.pipeline or self.root) / "metrics/drift.json"

    @property
    def reports(self) -> Path:
        return self.root / "reports/loop" / self.name

    @property
    def decisions(self) -> Path:
        return self.reports / "decisions.jsonl"

    @property
    def alerts(self) -> Path:
        return self.reports / "alerts.log"

    @property
    def state(self) -> Path:
        return self.root / ".driftloop" / self.name

    @property
    def journal(self) -> Path:
        return self.state / "acting.json"


@contextmanager
def locked(state: Path, name: str = "loop.lock", wait: bool = False) -> Iterator[None]:
    """Hold state/<name> for the block; another holder is an error (or, with
    ``wait``, waited for).

    An flock dies with its process, so a killed controller never leaves a
    stale lock behind."""
    state.mkdir(parents=True, exist_ok=True)
    path = state / name
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise DriftloopError(
                f"another controller is running (pid {holder}, lock {path}); "
                "only one may act at a time"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def append_line(path: Path, line: str) -> None:
    """Append one line and fsync: the log is the record of what was done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line.rstrip("\n") + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def run(
    args: list[str], root: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A command in the project (dvc, git), its output kept for the error."""
    log.info("$ %s", " ".join(args))
    done = subprocess.run(args, cwd=root, capture_output=True, text=True, env=env)
    if check and done.returncode != 0:
        output = tail(done.stdout + done.stderr)
        raise DriftloopError(f"`{' '.join(args)}` failed ({done.returncode}):\n{output}")
    return done


def repro(root: Path, *targets: str) -> tuple[int, str]:
    done = run(["dvc", "repro", *targets], root, check=False)
    return done.returncode, done.stdout + done.stderr


def gate_blocked(paths: Paths, output: str, what: str) -> dict[str, Any] | None:
    """New labelled data broke an expectation: an alert and an outcome, not a
    retry (the next pass would fail the same way until a person looks)."""
    if DATA_GATE_FAILED not in output:
        return None
    reason = next(line for line in output.splitlines() if DATA_GATE_FAILED in line).strip()
    append_line(paths.alerts, f"{lineage.now()} {what.upper()} BLOCKED {reason}")
    return {"done": f"{what} blocked by the data gate", "promoted": False, "reason": reason}


def tail(output: str) -> str:
    return "\n".join(output.strip().splitlines()[-15:])
