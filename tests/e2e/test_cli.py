"""`driftloop` stages run in a copy of the project: one clear line and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT, sh
from tests.unit.test_cli import error_lines


def test_unknown_config_option_is_one_line(project: Path) -> None:
    done = sh(["driftloop", "compose", "model=nosuchmodel"], project, check=False)
    assert done.returncode == 1
    assert error_lines(done.stderr) == [
        "error: conf/config.yaml: no config 'model/nosuchmodel' under conf/ "
        "(In 'config': Could not find 'model/nosuchmodel')"
    ]
    assert (project / "params.yaml").read_text() == (ROOT / "params.yaml").read_text()


def test_stage_with_missing_input_is_one_line(project: Path) -> None:
    done = sh(
        [
            "driftloop",
            "validate-data",
            "--raw",
            "data/raw/none.parquet",
            "--result",
            "r.json",
            "--docs",
            "docs",
            "--summary",
            "s.json",
        ],
        project,
        check=False,
    )
    assert done.returncode == 1
    assert error_lines(done.stderr) == [
        "error: data/raw/none.parquet: raw data not found (run the ingest stage)"
    ]
    assert not (project / "s.json").exists()


def test_stale_params_stop_a_stage(project: Path) -> None:
    path = project / "conf" / "train" / "default.yaml"
    path.write_text(path.read_text().replace("seed: 0", "seed: 1"))
    done = sh(["driftloop", "check-params", "--out", "data/conf.ok"], project, check=False)
    assert done.returncode == 1
    assert "params.yaml is stale" in done.stderr and "run `driftloop compose`" in done.stderr
    assert not (project / "data" / "conf.ok").exists()
