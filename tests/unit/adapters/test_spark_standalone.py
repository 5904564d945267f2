"""conf/spark/cluster.yaml: its settings and their checks (the run on a real
cluster is tests/e2e/test_spark_cluster.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftloop.adapters.spark import executor_settings
from driftloop.config.compose import compose
from driftloop.errors import ConfigError
from tests.conftest import ROOT


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
