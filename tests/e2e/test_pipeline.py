"""The data pipeline end to end under plain `dvc repro`, as a user runs it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import commit, sh

pytestmark = pytest.mark.slow
DATA_STAGES = ["check_params", "ingest", "validate_data", "featurize"]
MODEL_STAGES = ["train", "evaluate", "promote"]
# scores batch.input again whenever the champion or the data changes
INFERENCE_STAGES = ["batch_predict", "monitor"]
OUTPUTS = [
    "data/raw/data.parquet",
    "data/features/train",
    "data/features/holdout",
    "metrics/data_validation.json",
]


def snapshot(root: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for name in OUTPUTS:
        path = root / name
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            files[str(file.relative_to(root))] = file.read_bytes()
    return files


def stages_run(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


Run = tuple[Path, subprocess.CompletedProcess[str]]


def test_full_run_runs_every_stage_in_order(full_run: Run) -> None:
    out = full_run[1].stdout
    assert stages_run(out) == [*DATA_STAGES, *MODEL_STAGES, *INFERENCE_STAGES], out


def test_full_run_prints_plain_lines_and_one_summary_per_stage(full_run: Run) -> None:
    """Not a terminal (CI, a log file): no carriage returns from any progress
    bar, each stage's steps as plain lines and one summary line with its time."""
    out = full_run[1]
    assert "\r" not in out.stdout + out.stderr
    lines = out.stderr.splitlines()
    for stage in [*DATA_STAGES, *MODEL_STAGES, *INFERENCE_STAGES]:
        summaries = [line for line in lines if re.fullmatch(rf"{stage}: .+ \(\d+\.\d s\)", line)]
        assert len(summaries) == 1, (stage, out.stderr)
    assert any(line.startswith("featurize: starting Spark") for line in lines), out.stderr
    assert any(line.startswith("train: fitting hgb on ") for line in lines), out.stderr


def test_repro_after_a_full_run_does_nothing(copy: Path) -> None:
    out = sh(["dvc", "repro"], copy).stdout
    assert stages_run(out) == []
    assert "Data and pipelines are up to date." in sh(["dvc", "status"], copy).stdout


def test_a_fresh_clone_gets_its_own_champion_and_stays_clean(copy: Path, tmp_path: Path) -> None:
    """`make run` on a new clone: the lock and metrics come from git, the data
    and the MLflow store do not; `dvc repro` must still end with a champion,
    and change nothing that git tracks."""
    commit(copy, "after a full run")
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(copy), str(clone)], tmp_path)
    out = sh(["dvc", "repro"], clone).stdout
    assert "promote" in stages_run(out)
    assert (clone / "data/models/car_loan/champion/model.pkl").is_file()
    assert sh(["git", "status", "--porcelain"], clone).stdout == ""
    assert "Data and pipelines are up to date." in sh(["dvc", "status"], clone).stdout


def test_forced_featurize_leaves_status_clean(copy: Path) -> None:
    before = snapshot(copy)
    sh(["dvc", "repro", "-f", "featurize"], copy)
    assert "Data and pipelines are up to date." in sh(["dvc", "status"], copy).stdout
    assert snapshot(copy) == before


