"""A second model beside the champion: a challenger in shadow or as a canary,
or the previous champion, each loaded, refused and unloaded by its own link.
The answer never waits for the second model; every log row keeps both models'
outputs; /model and /metrics show the roles."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from driftloop.config.schema import RolloutConfig, RolloutStrategy
from driftloop.core import rollout
from driftloop.core.champion import CHALLENGER, CHAMPION, PREVIOUS
from driftloop.core.model import CARD_FILE, MODEL_FILE
from driftloop.core.predictor import to_columns
from driftloop.core.promotion import clear, point
from driftloop.core.rollout import challenger_rollout, in_canary
from driftloop.serve.app import create_app
from driftloop.serve.champion import Champion
from driftloop.serve.service import Service, Settings
from tests.unit.serve import faulty
from tests.unit.serve.conftest import store
from tests.unit.serve.test_app import EXAMPLE

DATA = 'data="car_loan"'


def link(models: Path, version: str, strategy: str = "shadow", share: float = 0.1) -> None:
    """Make ``version`` the challenger, its rollout in its card as promote writes it."""
    card_file = models / "versions" / version / CARD_FILE
    card = json.loads(card_file.read_text())
    card["rollout"] = {"strategy": strategy, "canary_share": share}
    card_file.write_text(json.dumps(card))
    point(models, CHALLENGER, version)


def records(ids: range | list[int]) -> list[dict[str, Any]]:
    """Records with ids, each its own car value, so rows tell apart."""
    return [{**EXAMPLE, "id": i, "car_value": 5000.0 + 900.0 * (i % 97)} for i in ids]


def proba(service: Service, model: Champion | None, sent: list[dict[str, Any]]) -> np.ndarray:
    """The model's own probabilities for the records."""
    assert model is not None
    columns = to_columns(sent, service.request.inputs, service.request.types)
    scores = model.predictor.predict(columns)
    assert scores.proba is not None
    return scores.proba[:, 1]


def metrics(client: TestClient) -> dict[str, float]:
    out = {}
    for line in client.get("/metrics").text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def shadow_rows(role: str, status: str) -> str:
    return f'driftloop_shadow_rows_total{{{DATA},role="{role}",status="{status}"}}'


