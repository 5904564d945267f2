"""The service as a real uvicorn process: answers, a lossless prediction log
through SIGTERM, hot reload under load with zero failed requests, and the same
with two worker processes: exact merged metrics, one lossless log, every worker
on the new champion."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from driftloop.core.champion import CHALLENGER
from driftloop.core.promotion import point, point_champion
from driftloop.core.rollout import in_canary
from tests.conftest import ROOT, sh
from tests.unit.serve import load
from tests.unit.serve.conftest import get, scrape
from tests.unit.serve.test_app import EXAMPLE

pytestmark = pytest.mark.slow
PREDICT = 'path="/predict"'
# one worker: no pid label
INFO = re.compile(r'driftloop_model_info\{data="car_loan",(?:pid="(\d+)",)?version="([^"]*)"\}')
DATA = '{data="car_loan"}'
# seconds from pointing a new champion until every worker serves it: the poll
# interval (serve.reload_seconds, 1 s) plus loading and probing, on a busy machine
RELOAD_BOUND = 15.0


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
    table = pq.read_table(log_dir / "car_loan")
    assert table.num_rows == 3 * 2000
    assert len(table.column("request_id").unique()) == 2000
    assert not list((log_dir / "car_loan").glob(".*.tmp"))


def test_two_workers_count_and_log_every_request(
    server_factory: Any, models: Path, tmp_path: Path
) -> None:
    log_dir = tmp_path / "log"
    server = start_workers(server_factory, models, log_dir, 2)
    records = [EXAMPLE] * 2
    tally = load.run(server.port, records, 6, threading.Event(), limit=150, keepalive=False)
    assert not tally.errors and tally.ok == 900
    rows = 2 * 900
    logged = f"driftloop_prediction_log_rows_total{DATA}"
    wait_for(lambda: scrape(server.url).get(logged) == rows, timeout=20)
    for _ in range(6):  # new connections: either worker answers, each sees the same totals
        metrics = scrape(server.url)
        assert_counts(metrics, requests=900, rows=rows)
        assert metrics[logged] == rows
        assert sorted(model_info(metrics).values()) == ["1", "1"]
    out = server.terminate()
    assert out.count("Application shutdown complete.") == 2
    table = pq.read_table(log_dir / "car_loan")
    assert table.num_rows == rows
    assert len(table.column("request_id").unique()) == 900
    # both workers wrote their own files into the one log
    assert writers(log_dir / "car_loan") == set(model_info(metrics))


def assert_counts(metrics: dict[str, float], requests: int, rows: int) -> None:
    """Every /predict request counted once over all workers; histograms agree."""
    counted = {k for k in metrics if k.startswith("driftloop_requests_total{") and PREDICT in k}
    assert counted == {f'driftloop_requests_total{{{PREDICT},status="200"}}'}
    assert metrics[f'driftloop_requests_total{{{PREDICT},status="200"}}'] == requests
    assert metrics[f"driftloop_request_seconds_count{{{PREDICT}}}"] == requests
    buckets = [
        v for k, v in metrics.items() if k.startswith("driftloop_request_seconds_bucket{")
        and PREDICT in k
    ]  # fmt: skip
    assert buckets == sorted(buckets) and buckets[-1] == requests
    assert metrics[f"driftloop_batch_rows_sum{DATA}"] == rows
    calls = metrics[f"driftloop_batch_rows_count{DATA}"]
    every = metrics['driftloop_batch_rows_bucket{data="car_loan",le="+Inf"}']
    assert 0 < calls <= requests and every == calls
    assert metrics[f"driftloop_prediction_score_count{DATA}"] == rows


def start_workers(server_factory: Any, models: Path, log_dir: Path, workers: int) -> Any:
    """`driftloop serve --workers N`, once every worker serves (each reports its pid)."""
    server = server_factory(ROOT, models, log_dir, "--workers", str(workers))
    wait_for(lambda: len(model_info(scrape(server.url))) == workers, timeout=60)
    return server


def model_info(metrics: dict[str, float]) -> dict[str, str]:
    """pid ("" with one worker) -> the version that worker serves (value 1)."""
    found = {}
    for key, value in metrics.items():
        match = INFO.fullmatch(key)
        if match and value == 1:
            found[match.group(1) or ""] = match.group(2)
    return found


def writers(log_dir: Path) -> set[str]:
    """The pids in the prediction log's file names."""
    return {name.name.split("-")[2] for name in log_dir.glob("part-*.parquet")}


