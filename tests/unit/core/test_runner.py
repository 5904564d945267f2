"""Stage progress: a redrawn line on a terminal, plain lines elsewhere, one summary."""

from __future__ import annotations

import io
import logging
import time

import pytest

from driftloop.core import runner


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
