"""The request model of /predict, generated from conf/data.

Fields are the raw columns the model and the declared features read, typed
from ``data.schema``; categorical fields accept only the values listed in
``data.categories``; ``data.optional`` names the fields that may be missing
or null. The id and timestamp columns may be sent (they go to the prediction
log). Unknown fields are refused, so a typo is a 422, not a silent null.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired, Required

from annotated_types import Interval
from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)
from typing_extensions import TypedDict

from driftloop.config.schema import ColumnType, DataConfig, ExpectationsConfig
from driftloop.errors import DriftloopError

Record = dict[str, Any]


class RequestError(DriftloopError):
    """A request the service refuses, with field-level details (status 422)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(_describe(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class RequestModel:
    inputs: list[str]
    types: dict[str, ColumnType]
    one: TypeAdapter[Any]
    many: TypeAdapter[Any]
    example: Record

    def parse(self, body: bytes) -> list[Record]:
        """One record (a JSON object) or a list of records, validated."""
        start = body.lstrip()[:1]
        if start not in (b"{", b"["):
            raise RequestError([_error(None, None, "the body must be a JSON object or a list")])
        many = start == b"["
        try:
            parsed = (self.many if many else self.one).validate_json(body)
        except ValidationError as exc:
            raise RequestError([_from_pydantic(e, many) for e in exc.errors()]) from None
        return list(parsed) if many else [parsed]

    def record_schema(self) -> dict[str, Any]:
        """JSON schema of one record (an OpenAPI component)."""
        return self.one.json_schema()

    def schema(self, ref: str) -> dict[str, Any]:
        """OpenAPI schema of the body: a record or a non-empty list of records."""
        array = self.many.json_schema()
        array.pop("$defs", None)
        array["items"] = {"$ref": ref}
        return {"anyOf": [{"$ref": ref}, array]}


def build(
    data: DataConfig, inputs: list[str], expectations: ExpectationsConfig, max_records: int
) -> RequestModel:
    fields: dict[str, Any] = {}
    extras = [c for c in (data.columns.id, data.columns.timestamp) if c and c not in inputs]
    for name in inputs:
        annotation = _annotation(data, name)
        if name in data.optional:
            fields[name] = NotRequired[Annotated[annotation | None, Field()]]
        else:
            fields[name] = Required[annotation]
    for name in extras:
        fields[name] = NotRequired[_annotation(data, name) | None]
    record = TypedDict("Record", fields)  # type: ignore[misc]
    record.__pydantic_config__ = ConfigDict(  # type: ignore[attr-defined]
        extra="forbid", strict=True, allow_inf_nan=False, title="Record"
    )
    many = Annotated[list[record], Field(min_length=1, max_length=max_records)]
    example = {name: _example(data, expectations, name) for name in inputs}
    return RequestModel(
        inputs=inputs,
        types={name: data.schema[name] for name in inputs},
        one=TypeAdapter(record),
        many=TypeAdapter(many),
        example=example,
    )


def _annotation(data: DataConfig, name: str) -> Any:
    kind = data.schema[name]
    if kind is ColumnType.string:
        allowed = data.categories.get(name)
        return Literal[tuple(allowed)] if allowed else str
    if kind is ColumnType.int:  # scored as float64: keep integers exact there
        bounds = {"minimum": -(2**53), "maximum": 2**53}
        return Annotated[
            int,
            BeforeValidator(_integral),
            Interval(ge=bounds["minimum"], le=bounds["maximum"]),
            WithJsonSchema({"type": "integer", **bounds}),
        ]
    if kind is ColumnType.timestamp:
        return datetime
    return bool if kind is ColumnType.bool else float


def _integral(value: Any) -> Any:
    """JSON Schema counts 3.0 as an integer; so does the API (records are strict otherwise)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _example(data: DataConfig, expectations: ExpectationsConfig, name: str) -> Any:
    """A plausible value: the first allowed category, or the middle of the range
    the data gate expects."""
    kind = data.schema[name]
    if kind is ColumnType.string:
        return (data.categories.get(name) or ["text"])[0]
    if kind is ColumnType.bool:
        return False
    rule = expectations.columns.get(name)
    low = rule.min if rule and rule.min is not None else None
    high = rule.max if rule and rule.max is not None else None
    value = (low + high) / 2 if low is not None and high is not None else (low or high or 1.0)
    return round(value) if kind is ColumnType.int else round(float(value), 3)


def _error(record: int | None, field: str | None, message: str) -> dict[str, Any]:
    return {"record": record, "field": field, "error": message}


def _from_pydantic(error: Any, many: bool) -> dict[str, Any]:
    loc = list(error["loc"])
    record = loc.pop(0) if many and loc and isinstance(loc[0], int) else (None if many else 0)
    field = ".".join(str(part) for part in loc) or None
    message = str(error["msg"])
    if error["type"] == "literal_error":
        message = f"expected one of {error['ctx']['expected']}"
    elif error["type"] == "extra_forbidden":
        message = "unknown field"
    return _error(record, field, message)


def _describe(error: dict[str, Any]) -> str:
    where = [f"record {error['record']}"] if error["record"] is not None else []
    if error["field"]:
        where.append(f"field '{error['field']}'")
    return f"{', '.join(where) or 'body'}: {error['error']}"
