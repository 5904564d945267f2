"""Switching the project's composition between data sets: what is kept, what
composes a data set, and a lent project given back."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from driftloop.controller import datasets
from driftloop.errors import DriftloopError
from tests.conftest import ROOT, env

DVC_YAML = """stages:
  score:
    cmd: echo
    outs:
      - data/models/${data.name}/promoted.json:
          cache: false
      - data/out.parquet
    metrics:
      - metrics/score.json:
          cache: false
    plots:
      - plots:
          cache: false
"""


def test_the_uncached_outputs_are_kept_and_per_data_set_ones_are_not() -> None:
    kept = datasets.uncached_outputs(ROOT)
    assert {"metrics/eval.json", "metrics/drift.json", "plots", "reports/monitoring"} <= set(kept)
    assert not [path for path in kept if "${" in path or path.startswith("data/")]


def test_a_composition_keeps_its_data_groups_and_other_overrides(tmp_path: Path) -> None:
    choices = {"data": "prices", "features": "prices", "model": "hgb_regression", "spark": "local"}
    given = ["data=prices", "model=hgb_regression", "monitor.primary_metric=rmse"]
    datasets.record_choices(tmp_path, "prices", choices, given)
    assert datasets.overrides_of(tmp_path, "prices") == [
        "data=prices", "features=prices", "model=hgb_regression", "monitor.primary_metric=rmse"
    ]  # fmt: skip
    with pytest.raises(DriftloopError, match="'loans' was never composed"):
        datasets.overrides_of(tmp_path, "loans")


def test_a_pipeline_is_kept_and_brought_back(tmp_path: Path) -> None:
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=tmp_path, env=env(), check=True)
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    files = {
        "params.yaml": "data:\n  name: loans\n",
        "dvc.lock": "schema: '2.0'\nstages: {}\n",
        "metrics/score.json": '{"auc": 0.9}',
        "plots/roc.csv": "fpr,tpr\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert not datasets.restore_pipeline(tmp_path, "loans")  # nothing kept yet
    datasets.save_pipeline(tmp_path, "loans")
    (tmp_path / "params.yaml").write_text("data:\n  name: prices\n")
    (tmp_path / "metrics/score.json").write_text('{"rmse": 3}')
    (tmp_path / "plots/roc.csv").unlink()
    assert datasets.restore_pipeline(tmp_path, "loans")
    assert {name: (tmp_path / name).read_text() for name in files} == files
    assert datasets.composed_name(tmp_path) == "loans"


def test_a_project_lent_by_a_killed_pass_is_given_back(tmp_path: Path) -> None:
    test_a_pipeline_is_kept_and_brought_back(tmp_path)
    (tmp_path / "params.yaml").write_text("data:\n  name: prices\n")  # the killed pass's
    marker = tmp_path / datasets.LENT
    marker.write_text(json.dumps({"project": "loans", "lent_to": "prices"}))
    assert datasets.give_back(tmp_path)
    assert datasets.composed_name(tmp_path) == "loans" and not marker.exists()
    kept = datasets.state_dir(tmp_path, "prices") / "pipeline/params.yaml"
    assert "prices" in kept.read_text()  # what the killed pass left is the lent data set's
    assert not datasets.give_back(tmp_path)
