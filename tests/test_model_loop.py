"""Training and testing end to end: a registered champion, the gate refusing a
worse model, rollback, and MLflow on a real `mlflow server` over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from stages.host import free_port
from tests.conftest import BIN, env, sh

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


def test_rollback_moves_the_champion_back(copy: Path) -> None:
    sh(["driftloop", "compose", "model=rf"], copy)
    sh(["dvc", "repro"], copy)
    assert os.readlink(copy / "data/models/champion") == "versions/2"
    done = sh(["driftloop", "rollback"], copy)
    assert "is now version 1 (was 2)" in done.stderr
    assert os.readlink(copy / "data/models/champion") == "versions/1"
    assert str(client(copy).get_model_version_by_alias("driftloop", "champion").version) == "1"
    again = sh(["driftloop", "rollback"], copy, check=False)
    assert again.returncode == 1 and "nothing to roll back to" in again.stderr


@pytest.fixture()
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    args = [
        str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
        "--artifacts-destination", str(tmp_path / "artifacts"),
    ]  # fmt: skip
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        args, env=env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "server.log").read_text()) from None
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def test_train_and_promote_against_a_real_mlflow_server(copy: Path, mlflow_server: str) -> None:
    sh(["driftloop", "compose", f"tracking.uri={mlflow_server}"], copy)
    sh(["dvc", "repro"], copy)
    remote = MlflowClient(tracking_uri=mlflow_server)
    champion = remote.get_model_version_by_alias("driftloop", "champion")
    run = remote.get_run(champion.run_id)
    assert run.data.tags["driftloop.stage"] == "train"
    assert run.data.params["model.name"] == "hgb"
    assert "fit_seconds" in run.data.metrics
    assert any(tag.startswith("dvc.data/features/train") for tag in run.data.tags)
    assert os.readlink(copy / "data/models/champion") == f"versions/{champion.version}"
