"""`driftloop report --base` in a fresh clone of a reviewed branch, before and after
`dvc pull`: the "Review a change" how-to's commands, as written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import commit, sh
from tests.howtos import howto, run
from tests.unit.controller.test_report import git_show

BRANCH = "lower-learning-rate"


@pytest.fixture(scope="module")
def pushed(done: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fully run project committed on main, then a hyperparameter change trained,
    evaluated and committed on a branch; both revisions' outputs pushed to a local
    remote. The tests read it through their own clones of the branch."""
    folder = tmp_path_factory.mktemp("pushed")
    copy = folder / "project"
    shutil.copytree(done, copy, symlinks=True)
    sh(["dvc", "remote", "add", "-d", "local", str(folder / "remote")], copy)
    sh(["git", "checkout", "-q", "-B", "main"], copy)
    commit(copy, "the first full run")
    sh(["dvc", "push", "-q"], copy)
    sh(["git", "checkout", "-q", "-b", BRANCH], copy)
    model = copy / "conf/model/hgb.yaml"
    model.write_text(model.read_text().replace("learning_rate: 0.1", "learning_rate: 0.05"))
    sh(["driftloop", "compose"], copy)
    sh(["dvc", "repro", "evaluate"], copy)  # a pull request's CI trains and evaluates it
    commit(copy, "a lower learning rate")
    sh(["dvc", "push", "-q"], copy)
    sh(["git", "checkout", "-q", "main"], copy)
    return copy


def review_clone(pushed: Path, tmp_path: Path) -> Path:
    """A reviewer's fresh clone, on the branch under review."""
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(pushed), str(clone)], tmp_path)
    sh(["git", "checkout", "-q", BRANCH], clone)
    return clone


@pytest.mark.slow
def test_report_in_a_fresh_clone_after_dvc_pull(pushed: Path, tmp_path: Path) -> None:
    clone = review_clone(pushed, tmp_path)
    # the working tree's outputs, then the base's too, as the CI workflows fetch them
    for command in howto("Review a change").commands[1:]:
        run(command, clone)
    text = (clone / "reports/review/report.md").read_text()
    assert "| `model.estimator.learning_rate` | 0.1 | 0.05 |" in text
    old = json.loads(git_show(clone, "main", "metrics/eval.json"))["candidate"]["roc_auc"]
    new = json.loads((clone / "metrics/eval.json").read_text())["candidate"]["roc_auc"]
    assert old != new
    assert f"| metrics/eval.json | `candidate.roc_auc` | {old:.6g} | {new:.6g} |" in text
    assert "## Model gate" in text and "| roc_auc >= 0.95 |" in text
    assert "**passed**: " in text  # the data gate
    assert "## Drift\n\nBatch " in text
    assert "| modified | `data/models/car_loan/candidate" in text
    assert "- `plots/roc.csv`" in text
    assert (clone / "reports/review/plots/index.html").is_file()
    assert "Everything was compared." in text


@pytest.mark.slow
def test_report_before_dvc_pull_says_what_it_could_not_compare(
    pushed: Path, tmp_path: Path
) -> None:
    clone = review_clone(pushed, tmp_path)
    run(howto("Review a change").commands[0], clone)
    text = (clone / "reports/review/report.md").read_text()
    assert "| `model.estimator.learning_rate` | 0.1 | 0.05 |" in text  # git alone has these
    missing = text.split("## Not compared", 1)[1]
    assert "output(s) are not in this clone's DVC cache" in missing
    assert "data/models/car_loan/candidate/" in missing and "`dvc pull` brings" in missing
    assert "| deleted |" not in text  # not pulled is not deleted


def test_an_unknown_base_is_an_error(project: Path) -> None:
    done = sh(["driftloop", "report", "--base", "no-such-rev"], project, check=False)
    assert done.returncode == 1 and "--base no-such-rev: not a commit" in done.stderr
    assert not (project / "reports/review/report.md").exists()
