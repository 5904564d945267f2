"""The data gate's expectations: built from conf/expectations and the types and
categories of conf/data, run by Great Expectations (driftloop.adapters.gx),
and summarised for people and for DVC metrics."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from driftloop.adapters import gx
from driftloop.config.schema import ColumnType, DataConfig, ExpectationsConfig

# pandas dtype names a column of each declared type arrives as. GX checks
# numpy dtypes only, so an int column that may hold nulls arrives as float64.
DTYPES = {
    ColumnType.int: ["int64"],
    ColumnType.float: ["float64"],
    ColumnType.string: ["object", "str", "string"],
    ColumnType.bool: ["bool"],
    ColumnType.timestamp: ["datetime64[us]", "datetime64[ns]"],
}


NULLABLE_DTYPES = {ColumnType.int: ["int64", "float64"], ColumnType.bool: ["bool", "object"]}


def build_specs(data: DataConfig, expectations: ExpectationsConfig) -> list[gx.Spec]:
    """The suite: schema, row count, then each column's declared checks."""
    specs = [
        gx.Spec(
            "expect_table_row_count_to_be_between",
            {"min_value": expectations.row_count_min, "max_value": expectations.row_count_max},
        )
    ]
    if expectations.check_schema:
        specs.append(
            gx.Spec(
                "expect_table_columns_to_match_set",
                {"column_set": list(data.schema), "exact_match": True},
            )
        )
        for name, kind in data.schema.items():
            types = _dtypes(kind, expectations.columns.get(name))
            specs.append(
                gx.Spec(
                    "expect_column_values_to_be_in_type_list", {"column": name, "type_list": types}
                )
            )
    for name, values in data.categories.items():
        mostly = expectations.columns[name].mostly if name in expectations.columns else 1.0
        specs.append(_in_set(name, values, mostly))
    for name, spec in expectations.columns.items():
        specs.extend(_column_specs(name, spec))
    return specs


def _dtypes(kind: ColumnType, spec: Any) -> list[str]:
    may_be_null = spec is None or spec.not_null is None or spec.not_null < 1.0
    return NULLABLE_DTYPES.get(kind, DTYPES[kind]) if may_be_null else DTYPES[kind]


def _in_set(column: str, values: list[Any], mostly: float) -> gx.Spec:
    return gx.Spec(
        "expect_column_values_to_be_in_set",
        {"column": column, "value_set": list(values), "mostly": mostly},
    )


def _column_specs(name: str, spec: Any) -> list[gx.Spec]:
    specs = []
    if spec.not_null is not None:
        specs.append(
            gx.Spec(
                "expect_column_values_to_not_be_null", {"column": name, "mostly": spec.not_null}
            )
        )
    if spec.min is not None or spec.max is not None:
        specs.append(
            gx.Spec(
                "expect_column_values_to_be_between",
                {
                    "column": name,
                    "min_value": spec.min,
                    "max_value": spec.max,
                    "mostly": spec.mostly,
                },
            )
        )
    if spec.allowed is not None:
        specs.append(_in_set(name, spec.allowed, spec.mostly))
    if spec.unique:
        specs.append(gx.Spec("expect_column_values_to_be_unique", {"column": name}))
    return specs


def describe_failure(failure: dict[str, Any]) -> str:
    """One line: which expectation failed, on what, with example bad values."""
    target = f" on '{failure['column']}'" if failure.get("column") else ""
    parts = [f"{failure['expectation']}{target}"]
    if failure.get("unexpected_percent") is not None:
        parts.append(f"{failure['unexpected_percent']:.3g}% of rows")
    if failure.get("examples"):
        parts.append("e.g. " + ", ".join(repr(v) for v in failure["examples"]))
    elif failure.get("observed_value") is not None:
        parts.append(f"observed {failure['observed_value']!r}")
    if failure.get("error"):
        parts.append(f"error: {failure['error']}")
    return " - ".join(parts)


def gate_summary(outcome: gx.Outcome) -> dict[str, Any]:
    """Deterministic summary (no run ids or times): what downstream depends on."""
    return {
        "success": outcome.success,
        "evaluated": outcome.evaluated,
        "failed": [
            {
                "expectation": f["expectation"],
                "column": f["column"],
                "unexpected_percent": f["unexpected_percent"],
            }
            for f in outcome.failures
        ],
    }


def frame_for_gate(table: pa.Table) -> pd.DataFrame:
    """Plain numpy dtypes (GX checks numpy dtype names, not pandas extension types)."""
    frame: pd.DataFrame = table.replace_schema_metadata(None).to_pandas()
    return frame
