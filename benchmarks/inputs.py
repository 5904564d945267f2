"""The input the featurize, spark_cluster, train and batch_predict benchmarks share.

One parquet file per row count under benchmarks/data, resampled from NannyML's
synthetic car loan reference data (seeded jitter, fresh ids, timestamps spread
over two years), conformed and written as the ingest stage does; generated once
and reused while it exists.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.harness import DATA
from driftloop.adapters import nml, parquet
from driftloop.config.schema import DriftloopConfig
from driftloop.core.data import ROW_GROUP, conform, to_arrow

SOURCE = ("synthetic_car_loan", "reference")
SEED = 20240601
CHUNK_ROWS = 1_000_000
FIRST_TIME = np.datetime64("2018-01-01T00:00:00", "us")
SPAN = np.timedelta64(730 * 24 * 3600 * 10**6, "us")
# relative standard deviation of the multiplicative noise, per numeric column
JITTER = {"car_value": 0.02, "debt_to_income_ratio": 0.02, "driver_tenure": 0.05}


def input_path(rows: int) -> Path:
    return DATA / f"car_loan-{rows}-seed{SEED}.parquet"


def ensure_input(rows: int, cfg: DriftloopConfig) -> tuple[Path, float]:
    """The input file of ``rows`` rows (generated unless cached) and seconds spent."""
    path = input_path(rows)
    if path.exists():
        return path, 0.0
    start = time.perf_counter()
    generate(path, rows, cfg)
    return path, time.perf_counter() - start


def generate(path: Path, rows: int, cfg: DriftloopConfig) -> None:
    """Write ``rows`` resampled rows in chunks, with ingest's types and writer."""
    source = pd.read_csv(nml.packaged_files(*SOURCE)[0])
    rng = np.random.default_rng(SEED)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    writer: parquet.RowGroupWriter | None = None
    for first in range(0, rows, CHUNK_ROWS):
        chunk = resample(source, rng, first, min(CHUNK_ROWS, rows - first), rows)
        table = to_arrow(conform(chunk, cfg.data, "benchmark"), cfg.data)
        writer = writer or parquet.RowGroupWriter(tmp, table.schema, ROW_GROUP)
        writer.write(table)
    assert writer is not None
    writer.close()
    tmp.replace(path)


def resample(
    source: pd.DataFrame, rng: np.random.Generator, first: int, rows: int, total: int
) -> pd.DataFrame:
    """Rows drawn with replacement, numbers jittered, ids and times made fresh."""
    frame = source.iloc[rng.integers(0, len(source), rows)].reset_index(drop=True)
    for column, scale in JITTER.items():
        frame[column] = frame[column] * rng.normal(1.0, scale, rows)
    frame["car_value"] = frame["car_value"].round()
    ids = np.arange(first, first + rows, dtype=np.int64)
    frame["id"] = ids
    frame["timestamp"] = FIRST_TIME + ids * (SPAN // total)
    return frame


def generated_inputs(
    rows: list[int], cfg: DriftloopConfig
) -> tuple[dict[int, Path], list[Path], float]:
    """Input files by row count, the ones generated now (to delete after), seconds spent."""
    paths: dict[int, Path] = {}
    generated: list[Path] = []
    spent = 0.0
    for count in sorted(set(rows)):
        existed = input_path(count).exists()
        paths[count], took = ensure_input(count, cfg)
        spent += took
        if not existed:
            generated.append(paths[count])
    return paths, generated, spent
