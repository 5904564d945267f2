"""validate_data: the data gate. A Great Expectations suite built from
conf/expectations (plus the column types and categories of conf/data) runs on
data/raw. It writes the full result JSON and Data Docs HTML; when the gate
fails it exits non-zero naming each failing expectation with example values,
so `dvc repro` stops before anything downstream runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from driftloop.adapters import gx, parquet
from driftloop.core import runner
from driftloop.core.outputs import atomic_dir, write_json
from driftloop.core.validation import (
    build_specs,
    describe_failure,
    frame_for_gate,
    gate_summary,
)
from driftloop.errors import DataError


def read_raw(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{path}: raw data not found (run the ingest stage)")
    return frame_for_gate(parquet.read_table(path))


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
