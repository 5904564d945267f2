"""Stage progress of a real stage on a terminal and in CI."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import pytest

from tests.conftest import env


def run_ingest(done: Path, out: Path, terminal: bool, extra: dict[str, str]) -> str:
    """`driftloop ingest` as DVC runs it, its stderr a terminal or a pipe."""
    args = [
        "driftloop", "ingest", "--params", "params.yaml", "--source", "data/source",
        "--incoming", "data/incoming/car_loan", "--out", str(out),
    ]  # fmt: skip
    variables = {**env(), **extra}
    variables.pop("DRIFTLOOP_PROGRESS", None)
    if not terminal:
        return subprocess.run(
            args, cwd=done, env=variables, capture_output=True, text=True, check=True
        ).stderr
    leader, follower = pty.openpty()
    process = subprocess.Popen(args, cwd=done, env=variables, stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the follower closed: the stage ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=300) == 0, b"".join(chunks)
    return b"".join(chunks).decode()


@pytest.mark.slow
def test_a_stage_on_a_terminal_draws_one_line_and_in_ci_prints_plain_lines(
    done: Path, tmp_path: Path
) -> None:
    term = run_ingest(done, tmp_path / "term.parquet", True, {"TERM": "xterm", "CI": ""})
    assert "\r\x1b[Kingest: reading the source (nannyml)" in term
    summary = term.rsplit("\r\x1b[K", 1)[1]
    assert summary.startswith("ingest: ") and summary.count("\n") == 1, term

    ci = run_ingest(done, tmp_path / "ci.parquet", True, {"TERM": "xterm", "CI": "true"})
    piped = run_ingest(done, tmp_path / "pipe.parquet", False, {})
    for plain in (ci, piped):
        lines = plain.replace("\r\n", "\n").splitlines()
        assert "\r" not in plain.replace("\r\n", "\n")
        assert lines[0].startswith("ingest: reading the source (nannyml)"), plain
        assert lines[-1].startswith("ingest: ") and lines[-1].endswith(" s)"), plain
