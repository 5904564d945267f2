"""The controller's own parts: the lock, the journal, the decision log, the sweep grid."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from driftloop.config.schema import SweepAxis
from driftloop.controller import loop
from driftloop.controller.experiments import (
    Trial,
    grid,
    queue_status,
    ranked,
    trial_names,
    worker_env,
)
from driftloop.core import host
from driftloop.errors import DriftloopError
from tests.conftest import ROOT

DRIFT = {
    "batch": "log-20261127T101500-0a1b2c3d",
    "batches": ["log-20261127T101500-0a1b2c3d"],
    "action": "warn",
    "deviation_percent": 3.1,
    "primary": {"metric": "roc_auc", "basis": "realised", "current": 0.94, "reference": 0.97},
    "evidence": [
        {"basis": "realised", "current": 0.94, "reference": 0.97, "deviation_percent": 3.1}
    ],
    "alerts": ["univariate_drift: car_value (jensen_shannon)"],
}


def test_a_second_controller_is_refused(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path\n"
            "from driftloop.controller.loop import locked\n"
            "with locked(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(
                DriftloopError, match=f"another controller is running \\(pid {holder.pid}"
            ),
            loop.locked(tmp_path),
        ):
            pass
    finally:
        holder.kill()
        holder.wait()
    with loop.locked(tmp_path):  # a killed holder leaves no stale lock
        pass


def test_only_new_decisions_are_acted_on() -> None:
    assert loop.is_new("abc", None)
    assert not loop.is_new("abc", {"drift_digest": "abc"})
    assert not loop.is_new("abc", {"drift_digest": "x", "drift_after": "abc"})
    assert loop.is_new("abc", {"drift_digest": "x", "drift_after": None})


def test_a_journalled_pass_is_finished_by_the_next_controller(tmp_path: Path) -> None:
    """A controller killed after deciding (journal written) and before logging:
    the next pass acts and logs it, once, before looking at anything new."""
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports/monitoring.html").write_text("<html>report</html>")
    pending = {
        "started_at": "2026-11-27T10:20:00+00:00",
        "action": "warn",
        "drift": DRIFT,
        "drift_digest": "d1",
        "champion": "3",
        "snapshot": DRIFT["batch"],
    }
    journal = tmp_path / ".driftloop/car_loan/acting.json"
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_text(json.dumps(pending))
    entry = loop.once(tmp_path, ROOT / "params.yaml")
    assert entry is not None and entry["action"] == "warn" and entry["drift_digest"] == "d1"
    assert not journal.exists()
    lines = (tmp_path / "reports/loop/car_loan/decisions.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["outcome"]["done"] == "alert"
    alert = (tmp_path / "reports/loop/car_loan/alerts.log").read_text()
    assert "WARN batch log-20261127T101500-0a1b2c3d" in alert and "car_value" in alert
    kept = tmp_path / f"reports/loop/car_loan/monitoring-{DRIFT['batch']}.html"
    assert kept.read_text() == "<html>report</html>"
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        "tags.`driftloop.stage` = 'loop'",
    )
    assert len(runs) == 1 and runs[0].data.params["action"] == "warn"
    assert runs[0].data.metrics["deviation_percent"] == pytest.approx(3.1)


def test_the_sweep_is_a_grid_of_hydra_overrides() -> None:
    axes = [SweepAxis("model.estimator.learning_rate", [0.05, 0.2]), SweepAxis("model", ["hgb"])]
    assert grid(axes) == [
        ["model.estimator.learning_rate=0.05", "model=hgb"],
        ["model.estimator.learning_rate=0.2", "model=hgb"],
    ]
    names = trial_names("log-20261127T101500-0a1b2c3d", 2)
    assert names == ["drift-20261127T101500-0a1b2c3d-1", "drift-20261127T101500-0a1b2c3d-2"]


def test_experiments_rank_on_the_newest_labelled_data() -> None:
    trials = [
        Trial("a", [], "Success", holdout={"roc_auc": 0.99}, newest=0.90),
        Trial("b", [], "Success", holdout={"roc_auc": 0.95}, newest=0.93),
        Trial("c", [], "Failed"),
    ]
    assert [t.name for t in ranked(trials, "roc_auc")] == ["b", "a"]
    assert [t.name for t in ranked(trials, "rmse")] == ["a", "b"]


def test_queue_status_is_read_by_name() -> None:
    text = (
        "Task     Name    Created    Status\n"
        "c6996bd  t-1     10:20 PM   Success\n"
        "5f93ac8  t-2     10:20 PM   Running\n\n"
        "Worker status: 1 active, 0 idle\n"
    )
    assert queue_status(text) == {"t-1": "Success", "t-2": "Running"}


def test_dvc_locks_of_stopped_processes_are_cleared(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    entry = {"pid": gone.pid, "cmd": "dvc repro"}
    lock = tmp_path / ".dvc/tmp/rwlock"
    lock.parent.mkdir(parents=True)
    lock.write_text(json.dumps({"write": {"/p/out": entry}, "read": {"/p/in": [entry]}}))
    assert loop.clear_stale_dvc_locks(tmp_path) == [gone.pid]
    assert json.loads(lock.read_text()) == {"write": {}, "read": {}}
    running = {"pid": os.getpid(), "cmd": "dvc repro"}
    lock.write_text(json.dumps({"write": {"/p/out": running}, "read": {}}))
    with pytest.raises(DriftloopError, match=f"dvc \\(pid {os.getpid()}\\) is still running"):
        loop.clear_stale_dvc_locks(tmp_path)
    for cut in ("", '{"write": {"/p/out": {"pid'):  # a DVC killed while writing it
        lock.write_text(cut)
        assert loop.clear_stale_dvc_locks(tmp_path) == []
        assert json.loads(lock.read_text()) == {"write": {}, "read": {}}


def test_a_killed_process_not_yet_reaped_is_not_running() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert host.alive(child.pid)
    child.kill()
    time.sleep(0.5)  # killed, not waited for: a zombie
    assert not host.alive(child.pid)
    child.wait()
    assert not host.alive(child.pid)


def test_queue_workers_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert worker_env(2)["OMP_NUM_THREADS"] == "4"
    assert worker_env(3)["OMP_NUM_THREADS"] == "2"
    assert worker_env(16)["OMP_NUM_THREADS"] == "1"  # never none
    assert worker_env(2)["PATH"] == os.environ["PATH"]  # the rest of the environment kept


def test_all_without_any_champion_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from driftloop.cli import main

    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    code = main(["loop", "--once", "--all", "--params", str(tmp_path / "params.yaml")])
    assert code == 1 and "no data set has a champion yet" in capsys.readouterr().err
