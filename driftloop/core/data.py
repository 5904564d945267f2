"""Tabular data as the declared schema has it: the source, production batches and
their labels, read, conformed to data.schema and turned into Arrow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from driftloop.adapters import nml
from driftloop.config.schema import ColumnType, DataConfig, SourceKind, WindowConfig
from driftloop.errors import DataError

ROW_GROUP = 131072


ARROW_TYPES = {
    ColumnType.int: pa.int64(),
    ColumnType.float: pa.float64(),
    ColumnType.string: pa.string(),
    ColumnType.bool: pa.bool_(),
    ColumnType.timestamp: pa.timestamp("us"),
}


TRUE_TEXT = {"true", "1", "yes", "t", "y", "1.0"}


FALSE_TEXT = {"false", "0", "no", "f", "n", "0.0"}


def read_table_file(path: Path) -> pd.DataFrame:
    """A CSV or parquet file as a frame; a clear error when it is missing or empty."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        files = sorted([*path.glob("*.csv"), *path.glob("*.parquet"), *path.glob("*.pq")])
        if not files:
            raise DataError(f"{path}: folder holds no .csv or .parquet file")
        return pd.concat([read_table_file(f) for f in files], ignore_index=True)
    try:
        csv = path.suffix.lower() == ".csv"
        frame = pd.read_csv(path) if csv else pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{path}: cannot be read as {path.suffix or 'a table'} ({exc})") from exc
    if frame.empty:
        raise DataError(f"{path}: no rows")
    return frame


