"""`driftloop status`: the next action in the controller's order, the screen,
and the command on a fully run project."""

from __future__ import annotations

from driftloop.controller.status import State, next_action, render
from driftloop.core.drift import DriftRecord

DRIFT = {
    "batch": "2018-11",
    "action": "warn",
    "deviation_percent": 3.1,
    "primary": {"metric": "roc_auc", "basis": "realised", "current": 0.94, "reference": 0.97},
}


NO_BATCH = {"batch": None, "action": "none", "reason": "no production batch under data/incoming/x"}


def state(**changes: object) -> State:
    base = State(
        version="2",
        card={
            "model": "hgb",
            "data": "car_loan",
            "trained_at": "2026-11-27T10:00:00+00:00",
            "promoted_at": "2026-11-27T10:05:00+00:00",
            "inputs": {"data/features/train": "d25f064c9888ecd2.dir", "metrics/x.json": "ab"},
            "holdout_metrics": {"roc_auc": 0.9708, "f1": 0.91},
        },
        drift=DriftRecord.from_json(DRIFT),
        drift_digest="abc",
        dvc_changed=[],
    )
    base.__dict__.update(changes)
    return base


def test_next_action_follows_the_controllers_order() -> None:
    acted = {"drift_digest": "abc", "action": "warn", "batch": "2018-11"}
    journal = {"action": "retrain", "drift": DRIFT}
    assert next_action(state(journal=journal)).startswith("finish the 'retrain'")
    assert "take 3 new prediction-log file(s)" in next_action(state(unbatched_files=3))
    assert next_action(state(dvc_changed=["monitor"])).startswith("run the monitor")
    assert next_action(state(dvc_changed=None)).startswith("run the monitor")
    assert next_action(state()) == "act on batch 2018-11's decision: warn"
    assert next_action(state(last=acted)).startswith("nothing: batch 2018-11's decision")
    assert (
        next_action(state(drift=DriftRecord.from_json(NO_BATCH)))
        == "wait: there is no production batch to monitor yet"
    )


def test_the_screen_names_champion_decision_labels_and_dvc() -> None:
    text = "\n".join(render(state(pending_labels=["2018-11"], dvc_changed=["train"])))
    assert "version 2: hgb on car_loan, trained 2026-11-27T10:00:00+00:00" in text
    assert "data/features/train d25f064c" in text and "metrics/x.json" not in text
    assert "holdout: f1 0.9100, roc_auc 0.9708" in text
    assert "batch 2018-11: warn, deviation 3.10 % (roc_auc realised 0.94 vs 0.97)" in text
    assert "pending for 1 batch(es): 2018-11" in text
    assert "changed: train (`dvc repro` runs them)" in text
    empty = "\n".join(render(State(dvc_changed=[])))
    assert "no champion yet" in empty and "no decision yet" in empty
    waiting = "\n".join(render(state(drift=DriftRecord.from_json(NO_BATCH))))
    assert "monitoring  nothing monitored: no production batch under data/incoming/x" in waiting
