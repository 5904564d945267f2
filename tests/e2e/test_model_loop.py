"""Training and testing end to end: a registered champion and the gate refusing
a worse model. Switching the model and rolling back follow the how-tos
(tests/e2e/test_howtos.py); MLflow on a real server is tests/e2e/test_tracking_server.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import sh

pytestmark = pytest.mark.slow


def client(root: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")


def test_full_run_ends_with_a_registered_champion(done: Path) -> None:
    assert os.readlink(done / "data/models/champion") == "versions/1"
    assert str(client(done).get_model_version_by_alias("driftloop", "champion").version) == "1"
    shown = sh(["dvc", "metrics", "show", "--json"], done).stdout
    candidate = json.loads(shown)
    evaluation = next(iter(candidate.values()))["data"]["metrics/eval.json"]["data"]["candidate"]
    assert evaluation["roc_auc"] >= 0.965
    card = json.loads((done / "data/models/champion/card.json").read_text())
    assert card["model"] == "hgb" and card["version"] == "1"


def test_forced_train_leaves_status_clean(copy: Path) -> None:
    sh(["dvc", "repro", "-f", "-s", "train"], copy)
    assert "Data and pipelines are up to date." in sh(["dvc", "status"], copy).stdout


def test_worse_model_is_refused_and_the_champion_still_serves(copy: Path) -> None:
    before = (copy / "data/models/champion/model.pkl").read_bytes()
    sh(["driftloop", "compose", "model=logreg"], copy)
    failed = sh(["dvc", "repro"], copy, check=False)
    text = failed.stdout + failed.stderr
    assert failed.returncode != 0 and "model gate refused the candidate" in text
    assert "roc_auc >= 0.95" in text and "FAIL" in text
    assert (copy / "data/models/champion/model.pkl").read_bytes() == before
    assert str(client(copy).get_model_version_by_alias("driftloop", "champion").version) == "1"
