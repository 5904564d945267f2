"""`driftloop status` on a fully run project and from a non-activated environment."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from driftloop.controller import loop
from tests.conftest import BIN, sh


@pytest.mark.slow
def test_status_on_a_fully_run_project(copy: Path) -> None:
    shown = sh(["driftloop", "status"], copy).stdout
    card = json.loads((copy / "data/models/car_loan/champion/card.json").read_text())
    assert f"version {card['version']}: hgb on car_loan, trained {card['trained_at']}" in shown
    assert "holdout: " in shown and "roc_auc 0." in shown
    assert "clean: every stage is up to date" in shown
    assert "the controller would act on batch" in shown
    # after a controller pass the decision is acted on, and status says so
    sh(["driftloop", "loop", "--once"], copy)
    after = json.loads(sh(["driftloop", "status", "--json"], copy).stdout)
    assert after["next"].startswith("nothing: batch")
    assert after["last"]["drift_digest"] == loop.digest(copy / "metrics/drift.json")


@pytest.mark.slow
def test_status_runs_from_the_environment_without_activating_it(done: Path) -> None:
    """`.venv/bin/driftloop status` with the venv not on PATH still finds its dvc."""
    bare = {**os.environ, "PATH": "/usr/bin:/bin"}
    shown = subprocess.run(
        [str(BIN / "driftloop"), "status"], cwd=done, env=bare, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    assert "clean: every stage is up to date" in shown.stdout
