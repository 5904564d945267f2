"""The prediction log's new files become one batch each time; a run killed
between writing the batch and recording it is finished by the next run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from driftloop.config.schema import ColumnType, DriftloopConfig
from driftloop.controller.snapshot import STATE, batch_frame, snapshot
from driftloop.serve.predlog import Entry, PredictionLog, log_schema


def write_log(folder: Path, requests: list[str], timestamp: object = None) -> None:
    schema = log_schema(
        {"id": ColumnType.int, "car_value": ColumnType.float, "timestamp": ColumnType.timestamp},
        {"y_pred": pa.int64(), "y_pred_proba": pa.float64()},
    )
    log = PredictionLog(folder, schema, flush_seconds=60)
    log.start()
    for number, request in enumerate(requests):
        log.append(
            Entry(
                {
                    "request_id": [request, request],
                    "record": np.arange(2, dtype="int32"),
                    "logged_at": np.full(2, np.datetime64("2026-11-27T10:00:00", "us")),
                    "model_version": ["1", "1"],
                    "id": np.array([10.0 * number, 10.0 * number + 1]),
                    "car_value": np.array([1000.0, 2000.0]),
                    "timestamp": [timestamp, timestamp],
                    "y_pred": np.array([0, 1]),
                    "y_pred_proba": np.array([0.2, 0.9]),
                },
                2,
            )
        )
    log.close()


def test_new_log_files_become_one_batch_each_time(config: DriftloopConfig, tmp_path: Path) -> None:
    log_dir, incoming = tmp_path / "log", tmp_path / "incoming"
    write_log(log_dir, ["a", "b"])
    first = snapshot(log_dir, incoming, config.data)
    assert first is not None and first[1] == 4
    batch = pd.read_parquet(incoming / first[0] / "data.parquet")
    assert list(batch["request_id"]) == ["a", "a", "b", "b"]
    # no timestamp was sent: the log time stands in
    assert (batch["timestamp"] == pd.Timestamp("2026-11-27 10:00:00")).all()
    assert snapshot(log_dir, incoming, config.data) is None
    write_log(log_dir, ["c"], timestamp=pd.Timestamp("2018-12-03 08:00:00"))
    second = snapshot(log_dir, incoming, config.data)
    assert second is not None and second[1] == 2 and second[0] != first[0]
    newer = pd.read_parquet(incoming / second[0] / "data.parquet")
    assert list(newer["request_id"]) == ["c", "c"]
    assert (newer["timestamp"] == pd.Timestamp("2018-12-03 08:00:00")).all()


def test_a_run_killed_before_recording_is_finished_next_time(
    config: DriftloopConfig, tmp_path: Path
) -> None:
    log_dir, incoming = tmp_path / "log", tmp_path / "incoming"
    write_log(log_dir, ["a"])
    first = snapshot(log_dir, incoming, config.data)
    assert first is not None
    (incoming / STATE).unlink()  # as if killed after the batch, before the record
    again = snapshot(log_dir, incoming, config.data)
    assert again == first
    assert sorted(p.name for p in incoming.iterdir() if p.is_dir()) == [first[0]]


def test_files_written_before_new_log_columns_join_with_nulls(
    tmp_path: Path, config: DriftloopConfig
) -> None:
    """The first snapshot after an upgrade: an older file without the rollout's
    columns, a newer one with them."""
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    stamp = pd.Timestamp("2026-01-01", tz="UTC")
    old = pd.DataFrame({"request_id": ["a"], "record": [0], "logged_at": [stamp], "id": [1]})
    new = old.assign(request_id="b", id=2, shadow_version="2")
    old.to_parquet(log_dir / "part-1.parquet", index=False)
    new.to_parquet(log_dir / "part-2.parquet", index=False)
    frame = batch_frame(sorted(log_dir.glob("part-*.parquet")), config.data)
    assert frame["shadow_version"].tolist() == [None, "2"]
