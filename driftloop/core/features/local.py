"""In-process evaluation of feature expressions with numpy.

Used by the online API (one record at a time) and for any pandas frame. The
rules are those of ``driftloop.core.features.expressions``; Spark follows the same
rules in ``driftloop.adapters.spark``, and a property-based test holds the two
to the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from driftloop.core.features.expressions import Call, Col, Feature, Kind, Lit, Node

Columns = Mapping[str, Any] | pd.DataFrame


@dataclass(frozen=True)
class Values:
    """A column of values and its null mask (num values are always finite)."""

    data: np.ndarray
    null: np.ndarray


def evaluate(features: list[Feature], frame: pd.DataFrame) -> pd.DataFrame:
    """Return one float64 column per feature (NaN where the value is null)."""
    return pd.DataFrame(evaluate_columns(features, frame, len(frame)), index=frame.index)


def evaluate_columns(features: list[Feature], columns: Columns, size: int) -> dict[str, np.ndarray]:
    """The same on columns by name (pandas Series or numpy arrays) of one length."""
    scope: dict[str, Values] = {}
    out: dict[str, np.ndarray] = {}
    with np.errstate(all="ignore"):
        for feature in features:
            values = _eval(feature.node, columns, scope, size)
            scope[feature.name] = values
            out[feature.name] = np.where(values.null, np.nan, values.data).astype("float64")
    return out


def evaluate_record(features: list[Feature], record: Mapping[str, Any]) -> dict[str, float | None]:
    """Evaluate the features for one record; None where the value is null."""
    frame = pd.DataFrame({key: [value] for key, value in record.items()})
    row = evaluate(features, frame).iloc[0]
    return {str(name): None if np.isnan(value) else float(value) for name, value in row.items()}


def _column(name: str, kind: Kind, columns: Columns, scope: dict[str, Values]) -> Values:
    if name in scope:
        return scope[name]
    series = columns[name]
    if isinstance(series, np.ndarray) and (kind is Kind.str or series.dtype == "float64"):
        if kind is Kind.str:
            return Values(series, pd.isna(series))
        return _finite(series, np.zeros(len(series), dtype=bool))
    if not isinstance(series, pd.Series):
        series = pd.Series(series, copy=False)
    if kind is Kind.str:
        strings = series.to_numpy(dtype=object)
        return Values(strings, pd.isna(strings))
    if series.dtype == object:  # records from JSON: numbers, bools and None mixed
        series = pd.to_numeric(series.where(series.notna(), np.nan).astype("float64"))
    data = series.to_numpy(dtype="float64", na_value=np.nan)
    return _finite(data, np.zeros(len(data), dtype=bool))


def _finite(data: np.ndarray, null: np.ndarray) -> Values:
    return Values(data, null | ~np.isfinite(data))


def _eval(node: Node, columns: Columns, scope: dict[str, Values], size: int) -> Values:
    if isinstance(node, Lit):
        dtype = object if isinstance(node.value, str) else "float64"
        return Values(np.full(size, node.value, dtype=dtype), np.zeros(size, dtype=bool))
    if isinstance(node, Col):
        return _column(node.name, node.kind, columns, scope)
    args = [_eval(arg, columns, scope, size) for arg in node.args]
    return OPS[node.op](node, args)


def _any_null(args: list[Values]) -> np.ndarray:
    null: np.ndarray = np.logical_or.reduce([arg.null for arg in args])
    return null


def _strict(func: Callable[..., np.ndarray]) -> Callable[[Call, list[Values]], Values]:
    """An op that is null when any argument is null and stores non-finite as null."""

    def op(_: Call, args: list[Values]) -> Values:
        return _finite(func(*(arg.data for arg in args)).astype("float64"), _any_null(args))

    return op


def _guarded(
    func: Callable[[np.ndarray], np.ndarray], valid: Callable[[np.ndarray], np.ndarray]
) -> Callable[[Call, list[Values]], Values]:
    """A one-argument op that is null outside its domain."""

    def op(_: Call, args: list[Values]) -> Values:
        (arg,) = args
        ok = valid(arg.data)
        data = func(np.where(ok, arg.data, 1.0))
        return _finite(data, arg.null | ~ok)

    return op


def _div(_: Call, args: list[Values]) -> Values:
    a, b = args
    zero = b.data == 0
    data = a.data / np.where(zero, 1.0, b.data)
    return _finite(data, a.null | b.null | zero)


def _compare(func: Callable[[Any, Any], Any]) -> Callable[[Call, list[Values]], Values]:
    def op(_: Call, args: list[Values]) -> Values:
        a, b = args
        data = np.asarray(func(a.data, b.data), dtype=bool)
        return Values(data.astype("float64"), a.null | b.null)

    return op


def _logic(is_and: bool) -> Callable[[Call, list[Values]], Values]:
    def op(_: Call, args: list[Values]) -> Values:
        a, b = args
        a_true, b_true = ~a.null & (a.data != 0), ~b.null & (b.data != 0)
        a_false, b_false = ~a.null & (a.data == 0), ~b.null & (b.data == 0)
        if is_and:
            decided, value = a_false | b_false, a_true & b_true
            null = ~decided & (a.null | b.null)
        else:
            decided, value = a_true | b_true, a_true | b_true
            null = ~decided & (a.null | b.null)
        return Values(value.astype("float64"), null)

    return op


def _not(_: Call, args: list[Values]) -> Values:
    (a,) = args
    return Values((a.data == 0).astype("float64"), a.null)


def _in(node: Call, args: list[Values]) -> Values:
    (a,) = args
    data = pd.Series(a.data).isin(list(node.consts)).to_numpy()
    return Values(data.astype("float64"), a.null)


def _where(_: Call, args: list[Values]) -> Values:
    test, yes, no = args
    take = ~test.null & (test.data != 0)
    return Values(np.where(take, yes.data, no.data), np.where(take, yes.null, no.null))


def _is_null(_: Call, args: list[Values]) -> Values:
    (a,) = args
    return Values(a.null.astype("float64"), np.zeros(len(a.null), dtype=bool))


def _coalesce(_: Call, args: list[Values]) -> Values:
    data, null = args[-1].data.copy(), args[-1].null.copy()
    for arg in reversed(args[:-1]):
        take = ~arg.null
        data = np.where(take, arg.data, data)
        null = np.where(take, False, null)
    return Values(data, null)


def _bucket(node: Call, args: list[Values]) -> Values:
    (a,) = args
    edges = np.asarray(node.consts, dtype="float64")
    return Values(np.searchsorted(edges, a.data, side="right").astype("float64"), a.null)


OPS: dict[str, Callable[[Call, list[Values]], Values]] = {
    "neg": _strict(np.negative),
    "add": _strict(np.add),
    "sub": _strict(np.subtract),
    "mul": _strict(np.multiply),
    "div": _div,
    "pow": _strict(np.power),
    "exp": _strict(np.exp),
    "abs": _strict(np.abs),
    "log": _guarded(np.log, lambda x: x > 0),
    "log1p": _guarded(np.log1p, lambda x: x > -1),
    "sqrt": _guarded(np.sqrt, lambda x: x >= 0),
    "clip": _strict(lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi)),
    "least": _strict(lambda *xs: np.minimum.reduce(xs)),
    "greatest": _strict(lambda *xs: np.maximum.reduce(xs)),
    "eq": _compare(lambda x, y: x == y),
    "ne": _compare(lambda x, y: x != y),
    "lt": _compare(lambda x, y: x < y),
    "le": _compare(lambda x, y: x <= y),
    "gt": _compare(lambda x, y: x > y),
    "ge": _compare(lambda x, y: x >= y),
    "and": _logic(is_and=True),
    "or": _logic(is_and=False),
    "not": _not,
    "in": _in,
    "where": _where,
    "is_null": _is_null,
    "coalesce": _coalesce,
    "bucket": _bucket,
}
