"""Metrics of several worker processes: prometheus_client's multiprocess mode,
with real Python processes writing into one folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from driftloop.serve.command import shared_metrics
from driftloop.serve.metrics import MULTIPROC_ENV
from tests.conftest import ROOT

# argv: the version served first, the version after a reload, requests, whether to
# stop cleanly (a killed worker does not)
WORKER = """
import os, sys
from driftloop.serve.metrics import ServiceMetrics
metrics = ServiceMetrics()
model = metrics.of("car_loan")
model.serving(sys.argv[1])
model.serving(sys.argv[2])
for _ in range(int(sys.argv[3])):
    metrics.observe_request("/predict", 200, 0.003)
model.logged.inc(int(sys.argv[3]))
if sys.argv[4] == "stop":
    metrics.close()
print(os.getpid())
"""


def python(script: str, folder: Path | str, *args: str) -> str:
    env = {**os.environ, MULTIPROC_ENV: str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def samples(text: str, name: str) -> dict[str, float]:
    return {
        line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith(name)
    }


def test_workers_metrics_are_merged_and_only_live_versions_shown(tmp_path: Path) -> None:
    killed = python(WORKER, tmp_path, "1", "3", "5", "kill").strip()
    stopped = python(WORKER, tmp_path, "1", "4", "7", "stop").strip()
    live = WORKER.replace("print(os.getpid())", "print(os.getpid(), metrics.render().decode())")
    pid, _, text = python(live, tmp_path, "1", "2", "11", "kill").partition(" ")
    requests = samples(text, "driftloop_requests_total")
    assert requests == {'driftloop_requests_total{path="/predict",status="200"}': 23.0}
    assert samples(text, "driftloop_prediction_log_rows_total") == {
        'driftloop_prediction_log_rows_total{data="car_loan"}': 23.0
    }
    assert samples(text, 'driftloop_request_seconds_count{path="/predict"}') == {
        'driftloop_request_seconds_count{path="/predict"}': 23.0
    }
    # the dead workers (one killed, one stopped) and the reloaded-away version are gone
    info = samples(text, "driftloop_model_info")
    assert info == {f'driftloop_model_info{{data="car_loan",pid="{pid}",version="2"}}': 1.0}
    assert not list(tmp_path.glob(f"gauge_*_{killed}.db"))
    assert not list(tmp_path.glob(f"gauge_*_{stopped}.db"))


def test_multiprocess_mode_without_its_folder_fails_clearly(tmp_path: Path) -> None:
    script = "from driftloop.serve.metrics import ServiceMetrics; ServiceMetrics()"
    env = {**os.environ, MULTIPROC_ENV: str(tmp_path / "missing")}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert f"{MULTIPROC_ENV}=" in done.stderr and "is not a folder" in done.stderr


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_gives_several_workers_a_fresh_metrics_folder(
    workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    with shared_metrics(workers):
        named = os.environ.get(MULTIPROC_ENV)
        if workers == 1:
            assert named is None
        else:
            assert named is not None and Path(named).is_dir()
            assert not any(Path(named).iterdir())
    assert MULTIPROC_ENV not in os.environ
    assert named is None or not Path(named).exists()
