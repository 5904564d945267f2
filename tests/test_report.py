"""`driftloop report --base`: the markdown pieces, and the whole report in a
fresh clone of a repository with two commits whose outputs live in a local
DVC remote (what a pull request's CI job sees)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from driftloop.controller.report import data_gate_lines, drift_lines, metrics_table, params_table
from driftloop.core.drift import DriftRecord, nothing_monitored
from tests.conftest import commit, sh


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


@pytest.fixture(scope="module")
def pushed(done: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fully run project committed, then a hyperparameter change trained and
    evaluated and committed; both revisions' outputs pushed to a local remote.
    The tests read it through their own clones."""
    folder = tmp_path_factory.mktemp("pushed")
    copy = folder / "project"
    shutil.copytree(done, copy, symlinks=True)
    sh(["dvc", "remote", "add", "-d", "local", str(folder / "remote")], copy)
    commit(copy, "the first full run")
    sh(["dvc", "push", "-q"], copy)
    model = copy / "conf/model/hgb.yaml"
    model.write_text(model.read_text().replace("learning_rate: 0.1", "learning_rate: 0.05"))
    sh(["driftloop", "compose"], copy)
    sh(["dvc", "repro", "evaluate"], copy)  # a pull request's CI trains and evaluates it
    commit(copy, "a lower learning rate")
    sh(["dvc", "push", "-q"], copy)
    return copy


@pytest.mark.slow
def test_report_in_a_fresh_clone_after_dvc_pull(pushed: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(pushed), str(clone)], tmp_path)
    sh(["dvc", "pull", "-q"], clone)
    # the base's outputs too, as the CI workflows fetch them
    sh(["git", "branch", "--force", "driftloop-base", "HEAD~1"], clone)
    sh(["dvc", "fetch", "-q", "--all-branches"], clone)
    sh(["driftloop", "report", "--base", "HEAD~1"], clone)
    text = (clone / "reports/review/report.md").read_text()
    assert "| `model.estimator.learning_rate` | 0.1 | 0.05 |" in text
    old = json.loads(git_show(clone, "HEAD~1", "metrics/eval.json"))["candidate"]["roc_auc"]
    new = json.loads((clone / "metrics/eval.json").read_text())["candidate"]["roc_auc"]
    assert old != new
    assert f"| metrics/eval.json | `candidate.roc_auc` | {old:.6g} | {new:.6g} |" in text
    assert "## Model gate" in text and "| roc_auc >= 0.95 |" in text
    assert "**passed**: " in text  # the data gate
    assert "## Drift\n\nBatch " in text
    assert "| modified | `data/models/candidate" in text
    assert "- `plots/roc.csv`" in text
    assert (clone / "reports/review/plots/index.html").is_file()
    assert "Everything was compared." in text


@pytest.mark.slow
def test_report_before_dvc_pull_says_what_it_could_not_compare(
    pushed: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(pushed), str(clone)], tmp_path)
    sh(["driftloop", "report", "--base", "HEAD~1"], clone)
    text = (clone / "reports/review/report.md").read_text()
    assert "| `model.estimator.learning_rate` | 0.1 | 0.05 |" in text  # git alone has these
    missing = text.split("## Not compared", 1)[1]
    assert "output(s) are not in this clone's DVC cache" in missing
    assert "data/models/candidate/" in missing and "`dvc pull` brings" in missing
    assert "| deleted |" not in text  # not pulled is not deleted


def test_an_unknown_base_is_an_error(project: Path) -> None:
    done = sh(["driftloop", "report", "--base", "no-such-rev"], project, check=False)
    assert done.returncode == 1 and "--base no-such-rev: not a commit" in done.stderr
    assert not (project / "reports/review/report.md").exists()


def git_show(root: Path, rev: str, path: str) -> str:
    return sh(["git", "show", f"{rev}:{path}"], root).stdout
