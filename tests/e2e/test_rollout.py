"""The rollout end to end on a fully run copy of the project: a challenger in
shadow and as a canary on live traffic (`driftloop simulate`), a person's
approve and reject, and a promotion a killed controller left half-done."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from driftloop.core import rollout
from driftloop.core.moves import Move
from tests.conftest import sh
from tests.e2e.test_closed_loop import simulate
from tests.e2e.test_model_loop import client, registry_champion

pytestmark = pytest.mark.slow
MODELS = "data/models/car_loan"


def verdicts(root: Path) -> list[dict[str, Any]]:
    lines = (root / "reports/loop/car_loan/rollout.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def link(root: Path, role: str) -> str | None:
    path = root / MODELS / role
    return os.readlink(path) if path.is_symlink() else None


def logged(root: Path) -> pd.DataFrame:
    return pd.read_parquet(root / "data/prediction_log/car_loan")


def test_a_retrained_challenger_in_shadow_is_promoted_on_live_evidence(copy: Path) -> None:
    timeline, decisions = simulate(copy, "shadow")
    retrained = [d for d in decisions if d["action"] == "retrain"]
    assert retrained[0]["outcome"]["challenger"] == "2"
    # while on trial the champion answered everything; the challenger scored
    # every record beside it, and a second retrain waited for the verdict
    assert (timeline["challenger_after"] == "2").any()
    assert any(d["outcome"].get("done") == "deferred" for d in decisions)
    promoted = [v for v in verdicts(copy) if v["verdict"] == "promote"]
    assert len(promoted) == 1 and promoted[0]["judged"] == "2"
    evidence = promoted[0]["evidence"]
    assert evidence["labelled"] >= 1000 and evidence["new_metric"] > evidence["base_metric"]
    assert evidence["interval"][0] > -0.005
    assert link(copy, "champion") == "versions/2" and link(copy, "previous") == "versions/1"
    assert registry_champion(copy) == "2"
    rows = logged(copy)
    shadowed = rows[rows[rollout.SHADOW_VERSION] == "2"]
    assert set(shadowed["model_version"]) == {"1"}  # version 2 answered nobody on trial
    assert (shadowed[rollout.SHADOW_STATUS] == rollout.OK).mean() > 0.99
    # after the promotion version 2 answers, and version 1 scores in shadow (the watch)
    last = timeline[timeline["rows"] > 0].iloc[-1]
    assert last["served_by"] == "2" and last["previous_after"] == "1"
    assert (rows[rollout.SHADOW_VERSION] == "1").any()
    assert "challenger" in (copy / "reports/simulation/shadow/timeline.md").read_text()


def test_a_canary_answers_its_sticky_share(copy: Path) -> None:
    timeline, _ = simulate(copy, "canary")
    on_trial = timeline[(timeline["rows"] > 0) & (timeline["by_challenger"] > 0)]
    assert not on_trial.empty
    month = on_trial.iloc[0]
    assert month["rows"] >= 2000
    assert abs(month["by_challenger"] / month["rows"] - 0.1) <= 0.02
    rows = logged(copy)
    judged = (rows[rollout.ROLE] == "challenger") | (rows[rollout.SHADOW_ROLE] == "challenger")
    trial = rows[judged]
    assert len(trial) >= 2000
    chosen = trial["id"].astype(str).map(lambda key: rollout.in_canary(key, 0.1))
    # sticky: the record id alone decides who answers
    assert ((trial["model_role"] == "challenger") == chosen).all()
    canary = trial[trial["model_role"] == "challenger"]
    assert set(canary[rollout.SHADOW_VERSION]) == {"1"}  # the champion scored them beside


def test_a_challenger_worse_on_live_traffic_is_rejected_in_shadow(copy: Path) -> None:
    timeline, decisions = simulate(copy, "bad_candidate")
    assert any(d["outcome"].get("challenger") == "2" for d in decisions)
    rejected = [v for v in verdicts(copy) if v["verdict"] == "reject"]
    assert len(rejected) == 1 and rejected[0]["judged"] == "2"
    evidence = rejected[0]["evidence"]
    assert evidence["new_metric"] < evidence["base_metric"] and evidence["interval"][1] < -0.002
    assert "worse than the champion" in rejected[0]["reason"]
    alerts = (copy / "reports/loop/car_loan/alerts.log").read_text()
    assert "ROLLOUT REJECT version 2: roc_auc" in alerts
    assert link(copy, "champion") == "versions/1" and link(copy, "challenger") is None
    assert set(logged(copy)["model_version"]) == {"1"}  # it never answered a request
    assert set(timeline["champion_after"]) == {"1"}
    tags = client(copy).get_model_version("driftloop-car_loan", "2").tags
    assert "worse than the champion" in tags["driftloop.rejected"]


def test_a_promoted_champion_worse_live_is_rolled_back_by_itself(copy: Path) -> None:
    timeline, decisions = simulate(copy, "rollback")
    retrained = [d for d in decisions if d["action"] == "retrain"]
    assert retrained[0]["outcome"]["champion_after"] == "2"  # direct: it served at once
    rolled = [v for v in verdicts(copy) if v["verdict"] == "rollback"]
    assert len(rolled) == 1 and rolled[0]["kind"] == "watch"
    evidence = rolled[0]["evidence"]
    assert evidence["difference"] < -0.003 and evidence["interval"][1] < 0
    assert "ROLLOUT ROLLBACK version 2" in (copy / "reports/loop/car_loan/alerts.log").read_text()
    assert link(copy, "champion") == "versions/1" and link(copy, "previous") is None
    assert registry_champion(copy) == "1"
    served = timeline[timeline["rows"] > 0]
    assert "2" in set(served["served_by"])  # it answered until the rollback
    assert timeline["champion_after"].iloc[-1] == "1"
    tags = client(copy).get_model_version("driftloop-car_loan", "2").tags
    assert "worse than the previous one" in tags["driftloop.rolled_back"]


def challenger_of_rf(root: Path) -> None:
    """A passing candidate (rf) as challenger 2 beside champion 1."""
    sh(["driftloop", "compose", "model=rf"], root)
    sh(["dvc", "repro"], root)
    assert link(root, "challenger") == "versions/2" and link(root, "champion") == "versions/1"


def test_approve_and_reject_by_hand(copy: Path) -> None:
    wrong = sh(["driftloop", "approve", "7"], copy, check=False)
    assert wrong.returncode != 0 and "there is none" in wrong.stderr
    challenger_of_rf(copy)
    wrong = sh(["driftloop", "reject", "3"], copy, check=False)
    assert wrong.returncode != 0
    said = "version 3 is not the challenger of driftloop-car_loan (the challenger is version 2)"
    assert said in wrong.stderr
    sh(["driftloop", "reject", "2", "--by", "ana", "--reason", "not on a Friday"], copy)
    assert link(copy, "challenger") is None and link(copy, "champion") == "versions/1"
    last = verdicts(copy)[-1]
    assert last["verdict"] == "reject" and last["by"] == "ana: not on a Friday"
    tags = client(copy).get_model_version("driftloop-car_loan", "2").tags
    assert tags["driftloop.rejected"] == "rejected by ana: not on a Friday"


def test_a_promotion_killed_half_way_is_finished_by_the_next_pass(copy: Path) -> None:
    """The controller journals a promotion, moves the registry alias, and is
    killed before the links move: the next pass finishes it."""
    challenger_of_rf(copy)
    move = Move.of("promote", "2", "1", "test").to_json()
    journal = copy / ".driftloop/car_loan/rollout.json"
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_text(json.dumps(move))
    client(copy).set_registered_model_alias("driftloop-car_loan", "champion", "2")
    assert link(copy, "champion") == "versions/1"  # half-way: the links have not moved
    sh(["driftloop", "loop", "--once"], copy)
    assert not journal.exists()
    assert link(copy, "champion") == "versions/2" and link(copy, "previous") == "versions/1"
    assert link(copy, "challenger") is None
    registry = client(copy)
    assert str(registry.get_model_version_by_alias("driftloop-car_loan", "previous").version) == "1"
    assert verdicts(copy)[0]["kind"] == "resumed"
