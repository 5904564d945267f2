"""The row-level feature language declared in conf/features.

An expression is a small subset of Python syntax, parsed with ``ast`` (never
evaluated by Python). It is checked once against the data schema, then runs
in two engines: Spark (``driftloop.adapters.spark.to_column``) for the batch
pipeline and numpy (``driftloop.core.features.local``) for single records in the API.
Both follow the same rules, so the same declaration gives the same numbers:

* numbers, booleans and comparison results are doubles (true = 1.0);
* a null input gives a null result (SQL semantics); ``is_null`` and
  ``coalesce`` look at nulls, ``where`` takes its else branch on a null test;
* ``x / 0``, ``log(x <= 0)``, ``log1p(x <= -1)`` and ``sqrt(x < 0)`` are null;
* a result that is not finite (NaN, infinity) is stored as null.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from enum import Enum


class Kind(Enum):
    num = "num"
    str = "str"


@dataclass(frozen=True)
class Col:
    name: str
    kind: Kind


@dataclass(frozen=True)
class Lit:
    value: float | str

    @property
    def kind(self) -> Kind:
        return Kind.str if isinstance(self.value, str) else Kind.num


@dataclass(frozen=True)
class Call:
    """An operator or function applied to arguments; ``op`` names it."""

    op: str
    args: tuple[Node, ...]
    # extra constant operands: bucket edges, the value list of ``in``
    consts: tuple[float | str, ...] = ()
    kind: Kind = Kind.num


Node = Col | Lit | Call

BINARY = {
    ast.Add: "add",
    ast.Sub: "sub",
    ast.Mult: "mul",
    ast.Div: "div",
    ast.Pow: "pow",
}
COMPARE = {
    ast.Eq: "eq",
    ast.NotEq: "ne",
    ast.Lt: "lt",
    ast.LtE: "le",
    ast.Gt: "gt",
    ast.GtE: "ge",
}
# function name -> (minimum args, maximum args or None for any number)
FUNCTIONS: dict[str, tuple[int, int | None]] = {
    "log": (1, 1),
    "log1p": (1, 1),
    "exp": (1, 1),
    "sqrt": (1, 1),
    "abs": (1, 1),
    "clip": (3, 3),
    "least": (2, None),
    "greatest": (2, None),
    "where": (3, 3),
    "is_null": (1, 1),
    "coalesce": (2, None),
    "bucket": (2, 2),
}
NULL_AWARE = {"is_null", "coalesce", "where", "and", "or"}


class ExpressionError(ValueError):
    """A feature expression that cannot be parsed or checked."""


@dataclass(frozen=True)
class Feature:
    name: str
    node: Node


def parse(expr: str, columns: dict[str, Kind]) -> Node:
    """Parse and type-check one expression against the known columns."""
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"not a valid expression: {exc.msg}") from exc
    return _Builder(columns).build(tree.body)


def parse_all(derived: list[tuple[str, str]], columns: dict[str, Kind]) -> list[Feature]:
    """Parse features in order; each may use the columns and the earlier features."""
    known = dict(columns)
    features: list[Feature] = []
    for name, expr in derived:
        if name in known:
            raise ExpressionError(f"feature '{name}' clashes with an existing column")
        try:
            node = parse(expr, known)
        except ExpressionError as exc:
            raise ExpressionError(f"feature '{name}' ({expr}): {exc}") from exc
        features.append(Feature(name, node))
        known[name] = Kind.num
    return features


def inline(node: Node, features: dict[str, Node]) -> Node:
    """Replace references to earlier derived features by their expressions."""
    if isinstance(node, Col) and node.name in features:
        return inline(features[node.name], features)
    if isinstance(node, Call):
        args = tuple(inline(arg, features) for arg in node.args)
        return Call(node.op, args, node.consts, node.kind)
    return node


def columns_used(node: Node) -> set[str]:
    if isinstance(node, Col):
        return {node.name}
    if isinstance(node, Call):
        return set().union(*(columns_used(arg) for arg in node.args))
    return set()


class _Builder:
    def __init__(self, columns: dict[str, Kind]) -> None:
        self.columns = columns

    def build(self, node: ast.expr) -> Node:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise ExpressionError(f"'{ast.unparse(node)}' is not supported here")
        result: Node = method(node)
        return result

    def num(self, node: ast.expr) -> Node:
        built = self.build(node)
        if built.kind is not Kind.num:
            raise ExpressionError(f"'{ast.unparse(node)}' is text where a number is needed")
        return built

    def _Constant(self, node: ast.Constant) -> Node:
        if isinstance(node.value, bool):
            return Lit(1.0 if node.value else 0.0)
        if isinstance(node.value, int | float):
            return Lit(float(node.value))
        if isinstance(node.value, str):
            return Lit(node.value)
        raise ExpressionError(f"constant {node.value!r} is not supported")

    def _Name(self, node: ast.Name) -> Node:
        if node.id not in self.columns:
            raise ExpressionError(f"unknown column '{node.id}'")
        return Col(node.id, self.columns[node.id])

    def _UnaryOp(self, node: ast.UnaryOp) -> Node:
        operand = self.num(node.operand)
        if isinstance(node.op, ast.USub):
            if isinstance(operand, Lit) and isinstance(operand.value, float):
                return Lit(-operand.value)
            return Call("neg", (operand,))
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(node.op, ast.Not):
            return Call("not", (operand,))
        raise ExpressionError(f"operator in '{ast.unparse(node)}' is not supported")

    def _BinOp(self, node: ast.BinOp) -> Node:
        op = BINARY.get(type(node.op))
        if op is None:
            raise ExpressionError(f"operator in '{ast.unparse(node)}' is not supported")
        return Call(op, (self.num(node.left), self.num(node.right)))

    def _BoolOp(self, node: ast.BoolOp) -> Node:
        op = "and" if isinstance(node.op, ast.And) else "or"
        args = [self.num(value) for value in node.values]
        result = args[0]
        for arg in args[1:]:
            result = Call(op, (result, arg))
        return result

    def _Compare(self, node: ast.Compare) -> Node:
        if len(node.ops) != 1:
            raise ExpressionError(f"chained comparison '{ast.unparse(node)}': use 'and'")
        left, right, cmp = node.left, node.comparators[0], node.ops[0]
        if isinstance(cmp, ast.In | ast.NotIn):
            return self._membership(left, right, isinstance(cmp, ast.NotIn))
        op = COMPARE.get(type(cmp))
        if op is None:
            raise ExpressionError(f"comparison in '{ast.unparse(node)}' is not supported")
        a, b = self.build(left), self.build(right)
        if a.kind is not b.kind:
            raise ExpressionError(f"'{ast.unparse(node)}' compares text with a number")
        if a.kind is Kind.str and op not in ("eq", "ne"):
            raise ExpressionError(f"'{ast.unparse(node)}': text supports only == and !=")
        return Call(op, (a, b))

    def _membership(self, left: ast.expr, right: ast.expr, negate: bool) -> Node:
        value = self.build(left)
        consts = self._constants(right)
        if any(Lit(c).kind is not value.kind for c in consts):
            raise ExpressionError(f"'{ast.unparse(right)}' mixes text and numbers with the column")
        call = Call("in", (value,), consts)
        return Call("not", (call,)) if negate else call

    def _constants(self, node: ast.expr) -> tuple[float | str, ...]:
        if not isinstance(node, ast.List | ast.Tuple) or not node.elts:
            raise ExpressionError(f"'{ast.unparse(node)}' must be a list of constants")
        values: list[float | str] = []
        for element in node.elts:
            built = self.build(element)
            if not isinstance(built, Lit):
                raise ExpressionError(f"'{ast.unparse(element)}' is not a constant")
            values.append(built.value)
        return tuple(values)

    def _Call(self, node: ast.Call) -> Node:
        name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
        if name not in FUNCTIONS or node.keywords:
            known = ", ".join(sorted(FUNCTIONS))
            raise ExpressionError(f"unknown function '{name}' (known: {known})")
        low, high = FUNCTIONS[name]
        count = len(node.args)
        if count < low or (high is not None and count > high):
            raise ExpressionError(f"{name}() takes {low}{'' if high == low else '+'} arguments")
        if name == "bucket":
            return Call("bucket", (self.num(node.args[0]),), self._edges(node.args[1]))
        if name == "is_null":
            return Call(name, (self.build(node.args[0]),))
        return Call(name, tuple(self.num(arg) for arg in node.args))

    def _edges(self, node: ast.expr) -> tuple[float, ...]:
        edges = self._constants(node)
        if any(isinstance(edge, str) for edge in edges):
            raise ExpressionError(f"bucket edges '{ast.unparse(node)}' must be numbers")
        return tuple(sorted(float(edge) for edge in edges))