def conform(frame: pd.DataFrame, data: DataConfig, where: str) -> pd.DataFrame:
    """Keep exactly the schema's columns, each converted to its declared type."""
    missing = [name for name in data.schema if name not in frame.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {', '.join(missing)} named in data.schema")
    out = {
        name: _convert(frame[name], kind, f"{where}: column '{name}'")
        for name, kind in data.schema.items()
    }
    return pd.DataFrame(out)


def _convert(series: pd.Series, kind: ColumnType, where: str) -> pd.Series:
    present = series.notna()
    if kind in (ColumnType.int, ColumnType.float):
        converted = pd.to_numeric(series, errors="coerce")
        if kind is ColumnType.int:
            fractional = converted.notna() & (converted != np.floor(converted))
            converted = converted.where(~fractional)
            converted = converted.astype("Int64")
        else:
            converted = converted.astype("float64")
    elif kind is ColumnType.bool:
        converted = _to_bool(series)
    elif kind is ColumnType.timestamp:
        converted = pd.to_datetime(series, errors="coerce").astype("datetime64[us]")
    else:
        converted = series.astype("string")
    bad = present & converted.isna()
    if bad.any():
        examples = ", ".join(repr(v) for v in series[bad].unique()[:3])
        raise DataError(f"{where}: {int(bad.sum())} value(s) are not {kind.value}, e.g. {examples}")
    return converted


def _to_bool(series: pd.Series) -> pd.Series:
    if series.dtype == bool:
        return series.astype("boolean")
    text = series.astype("string").str.strip().str.lower()
    result = pd.Series(pd.NA, index=series.index, dtype="boolean")
    result[text.isin(TRUE_TEXT)] = True
    result[text.isin(FALSE_TEXT)] = False
    return result


def encode_target(frame: pd.DataFrame, data: DataConfig, where: str) -> pd.DataFrame:
    """A text binary target as 0/1 by data.columns.labels (negative, positive);
    values already written as 0 or 1 are kept, any other label is an error."""
    labels, target = data.columns.labels, data.columns.target
    if not labels or target not in frame.columns:
        return frame
    text = frame[target].astype("string").str.strip()
    codes = {labels[0]: 0, labels[1]: 1, "0": 0, "1": 1, "0.0": 0, "1.0": 1}
    encoded = text.map(codes, na_action="ignore")
    bad = text.notna() & encoded.isna()
    if bad.any():
        examples = ", ".join(repr(v) for v in text[bad].unique()[:3])
        hint = " (YAML reads unquoted yes/no as booleans: quote the labels)"
        raise DataError(
            f"{where}: column '{target}': {int(bad.sum())} label(s) are neither of "
            f"data.columns.labels {labels}, e.g. {examples}"
            + (hint if set(labels) <= {"True", "False"} else "")
        )
    return frame.assign(**{target: encoded.astype("Int64")})


def in_window(frame: pd.DataFrame, window: WindowConfig, timestamp: str | None) -> pd.DataFrame:
    if timestamp is None or (window.start is None and window.end is None):
        return frame
    keep = pd.Series(True, index=frame.index)
    if window.start is not None:
        keep &= frame[timestamp] >= pd.Timestamp(window.start)
    if window.end is not None:
        keep &= frame[timestamp] < pd.Timestamp(window.end)
    return frame[keep]


def batch_data(batch: Path) -> pd.DataFrame:
    """A production batch's rows (its data.csv or data.parquet)."""
    data_files = sorted(batch.glob("data.*"))
    if not data_files:
        raise DataError(f"{batch}: batch folder has no data.csv or data.parquet")
    return read_table_file(data_files[0])


def batch_labels(batch: Path, data: DataConfig) -> pd.DataFrame | None:
    """A batch's labels (id and target), or None while they are pending."""
    label_files = sorted(batch.glob("labels.*"))
    if not label_files:
        return None
    labels = read_table_file(label_files[0])
    for name in (data.columns.id, data.columns.target):
        if name not in labels.columns:
            raise DataError(f"{label_files[0]}: missing column '{name}'")
    return encode_target(labels[[data.columns.id, data.columns.target]], data, str(label_files[0]))


def labelled_batch(batch: Path, data: DataConfig) -> pd.DataFrame | None:
    """A production batch joined to its labels, or None while labels are pending."""
    rows = batch_data(batch)
    labels = batch_labels(batch, data)
    if labels is None:
        return None
    rows = rows.drop(columns=[data.columns.target], errors="ignore")
    return rows.merge(labels, on=data.columns.id, how="inner")


def combine(frames: list[pd.DataFrame], data: DataConfig) -> pd.DataFrame:
    """Concatenate, window and order rows (by time, then id) for a stable file."""
    frame = pd.concat(frames, ignore_index=True)
    frame = in_window(frame, data.window, data.columns.timestamp)
    if frame.empty:
        raise DataError("no rows left inside the training window data.window")
    order = [c for c in (data.columns.timestamp, data.columns.id) if c]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)


def to_arrow(frame: pd.DataFrame, data: DataConfig) -> pa.Table:
    schema = pa.schema([(name, ARROW_TYPES[kind]) for name, kind in data.schema.items()])
    return pa.Table.from_pandas(frame, schema=schema, preserve_index=False)


def load_source(data: DataConfig, source_path: Path) -> tuple[pd.DataFrame, str]:
    """The source's rows (its target encoded by data.columns.labels) and name."""
    if data.source.kind is SourceKind.nannyml:
        assert data.source.dataset is not None
        file, targets = nml.packaged_files(data.source.dataset, data.source.part)
        frame = read_table_file(file)
        if targets is not None:
            frame = frame.merge(read_table_file(targets), on=data.columns.id, how="left")
        name = f"nannyml:{data.source.dataset}/{data.source.part}"
    else:
        frame, name = read_table_file(source_path), str(source_path)
    return encode_target(frame, data, name), name


def load_batches(data: DataConfig, incoming: Path) -> tuple[list[pd.DataFrame], int]:
    frames: list[pd.DataFrame] = []
    pending = 0
    if not data.window.include_incoming or not incoming.is_dir():
        return frames, pending
    for batch in sorted(p for p in incoming.iterdir() if p.is_dir()):
        rows = labelled_batch(batch, data)
        if rows is None:
            pending += 1
            continue
        frames.append(conform(rows, data, str(batch)))
    return frames, pending
