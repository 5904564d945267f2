"""validate_data: the data gate. A Great Expectations suite built from
conf/expectations (plus the column types and categories of conf/data) runs on
data/raw. It writes the full result JSON and Data Docs HTML; when the gate
fails it exits non-zero naming each failing expectation with example values,
so `dvc repro` stops before anything downstream runs.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from stages import runner
from stages.adapters import gx, parquet
from stages.config.schema import ColumnType, DataConfig, ExpectationsConfig
from stages.errors import DataError
from stages.outputs import atomic_dir, write_json

log = logging.getLogger(__name__)

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


# --- core -----------------------------------------------------------------------


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


def read_raw(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{path}: raw data not found (run the ingest stage)")
    return frame_for_gate(parquet.read_table(path))


def frame_for_gate(table: pa.Table) -> pd.DataFrame:
    """Plain numpy dtypes (GX checks numpy dtype names, not pandas extension types)."""
    frame: pd.DataFrame = table.replace_schema_metadata(None).to_pandas()
    return frame


# --- wrapper ---------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--raw", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True, help="full validation result JSON")
    parser.add_argument("--docs", type=Path, required=True, help="Data Docs HTML folder")
    parser.add_argument("--summary", type=Path, required=True, help="gate summary (DVC metric)")


def main(args: argparse.Namespace) -> None:
    config = runner.params(args.params)
    with runner.timed("validate_data") as say:
        frame = read_raw(args.raw)
        specs = build_specs(config.data, config.expectations)
        say.step(f"running {len(specs)} expectations on {len(frame)} rows")
        with atomic_dir(args.docs) as docs:
            outcome = gx.validate(frame, config.expectations.suite, specs, docs)
        write_json(args.result, outcome.result)
        if not outcome.success:
            lines = "\n  ".join(describe_failure(f) for f in outcome.failures)
            raise DataError(
                f"data gate failed: {len(outcome.failures)} of {outcome.evaluated} expectations "
                f"on {args.raw} (suite {config.expectations.suite}; "
                f"details in {args.result}):\n  {lines}"
            )
        write_json(args.summary, gate_summary(outcome))
        say(f"{outcome.evaluated} expectations passed on {len(frame)} rows")
