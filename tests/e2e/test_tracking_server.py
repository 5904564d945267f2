"""MLflow on a shared server: a real `mlflow server` on loopback with a
PostgreSQL backend store (Debian's postgresql) and a proxied artifact folder.
The project is switched to it by config only (`tracking=server`)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import howtos
from tests.conftest import BIN, env
from tests.e2e.tracking_server import TrackingServer, temporary_folder, tracking_server
from tests.howtos import apply, howto

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[TrackingServer]:
    with temporary_folder() as folder, tracking_server(folder) as started:
        yield started


def use_server(root: Path, server: TrackingServer, experiment: str, max_rows: int | None) -> None:
    """Switch the project to the server as the how-to "Use a shared MLflow
    server" says: in conf/ (what `dvc exp run -S` composes again for every
    experiment), then its compose command."""
    steps = howto("Use a shared MLflow server")
    apply(steps.edit("conf/config.yaml"), root)
    named = {"experiment": experiment, "registered_model": experiment}
    apply(steps.edit("conf/tracking/server.yaml"), root, uri=server.uri, **named)
    # a small training set where what is tested is the tracking, not the fit
    edit_yaml(root / "conf/train/default.yaml", {"max_rows": max_rows})
    howtos.run(steps.command("driftloop compose"), root)


def edit_yaml(path: Path, values: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **values}))


def tags(run: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def params(run: dict[str, Any]) -> dict[str, str]:
    return {p["key"]: p["value"] for p in run["data"].get("params", [])}


def train_runs(server: TrackingServer, experiment: str) -> list[dict[str, Any]]:
    runs = server.runs(experiment)
    return [r for r in runs if tags(r).get("driftloop.stage") == "train"]


def load_model(server: TrackingServer, uri: str) -> str:
    """Load a model through the server (artifacts proxied over HTTP) in a fresh process."""
    code = f"import mlflow; print(type(mlflow.sklearn.load_model({uri!r})).__name__)"
    done = subprocess.run(
        [str(BIN / "python"), "-c", code],
        env={**env(), "MLFLOW_TRACKING_URI": server.uri},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_train_and_promote_track_into_the_shared_server(copy: Path, server: TrackingServer) -> None:
    use_server(copy, server, "pipeline", None)
    howtos.run(howto("Use a shared MLflow server").command("dvc repro"), copy)
    [run] = train_runs(server, "pipeline")
    assert run["info"]["status"] == "FINISHED"
    assert params(run)["model.name"] == "hgb" and params(run)["tracking.uri"] == server.uri
    assert {m["key"] for m in run["data"]["metrics"]} >= {"fit_seconds"}
    recorded = json.loads((copy / "data/models/car_loan/candidate.mlflow.json").read_text())
    assert recorded["run_id"] == run["info"]["run_id"]
    assert recorded["tracking_uri"] == server.uri
    # the registry on the server: the champion alias names the trained run's version
    champion = server.api("registered-models/alias?name=pipeline-car_loan&alias=champion")
    version = champion["model_version"]
    assert version["run_id"] == run["info"]["run_id"]
    card = json.loads((copy / "data/models/car_loan/champion/card.json").read_text())
    assert card["version"] == version["version"]
    # the model's files went through the server into its artifact folder
    assert list(server.artifacts.rglob("MLmodel"))
    assert load_model(server, "models:/pipeline-car_loan@champion") == "Pipeline"


def test_two_trainings_at_once_both_complete(copy: Path, server: TrackingServer) -> None:
    use_server(copy, server, "parallel", 20000)
    procs = [
        subprocess.Popen(
            [
                str(BIN / "driftloop"),
                "train",
                "--params",
                "params.yaml",
                "--train",
                "data/features/train",
                "--model",
                f"data/models/parallel-{i}",
                "--metrics",
                f"metrics/parallel-{i}.json",
            ],
            cwd=copy,
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    runs = {r["info"]["run_id"]: r for r in train_runs(server, "parallel")}
    recorded = [
        json.loads((copy / f"data/models/parallel-{i}.mlflow.json").read_text()) for i in range(2)
    ]
    assert set(runs) == {r["run_id"] for r in recorded}  # two runs, both recorded
    expected = params(runs[recorded[0]["run_id"]])
    for entry in recorded:
        run = runs[entry["run_id"]]
        assert run["info"]["status"] == "FINISHED"
        assert params(run) == expected  # every param, in both runs
        assert {m["key"] for m in run["data"]["metrics"]} >= {"fit_seconds"}
        assert load_model(server, entry["model_uri"]) == "Pipeline"
