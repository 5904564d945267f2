"""promote: the gate's rules, the atomic champion switch, rollback bookkeeping."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from driftloop.config.schema import DriftloopConfig, PromotionRule
from driftloop.core import champion as champion_core
from driftloop.core import gate, promotion


def report(candidate: dict[str, float], champion: dict[str, float] | None = None) -> dict[str, Any]:
    return {
        "candidate": candidate,
        "champion": champion,
        "slices": {
            "salary_range": {
                "low": {"roc_auc": 0.96, "log_loss": 0.2},
                "high": {"roc_auc": 0.94, "log_loss": 0.2},
            }
        },
        "behaviour": [
            {"check": "car_value+1: invariance <=", "value": 0.0, "limit": 0.01, "passed": True}
        ],
        "predictions_gate": {"success": True},
    }


@pytest.fixture()
def rules(config: DriftloopConfig) -> Any:
    cfg = copy.deepcopy(config.evaluate)
    cfg.rules = [
        PromotionRule(metric="roc_auc", min=0.9, max_regression=0.01),
        PromotionRule(metric="log_loss", min=0.3),
    ]
    cfg.required_slices = []
    return cfg


def failed(verdicts: list[gate.Verdict]) -> list[str]:
    return [v.rule for v in verdicts if not v.passed]


def test_first_model_needs_only_the_minimums(rules: Any) -> None:
    assert failed(gate.judge(report({"roc_auc": 0.95, "log_loss": 0.2}), rules)) == []
    assert failed(gate.judge(report({"roc_auc": 0.85, "log_loss": 0.2}), rules)) == [
        "roc_auc >= 0.9"
    ]


def test_lower_is_better_metrics(rules: Any) -> None:
    assert failed(gate.judge(report({"roc_auc": 0.95, "log_loss": 0.4}), rules)) == [
        "log_loss <= 0.3"
    ]


def test_regression_against_the_champion(rules: Any) -> None:
    verdicts = gate.judge(report({"roc_auc": 0.95, "log_loss": 0.2}, {"roc_auc": 0.97}), rules)
    assert failed(verdicts) == ["roc_auc vs champion 0.9700"]
    margin = next(v.margin for v in verdicts if not v.passed)
    assert margin == pytest.approx(-0.01)
    assert "FAIL" in gate.table(verdicts) and "-0.0100" in gate.table(verdicts)


def test_required_slices_must_each_pass(rules: Any) -> None:
    rules.required_slices = ["salary_range"]
    rules.rules[0].min = 0.95
    assert failed(gate.judge(report({"roc_auc": 0.96, "log_loss": 0.2}), rules)) == [
        "roc_auc on salary_range=high"
    ]


def test_failed_behaviour_or_prediction_suite_blocks(rules: Any) -> None:
    bad = report({"roc_auc": 0.95, "log_loss": 0.2})
    bad["behaviour"][0] |= {"value": 0.2, "passed": False}
    bad["predictions_gate"] = {"success": False}
    assert failed(gate.judge(bad, rules)) == ["car_value+1: invariance <=", "predictions suite"]


def make_candidate(folder: Path, text: bytes) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.pkl").write_bytes(text)
    (folder / "card.json").write_text(json.dumps({"model": "m"}))
    return folder


def make_params(tmp_path: Path, name: str) -> Path:
    (tmp_path / name).write_text(f"data:\n  name: {name}\n")
    return tmp_path / name


def test_champion_switch_is_one_symlink_rename(tmp_path: Path) -> None:
    models = tmp_path / "models"
    one, two = make_params(tmp_path, "one"), make_params(tmp_path, "two")
    promotion.switch_champion(
        models, "1", make_candidate(tmp_path / "c1", b"one"), {"version": "1"}, one
    )
    assert (models / "champion" / "model.pkl").read_bytes() == b"one"
    promotion.switch_champion(
        models, "2", make_candidate(tmp_path / "c2", b"two"), {"version": "2"}, two
    )
    assert os.readlink(models / "champion") == "versions/2"
    assert json.loads((models / "champion" / "card.json").read_text())["version"] == "2"
    # the composition it was trained with travels with each version
    assert (models / "champion" / champion_core.PARAMS_FILE).read_text() == two.read_text()
    assert champion_core.current_version(models) == "2"
    promotion.point_champion(models, "1")
    assert (models / "champion" / "model.pkl").read_bytes() == b"one"
    assert sorted(p.name for p in models.iterdir()) == ["champion", "versions"]


def test_an_identical_candidate_is_recognised(tmp_path: Path) -> None:
    models = tmp_path / "models"
    params = make_params(tmp_path, "params.yaml")
    promotion.switch_champion(
        models, "1", make_candidate(tmp_path / "c1", b"same"), {"version": "1"}, params
    )
    assert promotion.same_model(make_candidate(tmp_path / "c2", b"same"), models / "champion")
    assert not promotion.same_model(make_candidate(tmp_path / "c3", b"other"), models / "champion")
