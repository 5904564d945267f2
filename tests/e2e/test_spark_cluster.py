"""featurize and batch_predict on a real Spark standalone cluster equal the local run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from driftloop.adapters.spark_standalone import HOST, Cluster, start_cluster
from tests.e2e.test_pipeline import stages_run
from tests.howtos import apply, howto, run

STAGES = ("featurize", "batch_predict")
APP_NAME = "driftloop"
FINISH_SECONDS = 30.0


@pytest.mark.slow
def test_cluster_outputs_equal_the_local_run(copy: Path, done: Path, cluster: Cluster) -> None:
    """The "Use a Spark cluster" how-to's steps, naming this cluster's master."""
    steps = howto("Use a Spark cluster")
    apply(steps.edit("conf/config.yaml"), copy)
    apply(steps.edit("conf/spark/cluster.yaml"), copy, master=cluster.master, driver_host=HOST)
    compose, repro = steps.commands
    run(compose, copy)
    assert f"master: {cluster.master}" in (copy / "params.yaml").read_text()
    started = time.time()
    # only the two Spark stages run again, and their outputs keep their hashes
    assert stages_run(run(repro, copy)) == ["check_params", *STAGES]
    for stage in STAGES:
        for output in declared_outputs(done, stage):
            local, remote = file_bytes(done, output), file_bytes(copy, output)
            assert local, f"{output}: the local run wrote nothing"
            assert remote.keys() == local.keys(), f"{stage}: {output} has other files"
            for name in local:
                assert (copy / name).stat().st_mtime >= started, f"{name} was not rewritten"
                assert remote[name] == local[name], f"{stage}: {name} differs from local[*]"
    apps = finished_apps(cluster, len(STAGES))
    assert [(a["name"], a["state"]) for a in apps] == [(APP_NAME, "FINISHED")] * len(STAGES)
    assert not cluster.status()["activeapps"]
    ids = sorted(app["id"] for app in apps)
    assert cluster.app_dirs() == [ids, ids], "each stage ran executors on both workers"


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
