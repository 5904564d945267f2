"""`driftloop report --base`: the markdown pieces, and the whole report in a
fresh clone of a repository with two commits whose outputs live in a local
DVC remote (what a pull request's CI job sees)."""

from __future__ import annotations

from pathlib import Path

from driftloop.controller.report import data_gate_lines, drift_lines, metrics_table, params_table
from driftloop.core.drift import DriftRecord, nothing_monitored
from tests.conftest import sh


def test_params_and_metrics_tables_show_old_new_and_change() -> None:
    params = {"params.yaml": {"model.estimator.learning_rate": {"old": 0.1, "new": 0.05}}}
    assert "| `model.estimator.learning_rate` | 0.1 | 0.05 |" in params_table(params)
    assert params_table({"params.yaml": {"conf_digest": {"old": "a", "new": "b"}}}) == [
        "No params changed."
    ]
    metrics = {"metrics/eval.json": {"candidate.roc_auc": {"old": 0.97, "new": 0.96}}}
    [row] = metrics_table(metrics)[2:]
    assert row.startswith("| metrics/eval.json | `candidate.roc_auc` | 0.97 | 0.96 | -0.01")
    assert row.endswith("(-1.03 %) |")


def test_gate_and_drift_lines_name_failures_and_the_base() -> None:
    failed = {"success": False, "evaluated": 30, "failed": ["car_value between 0 and 200000"]}
    lines = data_gate_lines(failed, {"success": True})
    assert lines[0] == "**FAILED**: 30 expectations evaluated."
    assert "- failed: `car_value between 0 and 200000`" in lines
    assert "(The base passed the gate.)" in lines
    drift = DriftRecord("retrain", "b2", ["b2"], 7.45)
    base = DriftRecord("none", "b1", ["b1"], 0.0)
    text = "\n".join(drift_lines(drift, base))
    assert text.startswith("Batch b2: retrain, deviation 7.45 %")
    assert "The base decided none on batch b1" in text
    waiting = nothing_monitored("no production batch under x")
    assert drift_lines(waiting, None) == ["Nothing monitored: no production batch under x."]


def git_show(root: Path, rev: str, path: str) -> str:
    return sh(["git", "show", f"{rev}:{path}"], root).stdout
