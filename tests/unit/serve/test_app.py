"""Every endpoint and every error, in-process through Starlette's TestClient."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from driftloop.config.schema import DriftloopConfig
from driftloop.core.promotion import point_champion
from driftloop.serve.app import create_app
from driftloop.serve.service import Settings
from tests.conftest import ROOT

EXAMPLE = {
    "car_value": 39811.0,
    "salary_range": "40K - 60K €",
    "debt_to_income_ratio": 0.63,
    "loan_length": 19.0,
    "repaid_loan_on_prev_car": False,
    "size_of_downpayment": "40%",
    "driver_tenure": 0.21,
}


@pytest.fixture()
def client(app: Any) -> Any:
    with TestClient(app) as test_client:
        yield test_client


def test_health_ready_and_model(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready", "model_version": "1"}
    model = client.get("/model").json()
    assert model["version"] == "1" and model["run_id"] == "run-1"
    assert model["trained_at"] == "2026-11-27T00:00:00+00:00"
    assert model["holdout_metrics"] == {"roc_auc": 0.9}
    assert model["compiled_preprocessing"] is True


def test_predict_one_record(client: TestClient, app: Any) -> None:
    response = client.post("/predict", json=EXAMPLE)
    assert response.status_code == 200
    body = response.json()
    assert body["model_version"] == "1" == response.headers["x-model-version"]
    assert body["request_id"] == response.headers["x-request-id"]
    (prediction,) = body["predictions"]
    assert prediction["prediction"] in (0, 1)
    assert 0.0 <= prediction["probability"] <= 1.0
    expected = _model_proba(app, [EXAMPLE])
    assert prediction["probability"] == pytest.approx(expected[0], rel=0, abs=0)


def _model_proba(app: Any, records: list[dict[str, Any]]) -> list[float]:
    """The fitted scikit-learn pipeline itself on the same features."""
    import pandas as pd

    from driftloop.core.plan import featurize_pandas

    predictor = app.state.service.champion.predictor
    frame = featurize_pandas(pd.DataFrame(records), predictor.plan)
    x = frame[predictor.numeric + predictor.categorical].astype(
        {c: "float64" for c in predictor.numeric}
    )
    return [float(p) for p in predictor.model.predict_proba(x)[:, 1]]


def test_predict_a_list_keeps_order(client: TestClient, app: Any) -> None:
    records = [{**EXAMPLE, "car_value": value} for value in (5000.0, 40000.0, 90000.0)]
    body = client.post("/predict", json=records).json()
    got = [p["probability"] for p in body["predictions"]]
    assert got == _model_proba(app, records)


def test_bad_records_get_field_level_422(client: TestClient) -> None:
    records = [EXAMPLE, {**EXAMPLE, "car_value": "lots", "salary_range": "a million"}, {"x": 1}]
    response = client.post("/predict", json=records)
    assert response.status_code == 422
    errors = response.json()["detail"]
    by_place = {(e["record"], e["field"]): e["error"] for e in errors}
    assert "valid number" in by_place[(1, "car_value")]
    assert "expected one of" in by_place[(1, "salary_range")]
    assert by_place[(2, "x")] == "unknown field"
    assert by_place[(2, "car_value")] == "Field required"
    text = response.text.lower()
    assert "traceback" not in text and "sklearn" not in text and "/work" not in text


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 422),
        (b"[]", 422),
        (b"{", 422),
        (json.dumps({**EXAMPLE, "driver_tenure": None}).encode(), 422),
        (b'{"car_value": NaN}', 422),
    ],
)
def test_malformed_bodies(client: TestClient, body: bytes, status: int) -> None:
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert response.json()["detail"]


def test_body_limit_and_content_type(client: TestClient) -> None:
    big = json.dumps([EXAMPLE] * 20000).encode()
    assert len(big) > 1048576
    response = client.post("/predict", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    response = client.post("/predict", content=b"a=b", headers={"content-type": "text/plain"})
    assert response.status_code == 415


def test_too_many_records(config: DriftloopConfig, settings: Settings) -> None:
    config.serve.max_records = 3
    try:
        with TestClient(create_app(settings)) as small:
            response = small.post("/predict", json=[EXAMPLE] * 4)
    finally:
        config.serve.max_records = 10000
    assert response.status_code == 422
    assert "at most 3" in response.json()["detail"][0]["error"]


def test_api_key(config: DriftloopConfig, settings: Settings) -> None:
    config.serve.api_key_env = "DRIFTLOOP_TEST_KEY"
    os.environ["DRIFTLOOP_TEST_KEY"] = "s3cret"
    try:
        with TestClient(create_app(settings)) as keyed:
            assert keyed.post("/predict", json=EXAMPLE).status_code == 401
            wrong = {"x-api-key": "nope"}
            assert keyed.post("/predict", json=EXAMPLE, headers=wrong).status_code == 401
            right = {"x-api-key": "s3cret"}
            assert keyed.post("/predict", json=EXAMPLE, headers=right).status_code == 200
            assert keyed.get("/model").status_code == 401
            assert keyed.get("/health").status_code == 200
    finally:
        config.serve.api_key_env = None
        del os.environ["DRIFTLOOP_TEST_KEY"]


def test_metrics(client: TestClient) -> None:
    client.post("/predict", json=[EXAMPLE, EXAMPLE])
    client.post("/predict", json={"nope": 1})
    text = client.get("/metrics").text
    assert 'driftloop_requests_total{path="/predict",status="200"} 1.0' in text
    assert 'driftloop_requests_total{path="/predict",status="422"} 1.0' in text
    assert 'driftloop_request_seconds_count{path="/predict"} 2.0' in text
    assert 'driftloop_prediction_score_count{data="car_loan"} 2.0' in text
    assert 'driftloop_model_info{data="car_loan",version="1"} 1.0' in text


def test_no_champion_is_503_until_one_appears(settings: Settings, models: Path) -> None:
    (models / "champion").unlink()
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").status_code == 503
        assert client.post("/predict", json=EXAMPLE).status_code == 503
        point_champion(models, "2")
        service = client.app.state.service
        client.portal.call(service.refresh)
        assert client.post("/predict", json=EXAMPLE).json()["model_version"] == "2"


def test_reload_switches_versions_and_refuses_a_broken_model(
    client: TestClient, models: Path
) -> None:
    service = client.app.state.service
    point_champion(models, "2")
    assert client.portal.call(service.refresh) is True
    assert client.post("/predict", json=EXAMPLE).json()["model_version"] == "2"
    broken = models / "versions" / "3"
    broken.mkdir()
    (broken / "model.pkl").write_bytes(b"not a pickle")
    (broken / "card.json").write_text("{}")
    point_champion(models, "3")
    assert client.portal.call(service.refresh) is False
    response = client.post("/predict", json=EXAMPLE)
    assert response.status_code == 200 and response.json()["model_version"] == "2"
    failed = 'driftloop_model_reloads_total{data="car_loan",outcome="failed"} 1.0'
    assert failed in client.get("/metrics").text


def test_prediction_log_has_every_row(app: Any, settings: Settings) -> None:
    with TestClient(app) as client:
        ids = [client.post("/predict", json=[EXAMPLE] * 3).json()["request_id"] for _ in range(5)]
        client.post("/predict", json={**EXAMPLE, "id": 77, "timestamp": "2020-01-02T03:04:05Z"})
    table = pq.read_table(settings.log_dir / "car_loan").to_pandas()
    assert len(table) == 16
    assert set(ids) <= set(table["request_id"])
    assert sorted(table[table.request_id == ids[0]]["record"]) == [0, 1, 2]
    last = table[table["id"] == 77].iloc[0]
    assert str(last["timestamp"]) == "2020-01-02 03:04:05"  # UTC, naive like the raw data
    assert {"y_pred", "y_pred_proba", "model_version", "logged_at"} <= set(table.columns)
    assert (table["salary_range"] == "40K - 60K €").all()


def test_openapi_documents_the_request_model(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["anyOf"][0] == {"$ref": "#/components/schemas/Record"}
    record = spec["components"]["schemas"]["Record"]
    assert record["additionalProperties"] is False
    assert set(record["required"]) == set(EXAMPLE)
    assert record["properties"]["salary_range"]["enum"][0] == "0 - 20K €"
    assert body["examples"]["one"]["value"]["salary_range"] == "0 - 20K €"
    assert client.get("/docs").status_code == 200


def test_serve_without_a_champion_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from driftloop.cli import main

    code = main(["serve", "--params", str(ROOT / "params.yaml"), "--models", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert f"error: no champion model at {tmp_path / 'car_loan/champion'}" in err
    assert "make run" in err
