"""The loop end to end: `driftloop simulate` on each shipped scenario, on a
fully run copy of the project (a real service, DVC, NannyML, MLflow).

Scenarios (conf/simulate): none (~0 %), warn (~3 %), retrain (~7 %) and
experiment (~15 %) drops of the realised ROC AUC, labels one month late."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.conftest import commit, env, sh
from tests.e2e.test_model_loop import registry_champion
from tests.howtos import howto, run

pytestmark = pytest.mark.slow


def simulate(root: Path, scenario: str) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    sh(["driftloop", "simulate", scenario], root)
    return read_simulation(root, scenario)


def read_simulation(root: Path, scenario: str) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The timeline a simulation wrote and the controller's decision log."""
    timeline = pd.read_csv(
        root / f"reports/simulation/{scenario}/timeline.csv",
        dtype={
            "served_by": str,
            "champion_after": str,
            "challenger_after": str,
            "previous_after": str,
        },
    )
    lines = (root / "reports/loop/car_loan/decisions.jsonl").read_text().splitlines()
    return timeline, [json.loads(line) for line in lines]


def experiment_runs(root: Path) -> list[Any]:
    """Finished training runs of queued experiments in the project's MLflow store."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("driftloop")
    assert experiment is not None
    runs = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`dvc.experiment` LIKE 'drift-%'"
    )
    assert all(run.info.status == "FINISHED" for run in runs)
    return list(runs)


def test_no_drift_means_no_action(copy: Path) -> None:
    timeline, decisions = simulate(copy, "none")
    assert set(timeline["action"]) == {"none"}
    assert max(d["deviation_percent"] for d in decisions) < 2
    assert len(decisions) == len(timeline)  # one logged decision per pass
    assert os.readlink(copy / "data/models/car_loan/champion") == "versions/1"
    assert (copy / "reports/simulation/none/timeline.html").is_file()


def test_label_noise_warns(copy: Path) -> None:
    """The "Simulate the loop" how-to's commands, as written."""
    replay, show = howto("Simulate the loop").commands
    assert replay.split("#")[0].split() == ["driftloop", "simulate", "warn"]
    run(replay, copy)
    assert run(show, copy).startswith("# Simulation: warn\n")
    timeline, decisions = read_simulation(copy, "warn")
    actions = list(timeline["action"])
    assert actions[0] == "none"  # the labels of the noisy month have not arrived yet
    assert "warn" in actions and not {"retrain", "experiment"} & set(actions)
    warned = [d for d in decisions if d["action"] == "warn"]
    assert all(2 <= d["deviation_percent"] < 5 for d in warned)
    assert warned[0]["primary"]["basis"] == "realised"
    alert = (copy / "reports/loop/car_loan/alerts.log").read_text()
    assert f"WARN batch {warned[0]['batch']}" in alert
    assert (copy / f"reports/loop/car_loan/monitoring-{warned[0]['batch']}.html").is_file()


def test_a_learnable_change_retrains_and_the_new_champion_serves(copy: Path) -> None:
    timeline, decisions = simulate(copy, "retrain")
    retrained = [d for d in decisions if d["action"] == "retrain"]
    assert len(retrained) == 1 and 5 <= retrained[0]["deviation_percent"] < 10
    outcome = retrained[0]["outcome"]
    assert outcome["promoted"] and (outcome["champion_before"], outcome["champion_after"]) == (
        "1",
        "2",
    )
    assert registry_champion(copy) == "2"
    months = timeline[timeline["rows"] > 0].reset_index(drop=True)
    # month 1 served by version 1; after the retrain (pass of month 2) the same
    # running service answered month 3 with version 2 (hot reload, no restart)
    assert str(months.loc[0, "served_by"]) == "1" and str(months.loc[2, "served_by"]) == "2"
    following = months.loc[2]
    reference = timeline["reference"].iloc[-1]  # the new champion's reference
    assert 100 * (reference - following["realised"]) / reference < 2
    # the new champion was trained on the newly labelled month
    raw = pd.read_parquet(copy / "data/raw/data.parquet")
    assert raw["car_value"].max() > 150_000


def test_heavy_drift_goes_back_to_experimentation(copy: Path) -> None:
    commit(copy, "make run")  # queued experiments start from git
    timeline, decisions = simulate(copy, "experiment")
    chosen = [d for d in decisions if d["action"] == "experiment"]
    assert chosen and chosen[0]["deviation_percent"] >= 10
    outcome = chosen[0]["outcome"]
    assert outcome["queued"] >= 4 and outcome["succeeded"] >= 4
    review = (copy / outcome["review"]).read_text()
    ranked = [line for line in review.splitlines() if line.startswith("| ") and "drift-" in line]
    assert len(ranked) >= 4 and "Recommended: **" in review
    assert "nothing here is promoted" in review
    # each experiment's training is a run in the project's store, with its params
    runs = experiment_runs(copy)
    names = sorted(run.data.tags["dvc.experiment"] for run in runs)
    assert names == sorted(row.split("|")[2].strip() for row in ranked)
    grid = {
        (
            r.data.params["model.estimator.learning_rate"],
            r.data.params["model.estimator.max_leaf_nodes"],
        )
        for r in runs
    }
    assert len(grid) == len(runs)
    # the champion is unchanged, locally and in the registry
    assert os.readlink(copy / "data/models/car_loan/champion") == "versions/1"
    assert registry_champion(copy) == "1"
    assert set(timeline["champion_after"].astype(str)) == {"1"}


def test_a_controller_killed_mid_retrain_is_finished_by_the_next(copy: Path) -> None:
    """Kill a controller (and its dvc) in the middle of a retrain; the next pass
    clears DVC's stale lock, finishes the retrain and logs it once."""
    # a retrain with real work (rf passes the gate), promoted at once
    sh(["driftloop", "compose", "model=rf", "rollout=direct"], copy)
    drift = {
        "batch": "2018-11",
        "batches": ["2018-11"],
        "action": "retrain",
        "deviation_percent": 6.0,
        "primary": {"metric": "roc_auc", "basis": "realised", "current": 0.91, "reference": 0.97},
        "evidence": [],
        "alerts": [],
    }
    journal = copy / ".driftloop/car_loan/acting.json"
    journal.parent.mkdir(parents=True, exist_ok=True)
    pending = {"started_at": "t", "action": "retrain", "drift": drift, "drift_digest": "d"}
    journal.write_text(json.dumps(pending | {"champion": "1", "snapshot": None}))
    first = subprocess.Popen(
        ["driftloop", "loop", "--once"], cwd=copy, env=env(), start_new_session=True
    )
    deadline = time.monotonic() + 300
    while (
        not (copy / ".dvc/tmp/rwlock").is_file()
        or "train" not in (copy / ".dvc/tmp/rwlock").read_text()
    ):
        assert time.monotonic() < deadline and first.poll() is None
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert journal.is_file() and not (copy / "reports/loop/car_loan/decisions.jsonl").exists()
    sh(["driftloop", "loop", "--once"], copy)
    decisions = (copy / "reports/loop/car_loan/decisions.jsonl").read_text().splitlines()
    assert len(decisions) == 1 and not journal.exists()
    outcome = json.loads(decisions[0])["outcome"]
    assert outcome["promoted"] and outcome["champion_after"] == "2"
    assert os.readlink(copy / "data/models/car_loan/champion") == "versions/2"
