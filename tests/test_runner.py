"""Stage progress: a redrawn line on a terminal, plain lines elsewhere, one summary."""

from __future__ import annotations

import io
import logging
import os
import pty
import subprocess
import time
from pathlib import Path

import pytest

from driftloop.core import runner
from tests.conftest import env


def test_plain_progress_logs_each_step_and_the_summary(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP_PROGRESS", "plain")
    with caplog.at_level(logging.INFO, logger="driftloop"), runner.timed("stage") as say:
        say.step("reading")
        say("12 rows")
        say("3 columns")
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == "stage: reading"
    assert messages[1].startswith("stage: 12 rows; 3 columns (") and messages[1].endswith(" s)")


def test_a_failing_stage_prints_no_summary(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP_PROGRESS", "plain")
    logs = caplog.at_level(logging.INFO, logger="driftloop")
    with logs, pytest.raises(ValueError), runner.timed("stage") as say:
        say("half")
        raise ValueError("bad input")
    assert caplog.records == []


def test_the_live_line_is_redrawn_with_the_time_and_wiped_at_the_end() -> None:
    stream = io.StringIO()
    progress = runner.Progress("featurize", True, stream)
    progress.step("starting Spark")
    time.sleep(1.2)  # the ticker redraws twice a second
    progress.step("writing the splits")
    progress.stop()
    text = stream.getvalue()
    assert text.count("\r\x1b[Kfeaturize: starting Spark ... ") >= 2
    assert "\r\x1b[Kfeaturize: writing the splits ... 1 s" in text
    assert text.endswith("\r\x1b[K") and "\n" not in text


@pytest.mark.parametrize(
    ("variables", "expected"),
    [({"DRIFTLOOP_PROGRESS": "live"}, True), ({"DRIFTLOOP_PROGRESS": "plain"}, False)],
)
def test_the_mode_can_be_forced(
    variables: dict[str, str], expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    assert runner.live_progress() is expected


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
