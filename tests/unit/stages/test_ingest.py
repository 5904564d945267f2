"""ingest: sources, schema conformance, production batches and the window."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest

from driftloop.adapters import nml, parquet
from driftloop.config.schema import DataConfig, DriftloopConfig, SourceKind
from driftloop.core import data as data_core
from driftloop.errors import DataError


@pytest.fixture()
def data(config: DriftloopConfig) -> DataConfig:
    return copy.deepcopy(config.data)


@pytest.fixture()
def reference(data: DataConfig) -> pd.DataFrame:
    frame, _ = data_core.load_source(data, Path("unused"))
    return frame


def test_packaged_source_is_read_without_importing_nannyml(data: DataConfig) -> None:
    file, targets = nml.packaged_files("synthetic_car_loan", "analysis")
    assert file.name == "synthetic_car_loan_analysis.csv"
    assert targets is not None and targets.name == "synthetic_car_loan_analysis_target.csv"
    with pytest.raises(DataError, match=r"no data set 'nope'.*synthetic_car_loan"):
        nml.packaged_files("nope", "reference")


def test_analysis_part_is_joined_to_its_targets(data: DataConfig) -> None:
    data.source.part = "analysis"
    frame, name = data_core.load_source(data, Path("unused"))
    assert name == "nannyml:synthetic_car_loan/analysis"
    assert frame["repaid"].notna().all()


def test_conform_keeps_schema_columns_and_types(data: DataConfig, reference: pd.DataFrame) -> None:
    raw = data_core.conform(reference, data, "src")
    assert list(raw.columns) == list(data.schema)
    table = data_core.to_arrow(raw, data)
    assert str(table.schema.field("timestamp").type) == "timestamp[us]"
    assert str(table.schema.field("repaid").type) == "int64"


def test_missing_columns_are_named(data: DataConfig, reference: pd.DataFrame) -> None:
    with pytest.raises(DataError, match=r"src: missing column\(s\) car_value, repaid"):
        data_core.conform(reference.drop(columns=["car_value", "repaid"]), data, "src")


def test_wrong_types_are_named_with_examples(data: DataConfig, reference: pd.DataFrame) -> None:
    bad = reference.copy()
    bad["car_value"] = bad["car_value"].astype(object)
    bad.loc[3, "car_value"] = "lots"
    with pytest.raises(
        DataError, match=r"column 'car_value': 1 value\(s\) are not float, e.g. 'lots'"
    ):
        data_core.conform(bad, data, "src")


def test_fractional_ids_are_not_ints(data: DataConfig, reference: pd.DataFrame) -> None:
    bad = reference.copy()
    bad["id"] = bad["id"] + 0.5
    with pytest.raises(DataError, match=r"column 'id'.*not int"):
        data_core.conform(bad, data, "src")


def test_booleans_from_text(data: DataConfig, reference: pd.DataFrame) -> None:
    text = reference.copy()
    text["repaid_loan_on_prev_car"] = text["repaid_loan_on_prev_car"].map({True: "yes", False: "0"})
    raw = data_core.conform(text, data, "src")
    assert raw["repaid_loan_on_prev_car"].tolist() == reference["repaid_loan_on_prev_car"].tolist()


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        data_core.read_table_file(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("id,car_value\n")
    with pytest.raises(DataError, match="no rows"):
        data_core.read_table_file(tmp_path / "empty.csv")
    (tmp_path / "broken.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="cannot be read"):
        data_core.read_table_file(tmp_path / "broken.parquet")


def test_csv_file_source(data: DataConfig, reference: pd.DataFrame, tmp_path: Path) -> None:
    reference.head(100).to_csv(tmp_path / "loans.csv", index=False)
    data.source.kind = SourceKind.file
    frame, name = data_core.load_source(data, tmp_path / "loans.csv")
    assert len(data_core.conform(frame, data, name)) == 100


def write_batch(folder: Path, rows: pd.DataFrame, labels: bool) -> None:
    folder.mkdir(parents=True)
    rows.drop(columns=["repaid"]).to_parquet(folder / "data.parquet")
    if labels:
        rows[["id", "repaid"]].to_csv(folder / "labels.csv", index=False)


def test_labelled_batches_join_and_pending_ones_wait(
    data: DataConfig, reference: pd.DataFrame, tmp_path: Path
) -> None:
    later = reference.head(50).assign(id=lambda f: f["id"] + 10**6, timestamp="2019-01-05 10:00:00")
    write_batch(tmp_path / "2019-01", later.head(30), labels=True)
    write_batch(tmp_path / "2019-02", later.tail(20), labels=False)
    batches, pending = data_core.load_batches(data, tmp_path)
    assert pending == 1
    assert len(batches) == 1 and len(batches[0]) == 30
    combined = data_core.combine([data_core.conform(reference, data, "ref"), *batches], data)
    assert len(combined) == len(reference) + 30
    assert combined["timestamp"].is_monotonic_increasing


def test_text_labels_are_read_as_0_and_1_in_the_source_and_batches(
    data: DataConfig, reference: pd.DataFrame, tmp_path: Path
) -> None:
    data.columns.labels = ["no", "yes"]
    data.source.kind = SourceKind.file
    text = reference.head(100).assign(repaid=lambda f: f["repaid"].map({0: "no", 1: " yes"}))
    text.to_csv(tmp_path / "loans.csv", index=False)
    frame, _ = data_core.load_source(data, tmp_path / "loans.csv")
    assert frame["repaid"].tolist() == reference.head(100)["repaid"].tolist()
    write_batch(tmp_path / "2019-01", text.head(10).assign(id=lambda f: f["id"] + 10**6), True)
    labels = data_core.batch_labels(tmp_path / "2019-01", data)
    assert labels is not None and labels["repaid"].tolist() == frame.head(10)["repaid"].tolist()
    text.loc[3, "repaid"] = "maybe"
    text.to_csv(tmp_path / "loans.csv", index=False)
    with pytest.raises(DataError, match=r"loans\.csv: column 'repaid': 1 label\(s\).*'maybe'"):
        data_core.load_source(data, tmp_path / "loans.csv")


def test_training_window_by_time(data: DataConfig, reference: pd.DataFrame) -> None:
    raw = data_core.conform(reference, data, "ref")
    data.window.start, data.window.end = "2018-03-01", "2018-04-01"
    kept = data_core.combine([raw], data)
    assert kept["timestamp"].min() >= pd.Timestamp("2018-03-01")
    assert kept["timestamp"].max() < pd.Timestamp("2018-04-01")
    data.window.start = "2030-01-01"
    data.window.end = None
    with pytest.raises(DataError, match="training window"):
        data_core.combine([raw], data)


def test_raw_file_is_byte_identical_across_runs(
    data: DataConfig, reference: pd.DataFrame, tmp_path: Path
) -> None:
    for name in ("a.parquet", "b.parquet"):
        raw = data_core.combine([data_core.conform(reference, data, "ref")], data)
        parquet.write_table(data_core.to_arrow(raw, data), tmp_path / name, data_core.ROW_GROUP)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
