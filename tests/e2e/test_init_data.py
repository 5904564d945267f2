"""`driftloop init-data` on real files: nannyml data sets, configs kept, a CSV to a champion."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.adapters import nml
from driftloop.config.compose import compose
from driftloop.core.data import read_table_file
from tests.conftest import sh
from tests.e2e.test_problem_types import train_through_the_gates
from tests.unit.controller.test_init_data import NANNYML, loans, onboard


def test_existing_configs_are_kept_without_force(project: Path) -> None:
    loans(300).to_csv(project / "loans.csv", index=False)
    onboard(project, project / "loans.csv", "loans", "repaid")
    before = (project / "conf/data/loans.yaml").read_text()
    done = sh(
        ["driftloop", "init-data", "loans.csv", "--name", "loans", "--target", "income"],
        project,
        check=False,
    )
    assert done.returncode == 1 and "pass --force to replace them" in done.stderr
    assert (project / "conf/data/loans.yaml").read_text() == before


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(NANNYML))
def test_a_nannyml_data_set_onboards_with_yaml_only(case: str, project: Path) -> None:
    dataset, target, metric_names = NANNYML[case]
    file, _ = nml.packaged_files(dataset, "reference")
    name = f"new_{case}"
    read_table_file(file).to_parquet(project / f"{name}.parquet")
    overrides = onboard(
        project, project / f"{name}.parquet", name, target, "--timestamp", "timestamp"
    )
    config = compose(project, project / "params.yaml", overrides)
    assert config.data.problem.value == case
    metrics = train_through_the_gates(config, project / f"{name}.parquet")
    assert set(metrics) == metric_names
