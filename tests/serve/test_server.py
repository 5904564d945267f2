"""The service as a real uvicorn process: answers, a lossless prediction log
through SIGTERM, and hot reload under load with zero failed requests."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from stages.promote import point_champion
from tests.conftest import ROOT, sh
from tests.serve import load
from tests.serve.conftest import get
from tests.serve.test_app import EXAMPLE

pytestmark = pytest.mark.slow


def test_serve_answers_and_reports(server_factory: Any, models: Path, tmp_path: Path) -> None:
    server = server_factory(ROOT, models, tmp_path / "log")
    assert get(f"{server.url}/health") == (200, {"status": "ok"})
    status, model = get(f"{server.url}/model")
    assert status == 200 and model["version"] == "1"
    stop = threading.Event()
    tally = load.run(server.port, EXAMPLE, threads=2, stop=stop, limit=20)
    assert tally.ok == 40 and not tally.errors
    server.terminate()


def test_every_answered_prediction_is_logged_after_sigterm(
    server_factory: Any, models: Path, tmp_path: Path
) -> None:
    log_dir = tmp_path / "log"
    server = server_factory(ROOT, models, log_dir)
    records = [EXAMPLE] * 3
    stop = threading.Event()
    tally = load.run(server.port, records, threads=8, stop=stop, limit=250)
    assert not tally.errors and tally.ok == 2000
    server.terminate()  # the last micro-batches are flushed on the way out
    table = pq.read_table(log_dir)
    assert table.num_rows == 3 * 2000
    assert len(table.column("request_id").unique()) == 2000
    assert not list(log_dir.glob(".*.tmp"))


def test_two_workers_write_one_log_without_losing_rows(
    server_factory: Any, models: Path, tmp_path: Path
) -> None:
    log_dir = tmp_path / "log"
    server = server_factory(ROOT, models, log_dir, "--workers", "2")
    records = [EXAMPLE] * 2
    tally = load.run(server.port, records, 6, threading.Event(), limit=150, keepalive=False)
    assert not tally.errors and tally.ok == 900
    server.terminate()
    table = pq.read_table(log_dir)
    assert table.num_rows == 2 * 900
    writers = {name.name.split("-")[2] for name in log_dir.glob("part-*.parquet")}
    assert len(writers) == 2  # both worker processes wrote their own files (900 connections)


def test_sigterm_during_load_loses_no_answered_prediction(
    server_factory: Any, models: Path, tmp_path: Path
) -> None:
    log_dir = tmp_path / "log"
    server = server_factory(ROOT, models, log_dir)
    with load.Background(server.port, EXAMPLE, threads=6) as generator:
        time.sleep(3.0)
        server.terminate()  # while requests are in flight
    tally = generator.tally
    logged = set(pq.read_table(log_dir).column("request_id").to_pylist())
    assert tally.ok > 100
    assert set(tally.request_ids) <= logged  # every answer the clients got is in the log


def test_hot_reload_under_load_without_errors(
    server_factory: Any, models: Path, tmp_path: Path
) -> None:
    server = server_factory(ROOT, models, tmp_path / "log")
    with load.Background(server.port, EXAMPLE, threads=4) as generator:
        time.sleep(2.0)
        point_champion(models, "2")  # what promote and rollback do
        time.sleep(4.0)
    tally = generator.tally
    assert not tally.errors, tally.errors[:5]
    for answers in tally.versions:
        seen = [version for _, version in answers]
        assert seen[0] == "1" and seen[-1] == "2"
        first_new = seen.index("2")
        assert set(seen[first_new:]) == {"2"}  # never back to the old model
    assert get(f"{server.url}/model")[1]["version"] == "2"
    server.terminate()


def test_serve_after_make_run_picks_up_a_real_promotion(server_factory: Any, copy: Path) -> None:
    """The project after `make run`: serve its champion, then promote a new model
    with `dvc repro` while requests keep coming."""
    server = server_factory(copy, copy / "data/models", copy / "data/prediction_log")
    status, model = get(f"{server.url}/model")
    assert status == 200 and model["version"] == "1"
    assert model["holdout_metrics"]["roc_auc"] > 0.9 and model["trained_at"]
    with load.Background(server.port, EXAMPLE, threads=2) as generator:
        sh(["driftloop", "compose", "model=rf"], copy)
        sh(["dvc", "repro"], copy)
        time.sleep(3.0)
    tally = generator.tally
    assert not tally.errors, tally.errors[:5]
    assert all(answers[-1][1] == "2" for answers in tally.versions)
    assert get(f"{server.url}/model")[1]["model"] == "rf"
    server.terminate()
    logged = pq.read_table(copy / "data/prediction_log")
    assert logged.num_rows == tally.ok
    assert set(logged.column("model_version").to_pylist()) == {"1", "2"}


def test_serve_from_the_registry_alias(copy: Path) -> None:
    from fastapi.testclient import TestClient

    from stages.config.compose import load
    from stages.serve.app import create_app
    from stages.serve.service import Settings

    sh(["driftloop", "compose", "serve.from_registry=true"], copy)
    config = load(copy / "params.yaml")
    settings = Settings(config, copy, copy / "no-local-models", copy / "data/prediction_log")
    with TestClient(create_app(settings)) as client:
        model = client.get("/model").json()
        assert model["source"] == "registry" and model["version"] == "1"
        assert model["holdout_metrics"]["roc_auc"] > 0.9
        assert client.post("/predict", json=EXAMPLE).json()["model_version"] == "1"
