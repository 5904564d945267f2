"""The project as the controller sees it: where it reads and writes, the
commands it runs in it (dvc, git), and what their output says."""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from driftloop.config.schema import DriftloopConfig
from driftloop.core import lineage
from driftloop.errors import DriftloopError

log = logging.getLogger("driftloop")
GATE_REFUSED = "model gate refused the candidate"


DATA_GATE_FAILED = "data gate failed"


@dataclass(frozen=True)
class Paths:
    """Where the controller reads and writes, relative to the project root."""

    root: Path
    incoming: Path
    log_dir: Path

    @classmethod
    def of(cls, root: Path, config: DriftloopConfig) -> Paths:
        log_dir = Path(config.serve.prediction_log_dir)
        return cls(
            root,
            root / "data/incoming" / config.data.name,
            log_dir if log_dir.is_absolute() else root / log_dir,
        )

    @property
    def drift(self) -> Path:
        return self.root / "metrics/drift.json"

    @property
    def reports(self) -> Path:
        return self.root / "reports/loop"

    @property
    def decisions(self) -> Path:
        return self.reports / "decisions.jsonl"

    @property
    def alerts(self) -> Path:
        return self.reports / "alerts.log"

    @property
    def state(self) -> Path:
        return self.root / ".driftloop"

    @property
    def journal(self) -> Path:
        return self.state / "acting.json"


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
