"""Small real models for the service tests: trained on the default data's
first rows, stored the way promote stores them (versions/<v> + a champion
symlink), so tests need no full pipeline run."""

from __future__ import annotations

import json
import pickle
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from driftloop.config.schema import DriftloopConfig
from driftloop.core.data import conform, load_source
from driftloop.core.host import free_port
from driftloop.core.model import CARD_FILE, MODEL_FILE, build_pipeline, columns, split_xy
from driftloop.core.plan import featurize_pandas, plan
from driftloop.core.promotion import point_champion
from driftloop.serve.app import create_app
from driftloop.serve.service import Settings
from tests.conftest import BIN, ROOT, env


@pytest.fixture(scope="session")
def raw(config: DriftloopConfig) -> pd.DataFrame:
    frame, _ = load_source(config.data, ROOT / config.data.source.path)
    return conform(frame, config.data, "test").head(6000)


def fit(config: DriftloopConfig, raw: pd.DataFrame, iterations: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    cols = columns(config)
    x, y = split_xy(featurize_pandas(raw, plan(config.features, config.data)), cols, "test")
    estimator = HistGradientBoostingClassifier(max_iter=iterations, random_state=0)
    return build_pipeline(estimator, cols, config.data, scale=True).fit(x, y)


def store(models: Path, version: str, model: Any) -> None:
    folder = models / "versions" / version
    folder.mkdir(parents=True)
    (folder / MODEL_FILE).write_bytes(pickle.dumps(model, protocol=5))
    card = {
        "version": version,
        "run_id": f"run-{version}",
        "model": "hgb",
        "data": "car_loan",
        "trained_at": "2026-11-27T00:00:00+00:00",
        "holdout_metrics": {"roc_auc": 0.9},
    }
    (folder / CARD_FILE).write_text(json.dumps(card))


@pytest.fixture(scope="session")
def trained(config: DriftloopConfig, raw: pd.DataFrame) -> dict[str, Any]:
    """Two different models: version 1 and version 2."""
    return {"1": fit(config, raw, 40), "2": fit(config, raw, 15)}


def make_models(folder: Path, trained: dict[str, Any]) -> Path:
    """The default data set's models folder under ``folder`` (the models root the
    service is given) with versions 1 and 2; the champion is version 1."""
    folder = folder / "car_loan"
    for version, model in trained.items():
        store(folder, version, model)
    point_champion(folder, "1")
    return folder


@pytest.fixture()
def models(tmp_path: Path, trained: dict[str, Any]) -> Path:
    return make_models(tmp_path / "models", trained)


@pytest.fixture()
def settings(config: DriftloopConfig, models: Path, tmp_path: Path) -> Settings:
    return Settings(config, ROOT, models.parent, tmp_path / "prediction_log")


@pytest.fixture()
def app(settings: Settings) -> Any:
    return create_app(settings)


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def scrape(url: str) -> dict[str, float]:
    """/metrics on a new connection: 'name{labels in name order}' -> value."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, _, value = line.rpartition(" ")
            name, _, labels = series.partition("{")
            pairs = sorted(labels.rstrip("}").split(",")) if labels else []
            out[name + ("{" + ",".join(pairs) + "}" if pairs else "")] = float(value)
    return out


def files(root: Path, models: Path, log_dir: Path) -> list[str]:
    """`driftloop serve` arguments naming a project's params, models and log folder."""
    return [
        "--params",
        str(root / "params.yaml"),
        "--models",
        str(models.parent),
        "--log-dir",
        str(log_dir),
    ]


class Server:
    """`driftloop serve ARGS` as a real uvicorn process on a free loopback port."""

    def __init__(self, root: Path, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(BIN / "driftloop"), "serve", *args, "--port", str(self.port)],
            cwd=root,
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited:\n{self.output()}")
            try:
                if get(f"{self.url}/ready")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("server never became ready")

    def terminate(self) -> str:
        """SIGTERM, as a process manager stops it; the graceful shutdown's output.

        uvicorn shuts down gracefully, then re-raises the signal, so the exit
        status is that of SIGTERM."""
        self.process.terminate()
        self.process.wait(timeout=60)
        out = self.output()
        assert "Application shutdown complete." in out, out
        return out

    def output(self) -> str:
        if self.process.poll() is None:
            return ""
        assert self.process.stdout is not None
        return self.process.stdout.read()


@pytest.fixture()
def server_factory() -> Iterator[Any]:
    started: list[Server] = []

    def start(root: Path, models: Path, log_dir: Path, *extra: str) -> Server:
        server = Server(root, *files(root, models, log_dir), *extra)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait()
