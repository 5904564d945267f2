"""Several data sets from one process: each its own champion, request model,
routes, log folder and metric labels; the composed one is also /predict."""

from __future__ import annotations

import dataclasses
import json
import pickle
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sklearn.ensemble import HistGradientBoostingRegressor

from driftloop.config.compose import compose
from driftloop.config.schema import DriftloopConfig
from driftloop.core.champion import PARAMS_FILE
from driftloop.core.data import conform, load_source
from driftloop.core.model import CARD_FILE, MODEL_FILE, build_pipeline, columns, split_xy
from driftloop.core.plan import featurize_pandas, plan
from driftloop.core.promotion import point_champion
from driftloop.errors import ConfigError
from driftloop.serve.app import create_app
from driftloop.serve.service import Settings
from tests.conftest import ROOT
from tests.unit.serve.test_app import EXAMPLE

OTHER = "used_car_price"
OVERRIDES = [f"{group}={OTHER}" for group in ("data", "features", "expectations")]
CAR = {"car_age": 4.0, "km_driven": 60000.0, "price_new": 21000.0, "accident_count": 0.0,
       "door_count": 5.0, "fuel": "gas", "transmission": "manual"}  # fmt: skip


def regression_champion(models: Path, tmp_path: Path) -> None:
    """A small regressor of the other data set, stored as promote stores it."""
    params = tmp_path / "used_car_price.yaml"
    config = compose(ROOT, params, [*OVERRIDES, "evaluate=regression", "model=hgb_regression"])
    frame, _ = load_source(config.data, ROOT / "data/source")
    frame = conform(frame, config.data, "test").head(3000)
    cols = columns(config)
    x, y = split_xy(featurize_pandas(frame, plan(config.features, config.data)), cols, "test")
    model = build_pipeline(HistGradientBoostingRegressor(max_iter=20), cols, config.data, True)
    folder = models / OTHER / "versions" / "1"
    folder.mkdir(parents=True)
    (folder / MODEL_FILE).write_bytes(pickle.dumps(model.fit(x, y)))
    (folder / CARD_FILE).write_text(json.dumps({"version": "1", "data": OTHER}))
    shutil.copy2(params, folder / PARAMS_FILE)
    point_champion(models / OTHER, "1")


@pytest.fixture()
def client(config: DriftloopConfig, models: Path, tmp_path: Path) -> Any:
    regression_champion(models.parent, tmp_path)
    serve = dataclasses.replace(config.serve, models=[OTHER])
    settings = Settings(
        dataclasses.replace(config, serve=serve), ROOT, models.parent, tmp_path / "log"
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_each_data_set_answers_at_its_own_route(client: TestClient, tmp_path: Path) -> None:
    default = client.post("/predict", json=EXAMPLE)
    assert default.status_code == 200 and "probability" in default.json()["predictions"][0]
    assert (
        client.post("/predict/car_loan", json=EXAMPLE).json()["predictions"]
        == (default.json()["predictions"])
    )
    price = client.post(f"/predict/{OTHER}", json=[CAR, CAR])
    assert price.status_code == 200, price.text
    assert [set(p) for p in price.json()["predictions"]] == [{"prediction"}] * 2
    # each data set's own request model: a car loan is not a used car
    wrong = client.post(f"/predict/{OTHER}", json=EXAMPLE)
    assert wrong.status_code == 422 and "car_age" in wrong.text
    assert client.post("/predict/nothing", json=EXAMPLE).status_code == 404
    ready = client.get("/ready").json()
    assert ready["models"] == {"car_loan": "1", OTHER: "1"}
    assert client.get(f"/model/{OTHER}").json()["name"] == f"driftloop-{OTHER}"
    metrics = client.get("/metrics").text
    assert f'driftloop_prediction_value_count{{data="{OTHER}"}} 2.0' in metrics
    assert 'driftloop_prediction_score_count{data="car_loan"} 2.0' in metrics
    assert f'path="/predict/{OTHER}"' in metrics
    spec = client.get("/openapi.json").json()
    assert f"Record_{OTHER}" in spec["components"]["schemas"]
    body = spec["paths"][f"/predict/{OTHER}"]["post"]["requestBody"]
    assert body["content"]["application/json"]["examples"]["one"]["value"].keys() >= CAR.keys()


def test_each_data_set_logs_into_its_own_folder(client: TestClient, tmp_path: Path) -> None:
    client.post("/predict", json=EXAMPLE)
    client.post(f"/predict/{OTHER}", json=CAR)
    for service in client.app.state.services.values():  # type: ignore[attr-defined]
        service.log.flush()
    price = pq.read_table(tmp_path / "log" / OTHER).to_pandas()
    assert len(price) == 1 and "km_driven" in price and "car_value" not in price
    assert len(pq.read_table(tmp_path / "log/car_loan")) == 1


def test_a_listed_data_set_without_a_champion_is_named(
    config: DriftloopConfig, models: Path, tmp_path: Path
) -> None:
    serve = dataclasses.replace(config.serve, models=["housing"])
    settings = Settings(dataclasses.replace(config, serve=serve), ROOT, models.parent, tmp_path)
    with pytest.raises(ConfigError, match=r"serve.models lists 'housing'.*promote a champion"):
        create_app(settings)
