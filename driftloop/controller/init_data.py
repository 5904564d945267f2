"""`driftloop init-data PATH --name NAME --target COLUMN`: onboard a data set
with YAML only.

It profiles a CSV or parquet file and writes the config groups that describe
it: conf/data/NAME.yaml (columns, types, roles, allowed categories),
conf/expectations/NAME.yaml (a starter data gate from the profile: types,
ranges with a margin, null rates, unique ids), conf/features/NAME.yaml (no
derived features: none can be justified from a profile; a time split when
there is a timestamp) and conf/evaluate/NAME.yaml (a model gate that asks
for better than chance, to tighten after the first run). It prints the one
override that selects them. Nothing is written when the file cannot be
onboarded, and existing configs are kept unless --force.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from driftloop.config.compose import find_root
from driftloop.config.schema import ColumnType, Problem
from driftloop.core.data import FALSE_TEXT, TRUE_TEXT, read_table_file
from driftloop.core.outputs import atomic_file
from driftloop.errors import ConfigError, DataError

# a text column with at most this many values is categorical; above, it is left out
MAX_CATEGORIES = 50
# a numeric target with at most this many values is a class label
MAX_CLASSES = 20
# ranges get this share of their span as a margin on each side
RANGE_MARGIN = 0.1
ID_NAMES = ("id", "identifier", "row_id", "record_id")
# columns an earlier model wrote: never features (they would leak the target)
PREDICTION_PREFIXES = ("y_pred", "prediction", "predicted")

# --- core: a profile and the configs it implies ---------------------------------------


@dataclass
class Profile:
    name: str
    source: str
    rows: int
    target: str
    timestamp: str | None
    id: str
    problem: Problem
    schema: dict[str, ColumnType]
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    categories: dict[str, list[str]] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    # a text binary target's labels, negative then positive (read as 0 and 1)
    labels: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    null_share: dict[str, float] = field(default_factory=dict)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


def column_type(series: pd.Series) -> ColumnType:
    if pd.api.types.is_bool_dtype(series):
        return ColumnType.bool
    if pd.api.types.is_integer_dtype(series):
        return ColumnType.int
    if pd.api.types.is_float_dtype(series):
        return ColumnType.float
    if pd.api.types.is_datetime64_any_dtype(series):
        return ColumnType.timestamp
    return ColumnType.timestamp if _dates(series) else ColumnType.string


def _dates(series: pd.Series) -> bool:
    values = series.dropna().astype(str)
    if values.empty or not values.str.match(r"^\d{4}-\d{2}-\d{2}").all():
        return False
    return bool(pd.to_datetime(values, errors="coerce").notna().all())


def find_id(frame: pd.DataFrame, given: str | None) -> str:
    if given is not None:
        return given
    names = [str(name) for name in frame.columns]
    ordered = [n for n in names if n.lower() in ID_NAMES] + [
        n for n in names if n.lower().endswith("_id")
    ]
    for name in ordered:
        if frame[name].notna().all() and frame[name].is_unique:
            return name
    raise ConfigError(
        "no id column found (a unique column named id or *_id): name one with --id COLUMN"
    )


def problem_of(target: pd.Series, kind: ColumnType) -> Problem:
    values = target.dropna().unique()
    if kind is ColumnType.string and len(values) == 2:
        return Problem.binary  # text labels, read as 0/1 by data.columns.labels
    if kind in (ColumnType.string, ColumnType.timestamp):
        return Problem.multiclass
    if set(values.tolist()) <= {0, 1}:
        return Problem.binary
    if kind is ColumnType.int and len(values) <= MAX_CLASSES:
        return Problem.multiclass
    return Problem.regression


def text_labels(target: pd.Series, name: str, positive: str | None) -> list[str]:
    """A text binary target's labels, negative then positive: --positive, or
    the yes of a yes/no (true/false, y/n) pair."""
    classes = sorted(target.dropna().astype(str).str.strip().unique().tolist())
    if positive is None:
        yes = [c for c in classes if c.lower() in TRUE_TEXT]
        no = [c for c in classes if c.lower() in FALSE_TEXT]
        if len(yes) != 1 or len(no) != 1:
            raise ConfigError(
                f"target '{name}' has two text classes {classes}: name the positive one "
                f"with --positive {classes[-1]}"
            )
        positive = yes[0]
    if positive not in classes:
        raise ConfigError(f"--positive {positive}: not a class of target '{name}' {classes}")
    return [c for c in classes if c != positive] + [positive]


def profile(frame: pd.DataFrame, name: str, source: str, target: str, args: Any) -> Profile:
    named = [("--target", target), ("--timestamp", args.timestamp), ("--id", args.id)]
    for role, column in [*named, *(("--drop", c) for c in args.drop or [])]:
        if column is not None and column not in frame.columns:
            raise ConfigError(f"{role} {column}: no such column in {source}")
    schema = {str(c): column_type(frame[c]) for c in frame.columns}
    if args.timestamp and schema[args.timestamp] is not ColumnType.timestamp:
        raise ConfigError(f"--timestamp {args.timestamp}: its values are not dates")
    result = Profile(
        name=name,
        source=source,
        rows=len(frame),
        target=target,
        timestamp=args.timestamp,
        id=find_id(frame, args.id),
        problem=problem_of(frame[target], schema[target]),
        schema=schema,
        dropped=list(args.drop or []),
    )
    for column, kind in schema.items():
        describe(result, frame[column], column, kind)
    if result.problem is Problem.binary and schema[target] is ColumnType.string:
        result.labels = text_labels(frame[target], target, args.positive)
        result.schema[target] = ColumnType.int  # ingest writes the labels as 0/1
    elif args.positive is not None:
        raise ConfigError(f"--positive: target '{target}' is not two text classes")
    return result


def describe(result: Profile, series: pd.Series, column: str, kind: ColumnType) -> None:
    result.null_share[column] = float(series.isna().mean())
    if kind in (ColumnType.int, ColumnType.float) and series.notna().any():
        result.ranges[column] = (float(series.min()), float(series.max()))
    if column in (result.id, result.target, result.timestamp):
        return
    if column.lower().startswith(PREDICTION_PREFIXES) or column in result.dropped:
        why = "dropped (--drop)" if column in result.dropped else "an earlier model's prediction"
        result.left_out[column] = why
        return
    if kind in (ColumnType.int, ColumnType.float, ColumnType.bool):
        result.numeric.append(column)
    elif kind is ColumnType.string:
        values = sorted(series.dropna().astype(str).unique().tolist())
        if len(values) <= MAX_CATEGORIES:
            result.categorical.append(column)
            result.categories[column] = values
        else:
            result.left_out[column] = f"text with {len(values)} values (more than {MAX_CATEGORIES})"
    else:
        result.left_out[column] = "a second timestamp"


def data_yaml(p: Profile) -> dict[str, Any]:
    kept = [p.id, p.target, *([p.timestamp] if p.timestamp else []), *p.numeric, *p.categorical]
    columns: dict[str, Any] = {"id": p.id, "target": p.target, "timestamp": p.timestamp}
    if p.labels:
        columns["labels"] = p.labels
    columns |= {"numeric": p.numeric, "categorical": p.categorical}
    optional = [c for c in p.numeric + p.categorical if p.null_share[c] > 0]
    return {
        "name": p.name,
        "problem": p.problem.value,
        "source": {"kind": "file", "path": p.source},
        "columns": columns,
        "schema": {c: p.schema[c].value for c in kept},
        "categories": p.categories,
        "optional": optional,
    }


def _round_down(value: float, digits: int = 2) -> float:
    return float(math.floor(value * 10**digits) / 10**digits)


def column_gate(p: Profile, column: str) -> dict[str, Any]:
    gate: dict[str, Any] = {"not_null": _round_down(1.0 - p.null_share[column])}
    if column in p.ranges and column != p.id:
        low, high = p.ranges[column]
        margin = (high - low) * RANGE_MARGIN
        gate["min"] = max(0.0, low - margin) if low >= 0 else low - margin
        gate["max"] = high + margin
        if p.schema[column] is ColumnType.int:
            gate["min"], gate["max"] = math.floor(gate["min"]), math.ceil(gate["max"])
        else:
            gate["min"], gate["max"] = round(gate["min"], 6), round(gate["max"], 6)
    if column == p.id:
        gate["unique"] = True
    return gate


def expectations_yaml(p: Profile) -> dict[str, Any]:
    kept = [p.id, p.target, *([p.timestamp] if p.timestamp else []), *p.numeric, *p.categorical]
    return {
        "suite": f"{p.name}_raw",
        # a new file (or a file with batches added) has at least half these rows
        "row_count_min": max(1, p.rows // 2),
        "columns": {column: column_gate(p, column) for column in kept},
    }


def features_yaml(p: Profile) -> dict[str, Any]:
    split = {"kind": "time" if p.timestamp else "random", "holdout_fraction": 0.2, "seed": 0}
    return {"derived": [], "onehot": [], "split": split}


GATES = {
    Problem.binary: ("roc_auc", [{"metric": "roc_auc", "min": 0.55, "max_regression": 0.01}]),
    Problem.multiclass: ("roc_auc", [{"metric": "roc_auc", "min": 0.55, "max_regression": 0.01}]),
    Problem.regression: ("r2", [{"metric": "r2", "min": 0.0, "max_regression": 0.02}]),
}


def evaluate_yaml(p: Profile) -> dict[str, Any]:
    metric, rules = GATES[p.problem]
    return {
        "primary_metric": metric,
        "rules": rules,
        "slices": p.categorical[:1],
        "required_slices": [],
        "invariance": [],
        "directional": [],
    }


def override(p: Profile) -> str:
    choices = [f"{group}={p.name}" for group in ("data", "features", "expectations", "evaluate")]
    if p.problem is Problem.regression:
        choices += ["model=hgb_regression", "monitor.primary_metric=rmse"]
    if p.timestamp is None:
        choices += ["monitor.chunk_period=null", f"monitor.chunk_size={max(500, p.rows // 10)}"]
    return " ".join(choices)


HEADERS = {
    "data": "columns, types and roles",
    "expectations": "a starter data gate from the profile: tighten it as you learn the data",
    "features": "no derived features yet: add the ones you can justify",
    "evaluate": "a model gate asking for better than chance: raise the floors after the "
    "first run (`dvc metrics show`)",
}


def documents(p: Profile) -> dict[str, dict[str, Any]]:
    return {
        "data": data_yaml(p),
        "expectations": expectations_yaml(p),
        "features": features_yaml(p),
        "evaluate": evaluate_yaml(p),
    }


def text(p: Profile, group: str, body: dict[str, Any]) -> str:
    lines = [
        f"# {p.name}: {HEADERS[group]}.",
        f"# Written by `driftloop init-data` from {p.source}.",
    ]
    if group == "data":
        lines += [f"# Left out: {c} ({why})" for c, why in sorted(p.left_out.items())]
    return "\n".join(lines) + "\n" + yaml.safe_dump(body, sort_keys=False, allow_unicode=True)


# --- wrapper -------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="a CSV or parquet file")
    parser.add_argument("--name", required=True, help="the data set's name (conf file names)")
    parser.add_argument("--target", required=True, help="the column to predict")
    parser.add_argument(
        "--timestamp", help="the column of event times (a time split, monthly chunks)"
    )
    parser.add_argument(
        "--positive", help="the positive class of a target with two text labels (default: yes)"
    )
    parser.add_argument("--id", help="the unique id column (default: a unique column named id)")
    parser.add_argument("--drop", nargs="*", default=[], help="columns that are not features")
    parser.add_argument("--force", action="store_true", help="replace existing configs")


def main(args: argparse.Namespace) -> None:
    root = find_root()
    if not args.path.is_file():
        raise DataError(f"{args.path}: no such file")
    frame = read_table_file(args.path)
    path = args.path.resolve()
    source = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    found = profile(frame, args.name, source, args.target, args)
    targets = {group: root / "conf" / group / f"{args.name}.yaml" for group in HEADERS}
    existing = [str(t.relative_to(root)) for t in targets.values() if t.exists()]
    if existing and not args.force:
        raise ConfigError(f"{', '.join(existing)} exist already: pass --force to replace them")
    for group, body in documents(found).items():
        with atomic_file(targets[group]) as tmp:
            tmp.write_text(text(found, group, body))
    print(
        f"init-data: {found.name}: {found.rows} rows, {found.problem.value} target "
        f"'{found.target}', {len(found.numeric)} numeric and {len(found.categorical)} "
        f"categorical features"
        + (f", left out {', '.join(found.left_out)}" if found.left_out else "")
    )
    incoming = root / "data/incoming" / args.name
    incoming.mkdir(parents=True, exist_ok=True)
    (incoming / ".gitkeep").touch()  # production batches go here (the ingest stage's input)
    for target in [*targets.values(), incoming / ".gitkeep"]:
        print(f"  wrote {target.relative_to(root)}")
    print("Select it (or put the same choices in conf/config.yaml's defaults):")
    print(f"  driftloop compose {override(found)}")