def wait_for(done: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "not done in time"
        time.sleep(0.05)


def read_log(settings: Settings) -> pd.DataFrame:
    return pq.read_table(settings.log_dir / "car_loan").to_pandas().sort_values("id")


# --- shadow --------------------------------------------------------------------------


def test_shadow_logs_both_models_and_answers_as_the_champion_alone(
    settings: Settings, models: Path
) -> None:
    link(models, "2")
    sent = records(range(40))
    with TestClient(create_app(settings)) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        assert service.second.role == CHALLENGER and service.second.version == "2"
        bodies = [client.post("/predict", json=sent[i : i + 4]).json() for i in range(0, 40, 4)]
        wait_for(lambda: metrics(client).get(shadow_rows(CHALLENGER, "ok")) == 40)
        described, counted = client.get("/model").json(), metrics(client)
        champion, second = service.champion, service.second
    answers = [p for body in bodies for p in body["predictions"]]
    assert {body["model_version"] for body in bodies} == {"1"}
    assert all("model_version" not in p for p in answers)
    assert [p["probability"] for p in answers] == proba(service, champion, sent).tolist()
    log = read_log(settings)
    assert len(log) == 40 and log["id"].tolist() == list(range(40))
    assert set(zip(log.model_role, log.model_version, strict=True)) == {("champion", "1")}
    assert set(zip(log.shadow_role, log.shadow_version, log.shadow_status, strict=True)) == {
        ("challenger", "2", "ok")
    }
    assert log.y_pred_proba.tolist() == proba(service, champion, sent).tolist()
    theirs = proba(service, second, sent)
    assert log.shadow_y_pred_proba.to_numpy() == pytest.approx(theirs, rel=1e-12)
    assert (log.shadow_y_pred == (theirs > 0.5)).all()
    assert (log.y_pred_proba != log.shadow_y_pred_proba).any()  # two different models
    assert (log.model_ms > 0).all() and (log.shadow_ms > 0).all()
    assert described["version"] == "1" and described["roles"]["champion"]["version"] == "1"
    assert described["roles"]["challenger"]["version"] == "2"
    assert described["roles"]["previous"] is None
    assert described["rollout"] == {"strategy": "shadow", "canary_share": 0.0}
    assert counted[f'driftloop_predictions_total{{{DATA},role="champion"}}'] == 40
    assert counted[f'driftloop_model_role_info{{{DATA},role="challenger",version="2"}}'] == 1
    assert counted[f'driftloop_model_role_info{{{DATA},role="champion",version="1"}}'] == 1


def test_without_a_second_model_its_columns_are_null(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        assert client.post("/predict", json=records(range(3))).status_code == 200
        assert "rollout" not in client.get("/model").json()
    log = read_log(settings)
    assert (log.model_role == "champion").all() and (log.model_ms > 0).all()
    second = [rollout.SHADOW_ROLE, rollout.SHADOW_VERSION, rollout.SHADOW_STATUS, rollout.SHADOW_MS]
    second += [rollout.shadow_column(c) for c in ("y_pred", "y_pred_proba")]
    assert log[second].isna().all().all()
    schema = pq.read_schema(next((settings.log_dir / "car_loan").glob("*.parquet")))
    assert str(schema.field("shadow_y_pred_proba").type) == "double"
    assert str(schema.field("shadow_y_pred").type) == str(schema.field("y_pred").type)


@pytest.mark.parametrize(("strategy", "share"), [("shadow", 0.1), ("canary", 1.0)])
def test_a_failing_second_model_never_fails_a_request(
    settings: Settings,
    models: Path,
    trained: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    strategy: str,
    share: float,
) -> None:
    store(models, "3", faulty.with_step(trained["2"], faulty.fragile))
    link(models, "3", strategy, share)
    with (
        caplog.at_level(logging.WARNING, "driftloop.serve"),
        TestClient(create_app(settings)) as client,
    ):
        assert client.app.state.service.second.version == "3"  # type: ignore[attr-defined]
        sent = [client.post("/predict", json=records(range(i, i + 3))) for i in range(0, 30, 3)]
        wait_for(lambda: metrics(client).get(shadow_rows(CHALLENGER, "error")) == 30)
    assert [r.status_code for r in sent] == [200] * 10
    assert all("model_version" not in p for r in sent for p in r.json()["predictions"])
    log = read_log(settings)
    assert len(log) == 30 and (log.model_version == "1").all()
    assert (log.shadow_status == "error").all() and (log.shadow_version == "3").all()
    assert log.y_pred_proba.notna().all() and log.shadow_y_pred_proba.isna().all()
    failed = [r.message for r in caplog.records if "(version 3) failed" in r.message]
    assert len(failed) == (1 if strategy == "shadow" else 10)  # shadow: once, not per batch
    assert "cannot score more than one row" in failed[0]


def test_a_second_model_that_falls_behind_is_skipped_not_waited_for(
    settings: Settings, models: Path, trained: dict[str, Any]
) -> None:
    store(models, "3", faulty.with_step(trained["2"], faulty.slow))
    link(models, "3")
    took = []
    with TestClient(create_app(settings)) as client:
        client.app.state.service.shadow.capacity = 6  # type: ignore[attr-defined]
        for i in range(0, 60, 2):
            start = time.perf_counter()
            assert client.post("/predict", json=records(range(i, i + 2))).status_code == 200
            took.append(time.perf_counter() - start)
        counted = metrics(client)
    # the slow model takes a second a call; no answer waited for it
    assert max(took) < faulty.SLOW_SECONDS / 2
    log = read_log(settings)
    assert len(log) == 60
    status = log.shadow_status.value_counts().to_dict()
    assert status.get("ok", 0) >= 6 and status.get("skipped", 0) >= 30
    assert status["ok"] + status["skipped"] == 60
    assert counted[shadow_rows(CHALLENGER, "skipped")] == status["skipped"]
    skipped = log[log.shadow_status == "skipped"]
    assert (skipped.shadow_version == "3").all() and skipped.shadow_y_pred_proba.isna().all()
    assert skipped.shadow_ms.isna().all() and skipped.y_pred_proba.notna().all()
    assert log[log.shadow_status == "ok"].shadow_y_pred_proba.notna().all()


# --- canary ----------------------------------------------------------------------------


def answered_by(client: TestClient, ids: list[int], size: int) -> dict[int, str]:
    """Record id -> the version that answered it."""
    found = {}
    for start in range(0, len(ids), size):
        chunk = ids[start : start + size]
        body = client.post("/predict", json=records(chunk)).json()
        assert body["model_version"] == "1"
        for i, prediction in zip(chunk, body["predictions"], strict=True):
            found[i] = prediction.get("model_version", body["model_version"])
    return found


def test_a_canary_answers_its_share_sticky_by_record_id(settings: Settings, models: Path) -> None:
    link(models, "2", "canary", 0.1)
    ids = list(range(5000))
    with TestClient(create_app(settings)) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        first = answered_by(client, ids, 500)
        again = answered_by(client, ids[::-1], 333)  # other requests, other micro-batches
        wait_for(lambda: service.shadow.queued_rows == 0)
        described = client.get("/model").json()
    canary = {i for i, version in first.items() if version == "2"}
    assert abs(len(canary) / len(ids) - 0.1) <= 0.02
    assert canary == {i for i in ids if in_canary(str(i), 0.1)}
    assert again == first
    assert described["rollout"] == {"strategy": "canary", "canary_share": 0.1}
    log = read_log(settings)
    assert len(log) == 10000
    picked = log["id"].isin(canary)
    assert (log.model_version == np.where(picked, "2", "1")).all()
    assert (log.model_role == np.where(picked, "challenger", "champion")).all()
    assert (log.shadow_version == np.where(picked, "1", "2")).all()
    assert (log.shadow_role == np.where(picked, "champion", "challenger")).all()
    assert (log.shadow_status == "ok").all()
    # each row holds both models' outputs, whichever answered
    sent = records(log["id"].tolist())
    ours, theirs = proba(service, service.champion, sent), proba(service, service.second, sent)
    champion_out = np.where(picked, log.shadow_y_pred_proba, log.y_pred_proba)
    challenger_out = np.where(picked, log.y_pred_proba, log.shadow_y_pred_proba)
    assert champion_out == pytest.approx(ours, rel=1e-12)
    assert challenger_out == pytest.approx(theirs, rel=1e-12)


def test_a_canary_keys_records_without_an_id_by_their_request(
    settings: Settings, models: Path
) -> None:
    link(models, "2", "canary", 0.3)
    with TestClient(create_app(settings)) as client:
        bodies = [client.post("/predict", json=[EXAMPLE, EXAMPLE]).json() for _ in range(60)]
    for body in bodies:
        versions = {p.get("model_version", "1") for p in body["predictions"]}
        assert versions == {"2" if in_canary(body["request_id"], 0.3) else "1"}
    assert any(in_canary(body["request_id"], 0.3) for body in bodies)


def test_in_canary_share_and_stickiness() -> None:
    keys = [f"record-{i}" for i in range(5000)]
    for share in (0.05, 0.1, 0.5):
        picked = [in_canary(key, share) for key in keys]
        assert abs(sum(picked) / len(keys) - share) <= 0.02
        assert picked == [in_canary(key, share) for key in keys]
    assert not any(in_canary(key, 0.0) for key in keys)
    assert all(in_canary(key, 1.0) for key in keys)
    # a larger share keeps every record of a smaller one: raising it moves no one back
    assert all(in_canary(key, 0.2) for key in keys if in_canary(key, 0.1))


def test_a_challenger_rollout_comes_from_its_card_or_tags_else_the_config() -> None:
    default = RolloutConfig(strategy=RolloutStrategy.shadow, canary_share=0.1)
    card = {"rollout": {"strategy": "canary", "canary_share": 0.25}}
    assert challenger_rollout(card, None, default).to_json() == {
        "strategy": "canary",
        "canary_share": 0.25,
    }
    tags = {"driftloop.rollout.strategy": "canary", "driftloop.rollout.canary_share": "0.3"}
    assert challenger_rollout(None, tags, default).canary_share == 0.3
    assert challenger_rollout({}, {}, default).to_json() == {
        "strategy": "shadow",
        "canary_share": 0,
    }
    canary = RolloutConfig(strategy=RolloutStrategy.canary, canary_share=0.2)
    assert challenger_rollout(None, None, canary).canary
    assert not challenger_rollout({"rollout": {"strategy": "direct"}}, None, canary).canary
    odd = {"rollout": {"strategy": "sideways", "canary_share": "lots"}}
    assert challenger_rollout(odd, None, canary).to_json() == {
        "strategy": "canary",
        "canary_share": 0.2,
    }


# --- loading, refusing, unloading ---------------------------------------------------------


def test_roles_follow_their_links(
    settings: Settings, models: Path, trained: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    point(models, PREVIOUS, "2")
    store(models, "3", trained["2"])
    info = 'driftloop_model_role_info{{{},role="{}",version="{}"}}'
    with (
        caplog.at_level(logging.INFO, "driftloop.serve"),
        TestClient(create_app(settings)) as client,
    ):
        service = client.app.state.service  # type: ignore[attr-defined]
        refresh = lambda: client.portal.call(service.refresh)  # noqa: E731
        assert (service.second.role, service.second.version) == (PREVIOUS, "2")
        assert client.get("/model").json()["roles"]["previous"]["version"] == "2"
        link(models, "3", "canary", 0.5)  # a challenger goes before the previous
        refresh()
        assert (service.second.role, service.second.version) == (CHALLENGER, "3")
        roles = client.get("/model").json()["roles"]
        assert roles["challenger"]["version"] == "3" and roles["previous"] is None
        assert metrics(client).get(info.format(DATA, PREVIOUS, "2")) is None
        clear(models, CHALLENGER)  # rejected: the previous is scored again
        refresh()
        assert (service.second.role, service.second.version) == (PREVIOUS, "2")
        assert metrics(client).get(info.format(DATA, CHALLENGER, "3")) is None
        assert metrics(client)[info.format(DATA, PREVIOUS, "2")] == 1
        clear(models, PREVIOUS)  # the watch is over
        refresh()
        assert service.second is None
        described = client.get("/model").json()
        assert described["roles"] == {
            "champion": described["roles"]["champion"],
            "challenger": None,
            "previous": None,
        }
        assert "rollout" not in described
        response = client.post("/predict", json=records(range(2)))
        assert response.json()["model_version"] == "1"
    messages = [r.message for r in caplog.records]
    assert any("unloaded the challenger (version 3)" in m for m in messages)
    assert any("unloaded the previous (version 2)" in m for m in messages)


@pytest.mark.parametrize("kind", ["not a pickle", "fails the probe"])
def test_a_challenger_that_cannot_load_is_refused_and_the_champion_serves(
    settings: Settings,
    models: Path,
    trained: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    if kind == "not a pickle":
        broken = models / "versions" / "3"
        broken.mkdir()
        (broken / MODEL_FILE).write_bytes(b"not a pickle")
        (broken / CARD_FILE).write_text("{}")
    else:
        store(models, "3", faulty.with_step(trained["2"], faulty.failing))
    link(models, "3")
    point(models, PREVIOUS, "2")
    failures = f'driftloop_model_reload_failures_total{{{DATA},role="challenger"}}'
    with (
        caplog.at_level(logging.ERROR, "driftloop.serve"),
        TestClient(create_app(settings)) as client,
    ):
        service = client.app.state.service  # type: ignore[attr-defined]
        assert (service.second.role, service.second.version) == (PREVIOUS, "2")
        response = client.post("/predict", json=records(range(3)))
        assert response.status_code == 200 and response.json()["model_version"] == "1"
        client.portal.call(service.refresh)  # the refused key is not tried again
        assert metrics(client)[failures] == 1
        assert client.get("/ready").status_code == 200
    (line,) = [r.message for r in caplog.records if "refused the challenger" in r.message]
    assert "version 3" in line and "the champion keeps serving" in line
    reason = "cannot load" if kind == "not a pickle" else "fails on every row"
    assert reason in line


def test_after_a_promotion_the_replaced_champion_scores_as_previous(
    settings: Settings, models: Path
) -> None:
    link(models, "2")
    with TestClient(create_app(settings)) as client:
        service = client.app.state.service  # type: ignore[attr-defined]
        champion, challenger = service.champion, service.second
        # what the controller's promotion does, links last
        point(models, PREVIOUS, "1")
        point(models, CHAMPION, "2")
        clear(models, CHALLENGER)
        assert client.portal.call(service.refresh) is True
        assert service.champion.version == "2"
        assert service.champion.key == challenger.key
        assert (service.second.role, service.second.version) == (PREVIOUS, "1")
        assert service.second.predictor is champion.predictor  # not read again
        assert client.post("/predict", json=records(range(3))).json()["model_version"] == "2"
    log = read_log(settings)
    assert set(zip(log.model_version, log.shadow_role, log.shadow_version, strict=True)) == {
        ("2", "previous", "1")
    }
    assert log.shadow_y_pred_proba.notna().all()