def edit(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    path.write_text(path.read_text().replace(old, new, 1))


def test_stale_conf_stops_repro_with_the_fix_named(copy: Path) -> None:
    before = snapshot(copy)
    edit(
        copy,
        "conf/features/car_loan.yaml",
        "bucket(driver_tenure, [1, 3, 5, 10])",
        "bucket(driver_tenure, [2, 4])",
    )
    failed = sh(["dvc", "repro"], copy, check=False)
    assert failed.returncode != 0
    assert "run `driftloop compose`" in failed.stdout + failed.stderr
    assert snapshot(copy) == before, "a stopped run must leave outputs as they were"
    sh(["driftloop", "compose"], copy)
    # the named fix is enough: featurize is now due (the add-a-feature how-to's
    # test runs such a change through to the champion)
    due = sh(["dvc", "status"], copy).stdout
    assert re.search(r"^featurize:\n\tchanged deps:\n\t\tparams.yaml:", due, re.M), due


def test_experiment_override_goes_through_hydra(copy: Path) -> None:
    sh(["dvc", "exp", "run", "-S", "model=rf", "-S", "train.seed=3"], copy)
    params = (copy / "params.yaml").read_text()
    assert "name: rf" in params and "seed: 3" in params
    shown = sh(["dvc", "exp", "show", "--json"], copy).stdout
    assert '"rf"' in shown and "roc_auc" in shown


def write_source(root: Path, frame: pd.DataFrame) -> None:
    (root / "data/source/loans.csv").write_text(frame.to_csv(index=False))
    sh(
        ["driftloop", "compose", "data.source.kind=file", "data.source.path=data/source/loans.csv"],
        root,
    )


def raw_reference(root: Path) -> pd.DataFrame:
    return pd.read_parquet(root / "data/raw/data.parquet")


def test_missing_column_in_source_fails_and_keeps_outputs(copy: Path) -> None:
    before = snapshot(copy)
    write_source(copy, raw_reference(copy).drop(columns=["driver_tenure"]))
    failed = sh(["dvc", "repro"], copy, check=False)
    assert failed.returncode != 0
    assert "missing column(s) driver_tenure" in failed.stderr + failed.stdout
    assert snapshot(copy) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # DVC checks a missing dependency itself, before the stage runs
        (None, "No such file or directory: '{root}/data/source/loans.csv'"),
        ("id,car_value\n", "data/source/loans.csv: no rows"),
        ("a,b\n1,2\n", "missing column(s) id, car_value"),
        ("WRONG_TYPES", "column 'debt_to_income_ratio': 1 value(s) are not float, e.g. 'high'"),
    ],
)
def test_bad_source_fails_with_one_message_and_keeps_outputs(
    copy: Path, content: str | None, message: str
) -> None:
    before = snapshot(copy)
    source = copy / "data/source/loans.csv"
    if content == "WRONG_TYPES":
        frame = raw_reference(copy).astype({"debt_to_income_ratio": object})
        frame.loc[10, "debt_to_income_ratio"] = "high"
        content = frame.to_csv(index=False)
    if content is not None:
        source.write_text(content)
    sh(
        ["driftloop", "compose", "data.source.kind=file", "data.source.path=data/source/loans.csv"],
        copy,
    )
    failed = sh(["dvc", "repro"], copy, check=False)
    assert failed.returncode != 0
    lines = (failed.stdout + failed.stderr).splitlines()
    errors = [line for line in lines if line.startswith(("error:", "ERROR:"))]
    assert any(message.format(root=copy) in line for line in errors), lines
    assert len([line for line in errors if line.startswith("error:")]) <= 1
    assert snapshot(copy) == before


def test_data_gate_failure_stops_downstream(copy: Path) -> None:
    before = snapshot(copy)
    frame = raw_reference(copy)
    frame.loc[:9, "car_value"] = -5.0
    write_source(copy, frame)
    failed = sh(["dvc", "repro"], copy, check=False)
    text = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert (
        "data gate failed" in text and "expect_column_values_to_be_between on 'car_value'" in text
    )
    assert "-5.0" in text
    assert "Running stage 'featurize'" not in text
    after = snapshot(copy)
    assert {k: v for k, v in after.items() if "features" in k} == {
        k: v for k, v in before.items() if "features" in k
    }


def test_file_source_runs_through_the_data_pipeline(copy: Path) -> None:
    write_source(copy, raw_reference(copy).head(3000))
    sh(["dvc", "repro", "featurize"], copy)
    featurized = pd.read_parquet(copy / "data/features/train")
    assert 2000 < len(featurized) < 2800


@pytest.mark.skipif(
    shutil.which("unshare") is None or shutil.which("ip") is None, reason="needs unshare and ip"
)
def test_data_stages_run_with_no_network(project: Path) -> None:
    probe = sh(["unshare", "-n", "true"], project, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {probe.stderr.strip()}")
    script = "ip link set lo up && driftloop compose && dvc repro"
    done = sh(["unshare", "-n", "sh", "-c", script], project, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (project / "data/features/train/part-00000.parquet").is_file()
