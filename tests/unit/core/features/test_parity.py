"""Spark and the in-process engine give the same numbers for the same
declaration (property-based: random expressions over random records)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftloop.adapters.spark import to_column
from driftloop.core.features.expressions import Kind, inline, parse_all
from driftloop.core.features.local import evaluate

pytestmark = pytest.mark.slow

COLUMNS = {"x": Kind.num, "y": Kind.num, "z": Kind.num, "s": Kind.str}
TEXTS = ["a", "b", "40K - 60K €", ""]

numbers = st.one_of(
    st.none(),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 1e300, -1e-300]),
    st.floats(-1e3, 1e3),
    st.floats(allow_nan=False, allow_infinity=False),
)
records = st.fixed_dictionaries(
    {"x": numbers, "y": numbers, "z": numbers, "s": st.one_of(st.none(), st.sampled_from(TEXTS))}
)
literals = st.one_of(
    st.sampled_from(["0", "1", "2", "0.5", "-3", "1e308"]), st.floats(-10, 10).map(repr)
)
leaves = st.one_of(st.sampled_from(["x", "y", "z"]), literals)


def _branches(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(
        inner,
        st.sampled_from(["+", "-", "*", "/", "**", "<", ">=", "==", "!=", "and", "or"]),
        inner,
    )
    functions = st.tuples(st.sampled_from(["log", "log1p", "exp", "sqrt", "abs", "is_null"]), inner)
    operators = st.tuples(st.sampled_from(["-", "not "]), inner)
    ternary = st.tuples(
        st.sampled_from(["clip", "where", "least", "greatest", "coalesce"]), inner, inner, inner
    )
    return st.one_of(
        binary.map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        functions.map(lambda t: f"{t[0]}({t[1]})"),
        operators.map(lambda t: f"({t[0]}{t[1]})"),
        ternary.map(lambda t: f"{t[0]}({t[1]}, {t[2]}, {t[3]})"),
        inner.map(lambda e: f"bucket({e}, [-1, 0, 2.5, 100])"),
        st.sampled_from(TEXTS).map(lambda text: f"(s == {text!r})"),
        st.lists(st.sampled_from(TEXTS), min_size=1, max_size=3).map(lambda v: f"(s in {v!r})"),
    )


expressions = st.recursive(leaves, _branches, max_leaves=8)


def same(a: Any, b: Any) -> bool:
    a_null = a is None or (isinstance(a, float) and math.isnan(a))
    b_null = b is None or (isinstance(b, float) and math.isnan(b))
    if a_null or b_null:
        return a_null and b_null
    # the JVM's and the C library's log/exp/pow may differ in the last bit
    return bool(a == b or math.isclose(a, b, rel_tol=1e-13, abs_tol=0.0))


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)
@given(
    exprs=st.lists(expressions, min_size=1, max_size=6),
    rows=st.lists(records, min_size=1, max_size=40),
)
def test_spark_equals_in_process(spark: Any, exprs: list[str], rows: list[dict[str, Any]]) -> None:
    features = parse_all([(f"f{i}", expr) for i, expr in enumerate(exprs)], COLUMNS)
    frame = pd.DataFrame(rows, columns=["x", "y", "z", "s"]).astype(
        {"x": "float64", "y": "float64", "z": "float64"}
    )
    frame.insert(0, "row", range(len(frame)))
    expected = evaluate(features, frame)

    earlier = {f.name: f.node for f in features}
    schema = "row long, x double, y double, z double, s string"
    table = spark.createDataFrame(frame.astype(object).where(frame.notna(), None), schema)
    selected = table.select(
        "row", *[to_column(inline(f.node, earlier)).alias(f.name) for f in features]
    )
    got = selected.orderBy("row").toPandas()

    for feature in features:
        for index in range(len(frame)):
            a, b = got[feature.name][index], expected[feature.name][index]
            expr = exprs[int(feature.name[1:])]
            assert same(a, b), f"{expr!r} on {rows[index]}: spark {a!r} vs local {b!r}"
