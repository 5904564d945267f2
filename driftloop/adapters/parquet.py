"""Parquet files whose bytes depend only on the data (Arrow's writer).

Fixed compression, row-group size and no schema metadata: the same rows in the
same order give the same file, so DVC sees nothing changed and skips
downstream stages.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

COMPRESSION = "zstd"
# level 1 writes about twice as fast as 3 here, and files are no larger once
# dictionaries are kept to text columns (doubles rarely repeat)
COMPRESSION_LEVEL = 1


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    return [
        f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]


def _writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    return pq.ParquetWriter(
        str(path),
        schema.remove_metadata(),
        compression=COMPRESSION,
        compression_level=COMPRESSION_LEVEL,
        use_dictionary=_dictionary_columns(schema),
        write_statistics=True,
        version="2.6",
    )


class RowGroupWriter:
    """Streams tables into one file in row groups of exactly ``row_group_size``."""

    def __init__(self, path: Path, schema: pa.Schema, row_group_size: int) -> None:
        self.schema = schema.remove_metadata()
        self.size = row_group_size
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.rows = 0
        self.writer = _writer(path, self.schema)

    def write(self, table: pa.Table) -> None:
        self.pending.append(table.replace_schema_metadata(None))
        self.pending_rows += table.num_rows
        while self.pending_rows >= self.size:
            self._flush(self.size)

    def _flush(self, count: int) -> None:
        merged = pa.concat_tables(self.pending).combine_chunks()
        head, tail = merged.slice(0, count), merged.slice(count)
        self.writer.write_table(head, row_group_size=count)
        self.rows += head.num_rows
        self.pending = [tail] if tail.num_rows else []
        self.pending_rows = tail.num_rows

    def close(self) -> int:
        if self.pending_rows:
            self._flush(self.pending_rows)
        self.writer.close()
        return self.rows


def write_table(table: pa.Table, path: Path, row_group_size: int) -> None:
    """Write a whole table to one deterministic parquet file."""
    writer = RowGroupWriter(path, table.schema, row_group_size)
    if table.num_rows:
        writer.write(table)
    writer.close()


def read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    """Read a parquet file or a folder of part files in name order."""
    if path.is_dir():
        parts = sorted(path.glob("*.parquet"))
        if not parts:
            raise FileNotFoundError(f"{path}: no parquet files")
        return pa.concat_tables([pq.read_table(part, columns=columns) for part in parts])
    return pq.read_table(path, columns=columns)


def parquet_files(path: Path) -> list[Path]:
    """The data files of a parquet file or folder, in name order (as Spark reads them)."""
    if not path.is_dir():
        return [path]
    return sorted(
        p for p in path.glob("*.parquet") if p.is_file() and not p.name.startswith(("_", "."))
    )


def read_schema(path: Path) -> pa.Schema:
    return pq.read_schema(path)


def head(path: Path, columns: list[str], rows: int) -> pa.Table:
    """The first ``rows`` rows of a parquet file (a fixed sample of a data set)."""
    batches = pq.ParquetFile(path).iter_batches(batch_size=rows, columns=columns)
    first = next(batches, None)
    if first is None:
        return pa.Table.from_pylist([], schema=pq.read_schema(path)).select(columns)
    return pa.Table.from_batches([first])
