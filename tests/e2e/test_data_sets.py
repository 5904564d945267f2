"""Several data sets in one project: a regression CSV (the "Onboard a CSV"
how-to as written) and a binary parquet file, different columns and problem
types, onboarded one after the other, each to its own champion; one service
answers both; the controller passes over each."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pandas as pd
import yaml

from driftloop.adapters import nml
from driftloop.core.data import read_table_file
from tests.conftest import sh
from tests.e2e.test_model_loop import registry_champion
from tests.howtos import howto, run
from tests.unit.controller.test_init_data import loans, onboard
from tests.unit.serve.conftest import Server

CAR = {"id": 1, "car_age": 4.0, "km_driven": 60000.0, "price_new": 21000.0,
       "accident_count": 0.0, "door_count": 5.0, "fuel": "gas", "transmission": "manual",
       "listed_on": "2017-06-01 10:00:00"}  # fmt: skip


def prices(rows: int) -> pd.DataFrame:
    """NannyML's used-car prices as a team's CSV would have them."""
    frame = read_table_file(nml.packaged_files("regression_synthetic", "reference")[0])
    frame = frame.drop(columns=["y_pred"]).rename(columns={"y_true": "price"})
    return frame.rename(columns={"timestamp": "listed_on"}).head(rows)


def post(url: str, body: object) -> dict[str, object]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


def example(url: str, path: str) -> dict[str, object]:
    """The record the service documents for a route (its OpenAPI example)."""
    with urllib.request.urlopen(f"{url}/openapi.json", timeout=30) as response:
        spec = json.loads(response.read())
    body = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    found: dict[str, object] = body["examples"]["one"]["value"]
    return found


def composed(root: Path) -> str:
    return str(yaml.safe_load((root / "params.yaml").read_text())["data"]["name"])


def test_two_data_sets_each_to_its_own_champion_served_and_looped(project: Path) -> None:
    init, compose, repro = howto("Onboard a CSV").commands
    prices(5000).to_csv(project / "data/prices.csv", index=False)
    assert f"  {compose}\n" in run(init, project), "init-data prints the how-to's compose line"
    run(compose, project)
    run(repro, project)
    card = json.loads((project / "data/models/prices/champion/card.json").read_text())
    assert card["data"] == "prices" and card["problem"] == "regression"

    loans(6000).to_parquet(project / "data/loans.parquet")
    overrides = onboard(project, project / "data/loans.parquet", "loans", "repaid")
    sh(["driftloop", "compose", *overrides], project)
    sh(["dvc", "repro"], project)
    evaluated = json.loads((project / "metrics/eval.json").read_text())
    assert evaluated["champion"] is None  # the prices regressor is never its champion
    assert registry_champion(project, "loans") == "1" == registry_champion(project, "prices")
    assert os.readlink(project / "data/models/prices/champion") == "versions/1"

    serve_both(project, overrides)
    done = sh(["driftloop", "loop", "--once", "--all"], project)
    for name in ("loans", "prices"):
        decisions = (project / f"reports/loop/{name}/decisions.jsonl").read_text().splitlines()
        assert len(decisions) == 1, done.stderr
        assert json.loads(decisions[0])["champion"] == "1"
        assert list((project / f"data/incoming/{name}").glob("log-*/data.parquet"))
    assert composed(project) == "loans", "the pass over prices gives the project back"
    assert "monitor" not in sh(["dvc", "status", "monitor"], project).stdout
    status = sh(["driftloop", "status", "--data", "prices"], project).stdout
    assert "data set prices" in status and "composed for loans" in status


def serve_both(project: Path, overrides: list[str]) -> None:
    """One process, one port: loans (the composed one) at /predict, prices at /predict/prices."""
    params = project / "serve.yaml"
    sh(["driftloop", "compose", "--out", str(params), *overrides, "serve.models=[prices]"], project)
    server = Server(project, "--params", str(params))
    try:
        server.wait_ready()
        loan = post(f"{server.url}/predict", example(server.url, "/predict"))
        price = post(f"{server.url}/predict/prices", CAR)
        assert set(example(server.url, "/predict/prices")) >= set(CAR) - {"id", "listed_on"}
        assert "probability" in loan["predictions"][0]  # type: ignore[index]
        assert set(price["predictions"][0]) == {"prediction"}  # type: ignore[index]
    finally:
        server.terminate()
    for name in ("loans", "prices"):
        assert list((project / f"data/prediction_log/{name}").glob("part-*.parquet"))
