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


def registry_champion(root: Path, data: str = "car_loan") -> str:
    """The version the data set's registered model calls champion."""
    return str(client(root).get_model_version_by_alias(f"driftloop-{data}", "champion").version)


def test_full_run_ends_with_a_registered_champion(done: Path) -> None:
    assert os.readlink(done / "data/models/car_loan/champion") == "versions/1"
    assert registry_champion(done) == "1"
    shown = sh(["dvc", "metrics", "show", "--json"], done).stdout
    candidate = json.loads(shown)
    evaluation = next(iter(candidate.values()))["data"]["metrics/eval.json"]["data"]["candidate"]
    assert evaluation["roc_auc"] >= 0.965
    card = json.loads((done / "data/models/car_loan/champion/card.json").read_text())
    assert card["model"] == "hgb" and card["version"] == "1"


def test_forced_train_leaves_status_clean(copy: Path) -> None:
    sh(["dvc", "repro", "-f", "-s", "train"], copy)
    assert "Data and pipelines are up to date." in sh(["dvc", "status"], copy).stdout


def test_worse_model_is_refused_and_the_champion_still_serves(copy: Path) -> None:
    before = (copy / "data/models/car_loan/champion/model.pkl").read_bytes()
    sh(["driftloop", "compose", "model=logreg"], copy)
    failed = sh(["dvc", "repro"], copy, check=False)
    text = failed.stdout + failed.stderr
    assert failed.returncode != 0 and "model gate refused the candidate" in text
    assert "roc_auc >= 0.95" in text and "FAIL" in text
    assert (copy / "data/models/car_loan/champion/model.pkl").read_bytes() == before
    assert registry_champion(copy) == "1"


def test_an_older_single_champion_is_adopted_by_its_data_set(copy: Path) -> None:
    """A project from before one champion per data set: its champion, versions and
    registered model move to the data set's on the first run, with one line."""
    mine, legacy = copy / "data/models/car_loan", copy / "data/models"
    for name in ("versions", "promoted.json", "champion"):
        os.replace(mine / name, legacy / name)
    client(copy).rename_registered_model("driftloop-car_loan", "driftloop")
    err = sh(["driftloop", "loop", "--once"], copy).stderr
    adopted = [line for line in err.splitlines() if "adopted the single champion" in line]
    assert len(adopted) == 1 and "registered model 'driftloop' is now 'driftloop-car_loan'" in err
    assert os.readlink(mine / "champion") == "versions/1" and registry_champion(copy) == "1"
    assert not (legacy / "champion").exists()
    assert "adopted" not in sh(["driftloop", "loop", "--once"], copy).stderr