def wait_for(done: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``done()``; fails after ``timeout``."""
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not done after {timeout} s")
        time.sleep(0.1)
    return time.monotonic() - start


def test_hot_reload_reaches_every_worker(server_factory: Any, models: Path, tmp_path: Path) -> None:
    server = start_workers(server_factory, models, tmp_path / "log", 2)
    with load.Background(server.port, EXAMPLE, threads=4, keepalive=False) as generator:
        time.sleep(1.0)
        point_champion(models, "2")
        took = wait_for(
            lambda: sorted(model_info(scrape(server.url)).values()) == ["2", "2"], RELOAD_BOUND
        )
    print(f"every worker served version 2 {took:.1f} s after the switch")
    assert not generator.tally.errors, generator.tally.errors[:5]
    after = load.run(server.port, EXAMPLE, 4, threading.Event(), limit=50, keepalive=False)
    assert after.ok == 200 and not after.errors
    assert {version for answers in after.versions for _, version in answers} == {"2"}
    for _ in range(4):
        metrics = scrape(server.url)
        assert sorted(model_info(metrics).values()) == ["2", "2"]
        assert not [
            k for k in metrics if k.startswith("driftloop_model_info") and 'version="1"' in k
        ]
        assert metrics['driftloop_model_reloads_total{data="car_loan",outcome="loaded"}'] == 4
    server.terminate()


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_during_load_loses_no_answered_prediction(
    server_factory: Any, models: Path, tmp_path: Path, workers: int
) -> None:
    log_dir = tmp_path / "log"
    server = start_workers(server_factory, models, log_dir, workers)
    # one worker: keep-alive connections; two: a new connection per request, so both get some
    with load.Background(server.port, EXAMPLE, 6, keepalive=workers == 1) as generator:
        time.sleep(3.0)
        out = server.terminate()  # while requests are in flight
    assert out.count("Application shutdown complete.") == workers
    tally = generator.tally
    logged = pq.read_table(log_dir / "car_loan").column("request_id").to_pylist()
    assert tally.ok > 100
    assert set(tally.request_ids) <= set(logged)  # every answer the clients got is in the log
    assert len(logged) == len(set(logged))  # and logged once
    assert len(writers(log_dir / "car_loan")) == workers


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


def test_serve_from_the_registry_alias(copy: Path) -> None:
    from fastapi.testclient import TestClient

    from driftloop.config.compose import load
    from driftloop.serve.app import create_app
    from driftloop.serve.service import Settings

    sh(["driftloop", "compose", "serve.from_registry=true"], copy)
    config = load(copy / "params.yaml")
    settings = Settings(config, copy, copy / "no-local-models", copy / "data/prediction_log")
    with TestClient(create_app(settings)) as client:
        model = client.get("/model").json()
        assert model["source"] == "registry" and model["version"] == "1"
        assert model["holdout_metrics"]["roc_auc"] > 0.9
        assert client.post("/predict", json=EXAMPLE).json()["model_version"] == "1"


def test_a_challenger_in_shadow_under_load_loses_nothing_on_sigterm(
    server_factory: Any, models: Path, tmp_path: Path
) -> None:
    log_dir = tmp_path / "log"
    card = models / "versions/2/card.json"
    card.write_text(json.dumps({**json.loads(card.read_text()), "rollout": {"strategy": "shadow"}}))
    point(models, CHALLENGER, "2")
    server = server_factory(ROOT, models, log_dir)
    assert get(f"{server.url}/model")[1]["roles"]["challenger"]["version"] == "2"
    ok = f'driftloop_shadow_rows_total{{{DATA[1:-1]},role="challenger",status="ok"}}'
    with load.Background(server.port, [EXAMPLE] * 2, threads=6) as generator:
        time.sleep(4.0)
        metrics = scrape(server.url)
        deadline = time.monotonic() + 60  # the shadow process starts on a busy machine
        while ok not in metrics and time.monotonic() < deadline:
            time.sleep(0.5)
            metrics = scrape(server.url)
        out = server.terminate()  # while requests are in flight and rows wait for the challenger
    tally = generator.tally
    assert tally.ok > 100 and {v for answers in tally.versions for _, v in answers} == {"1"}
    table = pq.read_table(log_dir / "car_loan").to_pandas()
    assert set(tally.request_ids) <= set(table.request_id)  # every answer is in the log, once
    assert len(table) == 2 * table.request_id.nunique()
    assert set(table.shadow_version) == {"2"} and set(table.model_version) == {"1"}
    assert set(table.shadow_status) <= {"ok", "skipped"}
    scored = table[table.shadow_status == "ok"]
    assert len(scored) > 0 and scored.shadow_y_pred_proba.notna().all()
    assert scored.shadow_ms.notna().all() and table.model_ms.notna().all()
    counted = metrics.get(ok)
    assert counted is not None and 0 < counted <= len(scored)
    assert "shadow" not in out.lower() or "error" not in out.lower(), out


def test_serve_a_registry_challenger_as_a_canary(copy: Path) -> None:
    from fastapi.testclient import TestClient

    from driftloop.adapters import tracking
    from driftloop.config.compose import load
    from driftloop.serve.app import create_app
    from driftloop.serve.service import Settings

    sh(["driftloop", "compose", "serve.from_registry=true"], copy)
    config = load(copy / "params.yaml")
    tracking.configure(config.tracking, copy)
    name = config.model_name
    champion = tracking.alias_version(name, tracking.CHAMPION)
    tags = {"driftloop.rollout.strategy": "canary", "driftloop.rollout.canary_share": "0.5"}
    version = tracking.register(f"models:/{name}/{champion}", name, tags)
    tracking.set_alias(name, CHALLENGER, version)
    settings = Settings(config, copy, copy / "no-local-models", copy / "data/prediction_log")
    with TestClient(create_app(settings)) as client:
        model = client.get("/model").json()
        assert model["roles"]["challenger"]["version"] == version
        assert model["roles"]["challenger"]["source"] == "registry"
        assert model["rollout"] == {"strategy": "canary", "canary_share": 0.5}
        records = [{**EXAMPLE, "id": i} for i in range(200)]
        body = client.post("/predict", json=records).json()
    answered = [p.get("model_version", body["model_version"]) for p in body["predictions"]]
    assert answered == [version if in_canary(str(i), 0.5) else champion for i in range(200)]
