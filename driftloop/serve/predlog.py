"""The prediction log: every prediction, durably, off the request path.

Requests only append their batch's arrays to an in-memory list. A background
thread writes what has gathered to a new parquet file every ``flush_seconds``
and once more when the service stops. Each file is written under a temporary
name, fsynced, then renamed, so a reader never sees half a file; each process
names its files with its pid and a sequence number, so several workers can
write into one folder at once. Files are never rewritten: the log is
append-only, and monitoring reads the folder as one table.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from driftloop.config.schema import ColumnType
from driftloop.core import rollout
from driftloop.core.data import ARROW_TYPES

log = logging.getLogger(__name__)
CONVERSION_ERRORS = (pa.ArrowException, ValueError, TypeError, OverflowError)
SHADOW_FIELDS = (rollout.SHADOW_ROLE, rollout.SHADOW_VERSION, rollout.SHADOW_STATUS)


@dataclass(frozen=True)
class Entry:
    """One micro-batch: column name -> values (numpy arrays or lists), all one length."""

    columns: Mapping[str, Any]
    rows: int


class PredictionLog:
    def __init__(
        self,
        folder: Path,
        schema: pa.Schema,
        flush_seconds: float,
        on_flush: Callable[[int], None] | None = None,
    ) -> None:
        self.folder = folder
        self.schema = schema
        self.flush_seconds = flush_seconds
        self.on_flush = on_flush
        self._pending: list[Entry] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = 0
        self._token = uuid.uuid4().hex[:8]
        self.written = 0
        self.dropped = 0

    def add_columns(self, columns: Mapping[str, pa.DataType]) -> None:
        """Widen the schema (a new model's class columns); older rows get nulls."""
        with self._lock:
            for name, kind in columns.items():
                if self.schema.get_field_index(name) < 0:
                    self.schema = self.schema.append(pa.field(name, kind))

    def append(self, entry: Entry) -> None:
        with self._lock:
            self._pending.append(entry)

    @property
    def pending_rows(self) -> int:
        with self._lock:
            return sum(e.rows for e in self._pending)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and write everything still pending."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except OSError:
                log.exception("prediction log: write failed; rows kept for the next flush")

    def flush(self) -> int:
        with self._lock:
            entries, self._pending = self._pending, []
            schema = self.schema
        if not entries:
            return 0
        table = self._table(entries, schema)
        if table.num_rows == 0:
            return 0
        try:
            self._write(table)
        except OSError:
            with self._lock:  # put them back in front, in order
                self._pending = entries + self._pending
            raise
        rows: int = table.num_rows
        self.written += rows
        if self.on_flush is not None:
            self.on_flush(rows)
        return rows

    def _table(self, entries: list[Entry], schema: pa.Schema) -> pa.Table:
        """All entries as one table; an entry that cannot fit the schema (request
        validation should make that impossible) is dropped, loudly, not retried forever."""
        try:
            return build_table(entries, schema)
        except CONVERSION_ERRORS:
            good = []
            for entry in entries:
                try:
                    build_table([entry], schema)
                except CONVERSION_ERRORS as exc:
                    self.dropped += entry.rows
                    log.error("prediction log: dropped %d row(s): %s", entry.rows, exc)
                else:
                    good.append(entry)
            return build_table(good, schema)

    def _write(self, table: pa.Table) -> None:
        self._seq += 1
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        # the token keeps two logs of one process (or a reused pid) apart
        name = f"part-{stamp}-{os.getpid()}-{self._token}-{self._seq:06d}.parquet"
        tmp = self.folder / f".{name}.tmp"
        with tmp.open("wb") as handle:
            pq.write_table(table, handle, compression="zstd")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.folder / name)


def build_table(entries: list[Entry], schema: pa.Schema) -> pa.Table:
    columns = []
    for field in schema:
        given = [entry.columns.get(field.name) for entry in entries]
        if all(part is None for part in given):  # e.g. no second model: a column of nulls
            columns.append(pa.nulls(sum(entry.rows for entry in entries), field.type))
            continue
        parts = [[None] * e.rows if p is None else p for p, e in zip(given, entries, strict=True)]
        columns.append(_arrow(parts, field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _arrow(parts: list[Any], kind: pa.DataType) -> pa.Array:
    if all(isinstance(p, np.ndarray) for p in parts) and kind != pa.string():
        values = np.concatenate(parts)
        if values.dtype.kind == "f" and not pa.types.is_floating(kind):
            mask = np.isnan(values)
            return pa.array(np.where(mask, 0, values).astype(_numpy(kind)), kind, mask=mask)
        return pa.array(values, kind, from_pandas=True)
    flat: list[Any] = []
    for part in parts:
        flat.extend(part.tolist() if isinstance(part, np.ndarray) else part)
    return pa.array(flat, kind, from_pandas=True)


def _numpy(kind: pa.DataType) -> str:
    return "bool" if pa.types.is_boolean(kind) else "int64"


def log_schema(inputs: Mapping[str, ColumnType], outputs: Mapping[str, pa.DataType]) -> pa.Schema:
    """request_id, record, logged_at, which model answered (version, role, time per
    row), the inputs, the outputs; then what the second model did with the row
    (driftloop.core.rollout): its role, version, status, time per row and outputs.
    The second model's columns are null when there is none."""
    fields = [
        pa.field("request_id", pa.string()),
        pa.field("record", pa.int32()),
        pa.field("logged_at", pa.timestamp("us", tz="UTC")),
        pa.field("model_version", pa.string()),
        pa.field(rollout.ROLE, pa.string()),
        pa.field(rollout.MODEL_MS, pa.float64()),
    ]
    fields += [pa.field(name, ARROW_TYPES[kind]) for name, kind in inputs.items()]
    fields += [pa.field(name, kind) for name, kind in outputs.items()]
    fields += [pa.field(name, pa.string()) for name in SHADOW_FIELDS]
    fields += [pa.field(rollout.SHADOW_MS, pa.float64())]
    fields += [pa.field(rollout.shadow_column(name), kind) for name, kind in outputs.items()]
    return pa.schema(fields)
