"""ingest: read the source named in conf/data (plus labelled production batches)
and write data/raw as one deterministic parquet file with the declared schema.

Sources: a data set packaged with nannyml, a local CSV or parquet file, and
batches under data/incoming/<batch>/ (``data.*`` with features and
predictions; ``labels.*`` with id and target, arriving later). Only labelled
rows inside the training window are kept.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from driftloop.adapters import parquet
from driftloop.core import runner
from driftloop.core.data import (
    ROW_GROUP,
    combine,
    conform,
    load_batches,
    load_source,
    to_arrow,
)
from driftloop.core.outputs import atomic_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--source", type=Path, required=True, help="file source (kind: file)")
    parser.add_argument("--incoming", type=Path, required=True, help="production batches")
    parser.add_argument("--out", type=Path, required=True, help="raw parquet file")


def main(args: argparse.Namespace) -> None:
    config = runner.params(args.params)
    data = config.data
    with runner.timed("ingest") as say:
        say.step(f"reading the source ({data.source.kind.value}) and batches under {args.incoming}")
        frame, name = load_source(data, args.source)
        batches, pending = load_batches(data, args.incoming)
        raw = combine([conform(frame, data, name), *batches], data)
        with atomic_file(args.out) as tmp:
            parquet.write_table(to_arrow(raw, data), tmp, ROW_GROUP)
        say(f"{len(raw)} rows x {len(data.schema)} columns from {name}")
        say(f"{len(batches)} labelled batch(es), {pending} awaiting labels")
