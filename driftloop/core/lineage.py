"""Where a model came from: the git commit and the DVC hashes of its inputs."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml


def git_commit(root: Path) -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def stage_outputs(lock: Path, stage: str) -> dict[str, str]:
    """The md5 of each output of a stage as recorded in dvc.lock ({} if unknown)."""
    if not lock.is_file():
        return {}
    content: dict[str, Any] = yaml.safe_load(lock.read_text()) or {}
    outs = content.get("stages", {}).get(stage, {}).get("outs", [])
    return {str(out["path"]): str(out.get("md5", "")) for out in outs}


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")
