"""The feature language: parsing, checking and in-process evaluation."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from driftloop.core.features.expressions import ExpressionError, Kind, parse, parse_all
from driftloop.core.features.local import evaluate, evaluate_record

COLUMNS = {"x": Kind.num, "y": Kind.num, "s": Kind.str}


def value(expr: str, **record: object) -> float | None:
    features = parse_all([("f", expr)], COLUMNS)
    base: dict[str, object] = {"x": 1.0, "y": 2.0, "s": "a"}
    return evaluate_record(features, {**base, **record})["f"]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("z + 1", "unknown column 'z'"),
        ("sinh(x)", "unknown function 'sinh'"),
        ("s + 1", "text where a number is needed"),
        ("s < 'b'", "only == and !="),
        ("x == 'a'", "compares text with a number"),
        ("1 < x < 3", "chained comparison"),
        ("x if y else 0", "is not supported"),
        ("x.real", "is not supported"),
        ("__import__('os')", "unknown function"),
        ("clip(x, 1)", "takes 3 arguments"),
        ("bucket(x, ['a'])", "must be numbers"),
        ("x +", "not a valid expression"),
    ],
)
def test_bad_expressions_are_named(expr: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        parse(expr, COLUMNS)


def test_later_features_may_use_earlier_ones() -> None:
    features = parse_all([("a", "x * 2"), ("b", "a + 1")], COLUMNS)
    assert evaluate_record(features, {"x": 3.0, "y": 0.0, "s": "a"}) == {"a": 6.0, "b": 7.0}


def test_feature_name_may_not_shadow_a_column() -> None:
    with pytest.raises(ExpressionError, match="clashes"):
        parse_all([("x", "y + 1")], COLUMNS)


@pytest.mark.parametrize(
    ("expr", "record", "expected"),
    [
        ("x / 0", {}, None),
        ("log(x - 1)", {}, None),
        ("log1p(-1)", {}, None),
        ("sqrt(-x)", {}, None),
        ("exp(1000)", {}, None),
        ("x + y", {"y": None}, None),
        ("is_null(y)", {"y": None}, 1.0),
        ("coalesce(y, x)", {"y": None}, 1.0),
        ("where(y > 0, 1, 2)", {"y": None}, 2.0),
        ("y > 0", {"y": None}, None),
        ("y > 0 and 0", {"y": None}, 0.0),
        ("y > 0 or 1", {"y": None}, 1.0),
        ("y > 0 or 0", {"y": None}, None),
        ("not y", {"y": 0.0}, 1.0),
        ("s in ['a', 'b']", {}, 1.0),
        ("s not in ['a', 'b']", {}, 0.0),
        ("s == 'a'", {"s": None}, None),
        ("bucket(x, [1, 3, 5])", {"x": 3.0}, 2.0),
        ("bucket(x, [5, 1, 3])", {"x": 0.5}, 0.0),
        ("clip(x, 0, 10)", {"x": 11.0}, 10.0),
        ("least(x, y, 0.5)", {}, 0.5),
        ("greatest(x, y)", {"y": None}, None),
        ("2 ** 0.5", {}, math.sqrt(2)),
        ("(-8) ** (1 / 3)", {}, None),
        ("True + x", {}, 2.0),
    ],
)
def test_null_and_domain_rules(
    expr: str, record: dict[str, object], expected: float | None
) -> None:
    result = value(expr, **record)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_frame_evaluation_matches_record_evaluation() -> None:
    features = parse_all([("f", "log1p(x) * where(s == 'a', 1, -1)")], COLUMNS)
    frame = pd.DataFrame({"x": [0.0, 1.0, None], "y": [0.0, 0.0, 0.0], "s": ["a", "b", "a"]})
    column = evaluate(features, frame)["f"]
    for index, row in frame.iterrows():
        expected = evaluate_record(features, row.to_dict())["f"]
        got = column[index]
        assert (expected is None and math.isnan(got)) or got == expected
