"""The `driftloop` command: one clear line and a non-zero exit on bad input."""

from __future__ import annotations


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]
