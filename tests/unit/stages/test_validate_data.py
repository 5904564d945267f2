"""validate_data: the suite built from YAML, and the gate on real GX runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from driftloop.adapters import gx
from driftloop.config.schema import DriftloopConfig
from driftloop.core import data, validation


@pytest.fixture(scope="module")
def raw(config: DriftloopConfig) -> pd.DataFrame:
    frame, _ = data.load_source(config.data, Path("unused"))
    conformed = data.conform(frame.head(5000), config.data, "ref")
    return validation.frame_for_gate(data.to_arrow(conformed, config.data))


def run_gate(config: DriftloopConfig, frame: pd.DataFrame, docs: Path | None = None) -> gx.Outcome:
    specs = validation.build_specs(config.data, config.expectations)
    return gx.validate(frame, config.expectations.suite, specs, docs)


def test_suite_covers_schema_sets_ranges_nulls_and_ids(config: DriftloopConfig) -> None:
    specs = validation.build_specs(config.data, config.expectations)
    kinds = {(s.type, s.kwargs.get("column")) for s in specs}
    assert ("expect_table_columns_to_match_set", None) in kinds
    assert ("expect_table_row_count_to_be_between", None) in kinds
    assert ("expect_column_values_to_be_unique", "id") in kinds
    assert ("expect_column_values_to_be_in_set", "salary_range") in kinds
    assert ("expect_column_values_to_be_between", "car_value") in kinds
    assert ("expect_column_values_to_not_be_null", "driver_tenure") in kinds
    tenure = next(
        s for s in specs if s.type.endswith("not_be_null") and s.kwargs["column"] == "driver_tenure"
    )
    assert tenure.kwargs["mostly"] == 0.99


def test_good_data_passes_and_writes_docs(
    config: DriftloopConfig, raw: pd.DataFrame, tmp_path: Path
) -> None:
    outcome = run_gate(config, raw, tmp_path / "docs")
    assert outcome.success, outcome.failures
    assert (tmp_path / "docs" / "index.html").is_file()
    summary = validation.gate_summary(outcome)
    assert summary == {"success": True, "evaluated": outcome.evaluated, "failed": []}


def test_bad_data_fails_naming_each_expectation_with_examples(
    config: DriftloopConfig, raw: pd.DataFrame
) -> None:
    bad = raw.copy()
    bad.loc[5, "car_value"] = -1.0
    bad.loc[6, "salary_range"] = "a million"
    bad.loc[7, "id"] = bad.loc[8, "id"]
    bad.loc[9:100, "loan_length"] = None
    outcome = run_gate(config, bad)
    assert not outcome.success
    lines = {validation.describe_failure(f) for f in outcome.failures}
    text = "\n".join(sorted(lines))
    assert "expect_column_values_to_be_between on 'car_value'" in text and "-1.0" in text
    assert "expect_column_values_to_be_in_set on 'salary_range'" in text and "'a million'" in text
    assert "expect_column_values_to_be_unique on 'id'" in text
    assert "expect_column_values_to_not_be_null on 'loan_length'" in text
    assert len(outcome.failures) == 4, text


def test_missing_column_fails_the_schema_check(config: DriftloopConfig, raw: pd.DataFrame) -> None:
    outcome = run_gate(config, raw.drop(columns=["driver_tenure"]))
    assert not outcome.success
    assert any(f["expectation"] == "expect_table_columns_to_match_set" for f in outcome.failures)
