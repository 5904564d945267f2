"""featurize and batch_predict on a real Spark standalone cluster equal the local run."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from driftloop.adapters.spark_standalone import HOST, Cluster
from tests.e2e.test_pipeline import stages_run
from tests.howtos import apply, howto, run
from tests.unit.adapters.test_spark_standalone import (
    APP_NAME,
    STAGES,
    declared_outputs,
    file_bytes,
    finished_apps,
)


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
