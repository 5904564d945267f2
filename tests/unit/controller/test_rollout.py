"""The rollout step's records: a verdict waiting for a person is in the rollout
log, the evidence report, the alerts and the MLflow store; `approve` refuses a
version that is not the challenger."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from driftloop.config.schema import Approval, DriftloopConfig
from driftloop.controller import rollout
from driftloop.controller.workspace import Paths
from driftloop.core import trial
from driftloop.core.promotion import point
from driftloop.errors import DriftloopError
from tests.conftest import ROOT


def evidence() -> trial.Evidence:
    return trial.Evidence(
        "1", "2", 3000, 1500, 0, 0, 0.95, 0.02, 0.05, 1.1, "roc_auc",
        0.95, 0.97, 0.02, (0.01, 0.03), 2.0,
    )  # fmt: skip


def project(tmp_path: Path, config: DriftloopConfig) -> tuple[Paths, DriftloopConfig]:
    tracking = dataclasses.replace(config.tracking, uri=None)
    rules = dataclasses.replace(config.rollout, approval=Approval.required)
    config = dataclasses.replace(config, tracking=tracking, rollout=rules)
    paths = Paths.of(tmp_path, config)
    for version in ("1", "2"):
        (paths.models / "versions" / version).mkdir(parents=True)
    point(paths.models, "champion", "1")
    point(paths.models, "challenger", "2")
    return paths, config


def test_a_promotion_that_needs_approval_waits_and_says_so(
    tmp_path: Path, config: DriftloopConfig
) -> None:
    paths, config = project(tmp_path, config)
    verdict = trial.judge_challenger(evidence(), config.rollout)
    assert verdict.action == trial.PROMOTE
    entry = rollout.act(paths, config, "trial", evidence(), verdict)
    assert entry["verdict"] == "awaiting approval" and "driftloop approve 2" in entry["reason"]
    assert (paths.models / "challenger").is_symlink()  # nothing moved
    logged = json.loads(rollout.decisions(paths).read_text().splitlines()[-1])
    assert logged["evidence"]["interval"] == [0.01, 0.03]
    report = rollout.report(paths).read_text()
    assert report.startswith("# Rollout of car_loan: awaiting approval")
    assert "| new_metric | 0.97 |" in report
    assert "ROLLOUT AWAITING APPROVAL version 2" in paths.alerts.read_text()


def test_approve_refuses_a_version_that_is_not_the_challenger(
    tmp_path: Path, config: DriftloopConfig
) -> None:
    project(tmp_path, config)
    params = tmp_path / "params.yaml"
    params.write_text((ROOT / "params.yaml").read_text())
    with pytest.raises(DriftloopError, match=r"version 3 is not the challenger .* is version 2"):
        rollout.decide_by_hand(params, "3", approve=True, who="ana")
