"""conf/spark/cluster.yaml: its settings and their checks, and a run on a real
Spark standalone cluster (a master and two workers on loopback) where featurize
and batch_predict write byte-identical outputs to the local[*] run, their work
done by the cluster's executors."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftloop.adapters.spark import executor_settings
from driftloop.adapters.spark_standalone import Cluster, start_cluster
from driftloop.config.compose import compose
from driftloop.errors import ConfigError
from tests.conftest import ROOT

STAGES = ("featurize", "batch_predict")
APP_NAME = "driftloop"
FINISH_SECONDS = 30.0


def test_cluster_option_sets_the_master_and_executor_sizes(tmp_path: Path) -> None:
    master = "spark://10.0.0.5:7077"
    spark = compose(
        ROOT, tmp_path / "params.yaml", ["spark=cluster", f"spark.master={master}"]
    ).spark
    assert executor_settings(spark) == {"spark.executor.cores": "1", "spark.executor.memory": "1g"}
    local = compose(ROOT, tmp_path / "params.yaml", []).spark
    assert executor_settings(local) == {}
    assert (spark.max_partition_bytes, spark.arrow_batch_rows) == (
        local.max_partition_bytes,
        local.arrow_batch_rows,
    )
    assert (spark.master, local.master) == (master, "local[*]")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ("spark.master=spark://host", r"spark\.master: 'spark://host' is not a Spark master URL"),
        ("spark.executor_cores=0", r"spark\.executor_cores: must be at least 1, got 0"),
        ("spark.executor_memory=lots", r"spark\.executor_memory: 'lots' is not a memory size"),
        ("spark.cores_max=0", r"spark\.cores_max: must be at least 1"),
        (
            "spark.executor_cores=2 spark.cores_max=1",
            r"spark\.cores_max: 1 is below spark\.executor_cores 2: no executor could start",
        ),
    ],
)
def test_bad_cluster_settings_name_the_file_and_key(
    overrides: str, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=rf"^conf/spark/cluster\.yaml: {message}"):
        compose(ROOT, tmp_path / "params.yaml", ["spark=cluster", *overrides.split()])


@pytest.fixture()
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with start_cluster(workers=2, cores=1, memory="2g", tmp=tmp_path / "cluster") as running:
        yield running


def declared_outputs(root: Path, stage: str) -> list[Path]:
    """The outs and metrics dvc.yaml declares for a stage."""
    spec = yaml.safe_load((root / "dvc.yaml").read_text())["stages"][stage]
    entries: list[Any] = [*spec.get("outs", []), *spec.get("metrics", [])]
    return [Path(next(iter(e)) if isinstance(e, dict) else e) for e in entries]


def file_bytes(root: Path, output: Path) -> dict[str, bytes]:
    """Every file of an output (a file or a folder), by path relative to the project."""
    path = root / output
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def finished_apps(cluster: Cluster, count: int) -> list[dict[str, Any]]:
    """The master's completed applications, once ``count`` of them are there."""
    deadline = time.monotonic() + FINISH_SECONDS
    while True:
        completed: list[dict[str, Any]] = cluster.status()["completedapps"]
        if len(completed) >= count or time.monotonic() > deadline:
            return completed
        time.sleep(0.5)
