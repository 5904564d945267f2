"""snapshot: the new part of the prediction log as a production batch.

The service appends parquet files to the prediction log; this takes the
files not taken before and writes them as data/incoming/<data set>/<batch>/
data.parquet, where ingest (once labels arrive) and monitor read batches.
Which files were taken is kept in a small state file beside the batches.
The batch is written first, atomically, and named after its files, so a run
killed between the two steps is finished by the next one: it finds the same
files, the same name, the folder already there, and only records them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from driftloop.config.schema import DataConfig
from driftloop.core import runner
from driftloop.core.outputs import atomic_dir, write_json

STATE = ".snapshots.json"
log = logging.getLogger(__name__)


# --- core -----------------------------------------------------------------------


def adopt_legacy_logs(log_dir: Path) -> int:
    """Move the files a service wrote before each data set had its own log folder
    (straight into the log root, the parent of ``log_dir``) into ``log_dir``; how
    many. That service served the composed data set, whose folder this is."""
    legacy = sorted(log_dir.parent.glob("part-*.parquet")) if log_dir.parent.is_dir() else []
    if legacy:
        log_dir.mkdir(parents=True, exist_ok=True)
        for file in legacy:
            os.replace(file, log_dir / file.name)
    return len(legacy)


def new_files(log_dir: Path, taken: set[str]) -> list[Path]:
    """Complete log files (the service renames them into place) not taken yet."""
    files = sorted(log_dir.glob("part-*.parquet")) if log_dir.is_dir() else []
    return [f for f in files if f.name not in taken]


def batch_frame(files: list[Path], data: DataConfig) -> pd.DataFrame:
    """The logged rows with the data set's columns; a missing timestamp is the log time.

    Files a service wrote before a model's columns joined the log (the rollout's,
    a multiclass model's classes) lack some columns: the batch has every column,
    null where a file had none."""
    schema = pa.unify_schemas([pq.read_schema(f) for f in files])
    dataset = pq.ParquetDataset([str(f) for f in files], schema=schema)
    frame: pd.DataFrame = dataset.read().to_pandas()
    logged = pd.to_datetime(frame["logged_at"], utc=True).dt.tz_localize(None)
    stamp = data.columns.timestamp
    if stamp:
        given = frame[stamp] if stamp in frame else pd.Series(pd.NaT, index=frame.index)
        frame[stamp] = pd.to_datetime(given).fillna(logged)
    frame = frame.sort_values(["logged_at", "request_id", "record"], kind="stable")
    return frame.reset_index(drop=True)


def batch_name(files: list[Path], frame: pd.DataFrame) -> str:
    """Named by when its first row was logged and which files it holds."""
    first = pd.to_datetime(frame["logged_at"], utc=True).min()
    digest = hashlib.sha256("\n".join(f.name for f in files).encode()).hexdigest()[:8]
    return f"log-{first:%Y%m%dT%H%M%S}-{digest}"


def snapshot(log_dir: Path, incoming: Path, data: DataConfig) -> tuple[str, int] | None:
    """Write the untaken log files as one batch; (name, rows), or None if none."""
    moved = adopt_legacy_logs(log_dir)
    if moved:
        log.warning("snapshot: moved %d log file(s) of %s into %s", moved, log_dir.parent, log_dir)
    state = incoming / STATE
    taken = set(json.loads(state.read_text())) if state.is_file() else set()
    files = new_files(log_dir, taken)
    if not files:
        return None
    frame = batch_frame(files, data)
    name = batch_name(files, frame)
    if not (incoming / name).is_dir():
        with atomic_dir(incoming / name) as folder:
            frame.to_parquet(folder / "data.parquet", index=False, compression="zstd")
    write_json(state, sorted(taken | {f.name for f in files}))
    return name, len(frame)


# --- wrapper ---------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument(
        "--log-dir",
        type=Path,
        help="the log root (default serve.prediction_log_dir); the data set logs into "
        "<root>/<data.name>",
    )
    parser.add_argument("--incoming", type=Path, help="default: data/incoming/<data.name>")


def main(args: argparse.Namespace) -> None:
    config = runner.load_params(args.params)
    log_dir = (args.log_dir or Path(config.serve.prediction_log_dir)) / config.data.name
    incoming = args.incoming or Path("data/incoming") / config.data.name
    with runner.timed("snapshot") as say:
        done = snapshot(log_dir, incoming, config.data)
        if done is None:
            say(f"nothing new in {log_dir}")
        else:
            say(f"{done[1]} logged rows -> {incoming / done[0]}")
