"""featurize: Spark features, the split rules and deterministic output."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftloop.adapters import parquet
from driftloop.config.schema import DriftloopConfig, SplitKind
from driftloop.core import data, plan
from driftloop.errors import DataError
from stages import featurize

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def raw_file(config: DriftloopConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame, _ = data.load_source(config.data, Path("unused"))
    raw = data.combine([data.conform(frame.head(6000), config.data, "ref")], config.data)
    path = tmp_path_factory.mktemp("raw") / "data.parquet"
    parquet.write_table(data.to_arrow(raw, config.data), path, 2000)
    return path


def run(spark: Any, raw_file: Path, config: DriftloopConfig, out: Path) -> dict[str, int]:
    return featurize.write_features(spark, raw_file, config, out / "train", out / "holdout")


def read(folder: Path) -> pd.DataFrame:
    return parquet.read_table(folder).to_pandas().sort_values("id").reset_index(drop=True)


def test_plan_names_derived_and_onehot_columns(config: DriftloopConfig) -> None:
    features = copy.deepcopy(config.features)
    features.onehot = ["salary_range"]
    names = plan.plan(features, config.data).names
    assert names[:4] == ["log_car_value", "loan_burden", "tenure_bucket", "high_salary"]
    assert names[4:] == [
        "salary_range__0_20k",
        "salary_range__20k_40k",
        "salary_range__40k_60k",
        "salary_range__60k",
    ]


def test_output_is_byte_identical_across_runs(
    spark: Any, raw_file: Path, config: DriftloopConfig, tmp_path: Path
) -> None:
    spark.conf.set("spark.sql.files.maxPartitionBytes", "40k")  # several input splits
    try:
        first = run(spark, raw_file, config, tmp_path / "a")
        second = run(spark, raw_file, config, tmp_path / "b")
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", config.spark.max_partition_bytes)
    assert first == second
    assert first["train"] + first["holdout"] == 6000
    for split in ("train", "holdout"):
        names = sorted(p.name for p in (tmp_path / "a" / split).iterdir())
        assert len(names) > 1 and names == sorted(
            p.name for p in (tmp_path / "b" / split).iterdir()
        )
        for name in names:
            assert (tmp_path / "a" / split / name).read_bytes() == (
                tmp_path / "b" / split / name
            ).read_bytes()


def test_spark_features_equal_in_process_features(
    spark: Any, raw_file: Path, config: DriftloopConfig, tmp_path: Path
) -> None:
    cfg = copy.deepcopy(config)
    cfg.features.onehot = ["salary_range", "size_of_downpayment"]
    run(spark, raw_file, cfg, tmp_path)
    spark_rows = pd.concat([read(tmp_path / "train"), read(tmp_path / "holdout")]).sort_values("id")
    spark_rows = spark_rows.reset_index(drop=True)
    feature_plan = plan.plan(cfg.features, cfg.data)
    local_rows = plan.featurize_pandas(spark_rows[list(cfg.data.schema)], feature_plan)
    for name in feature_plan.names:
        np.testing.assert_allclose(spark_rows[name], local_rows[name], rtol=1e-13, err_msg=name)


def test_random_split_follows_the_in_process_rule(
    spark: Any, raw_file: Path, config: DriftloopConfig, tmp_path: Path
) -> None:
    counts = run(spark, raw_file, config, tmp_path)
    holdout_ids = set(read(tmp_path / "holdout")["id"])
    all_ids = pd.concat([read(tmp_path / "train"), read(tmp_path / "holdout")])["id"]
    expected = set(all_ids[plan.holdout_mask(all_ids, config.features.split)])
    assert holdout_ids == expected
    assert 0.15 < counts["holdout"] / 6000 < 0.25


def test_time_split_puts_the_latest_rows_in_the_holdout(
    spark: Any, raw_file: Path, config: DriftloopConfig, tmp_path: Path
) -> None:
    cfg = copy.deepcopy(config)
    cfg.features.split.kind = SplitKind.time
    cfg.features.split.holdout_fraction = 0.25
    counts = run(spark, raw_file, cfg, tmp_path)
    assert counts["holdout"] == 1500
    assert (
        read(tmp_path / "train")["timestamp"].max() < read(tmp_path / "holdout")["timestamp"].min()
    )


def test_empty_split_fails_and_keeps_previous_output(
    spark: Any, raw_file: Path, config: DriftloopConfig, tmp_path: Path
) -> None:
    run(spark, raw_file, config, tmp_path)
    before = (tmp_path / "train" / "part-00000.parquet").read_bytes()
    cfg = copy.deepcopy(config)
    cfg.features.split.kind = SplitKind.time
    cfg.features.split.cutoff = "2000-01-01"
    with pytest.raises(DataError, match="train split is empty"):
        run(spark, raw_file, cfg, tmp_path)
    assert (tmp_path / "train" / "part-00000.parquet").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
