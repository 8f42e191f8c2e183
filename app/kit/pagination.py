"""Keyset (cursor) pagination: `{"items": [...], "next_cursor": "<opaque>" | null}`.

A cursor is the sort key of the last row served, so a page never skips or repeats a row
when others are inserted meanwhile (an offset would). Every ordering ends with the
primary key, which makes the key unique. Cursors are opaque to clients: URL-safe base64
of a JSON list, checked on the way back in (a tampered cursor is a 422, never a 500).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, Generic, TypeVar, cast

import sqlalchemy as sa
from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy.orm import QueryableAttribute

from app.kit.errors import ValidationFailed
from app.kit.records import field_error

ItemT = TypeVar("ItemT")
RowT = TypeVar("RowT")
SelectT = TypeVar("SelectT", bound=sa.Select[Any])

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    next_cursor: str | None

    @classmethod
    def of(cls, result: PageResult[Any], item: Callable[[Any], ItemT]) -> Page[ItemT]:
        """The response page of a `PageResult`, each row turned into an item (usually a
        read schema's `model_validate`)."""
        return cls(items=[item(row) for row in result.rows], next_cursor=result.next_cursor)


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    cursor: str | None


async def _page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=1024, description="`next_cursor` of the previous page."),
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


PageParamsDep = Annotated[PageParams, Depends(_page_params)]


@dataclass(frozen=True, slots=True)
class SortKey:
    """One column of an ordering; `descending` flips both the ORDER BY and the seek.
    A `nullable` column sorts its NULLs last in either direction."""

    # A table column or a mapped attribute: its key names the row field.
    column: sa.ColumnElement[Any] | QueryableAttribute[Any]
    descending: bool = False
    nullable: bool = False
    _order_by: sa.UnaryExpression[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Built once: sort keys are module constants, used on every list request.
        ordered = self.column.desc() if self.descending else self.column.asc()
        object.__setattr__(self, "_order_by", ordered.nulls_last() if self.nullable else ordered)

    def order_by(self) -> sa.UnaryExpression[Any]:
        return self._order_by

    def equal(self, value: Any) -> sa.ColumnElement[bool]:
        return self.column.is_(None) if value is None else self.column == value

    def beyond(self, value: Any) -> sa.ColumnElement[bool]:
        if value is None:  # past a NULL only later NULLs (decided by the next keys)
            return sa.false()
        strictly = self.column < value if self.descending else self.column > value
        return sa.or_(strictly, self.column.is_(None)) if self.nullable else strictly


@dataclass(frozen=True, slots=True)
class PageResult(Generic[RowT]):
    rows: Sequence[RowT]
    next_cursor: str | None


PAGE_LIMIT = "page_limit"


def page_bounds(params: PageParams, keys: Sequence[SortKey]) -> tuple[Hashable, dict[str, Any]]:
    """Where the page starts, as a shape and bound values: the shape is None on a first
    page and else which cursor values are NULL (a NULL changes the seek's SQL); the
    values are the cursor's others (`after_<i>`) and the row count to fetch."""
    values: dict[str, Any] = {PAGE_LIMIT: params.limit + 1}
    if params.cursor is None:
        return None, values
    after = decode_cursor(params.cursor, keys)
    values.update({f"after_{i}": value for i, value in enumerate(after) if value is not None})
    return tuple(value is None for value in after), values


def paged(statement: SelectT, keys: Sequence[SortKey], shape: Hashable) -> SelectT:
    """`statement` ordered by `keys` (the last must be unique and non-null, normally the
    id), resumed after the bound cursor values of a page of `shape` (`page_bounds`), one
    row more than the page (to tell if one follows). Nothing in it depends on the values,
    so one statement serves every page of its shape."""
    if shape is not None:
        nulls = cast(tuple[bool, ...], shape)
        after = [
            None if null else sa.bindparam(f"after_{i}", type_=key.column.type)
            for i, (key, null) in enumerate(zip(keys, nulls, strict=True))
        ]
        statement = statement.where(_after(keys, after))
    ordered = statement.order_by(*(key.order_by() for key in keys))
    return ordered.limit(sa.bindparam(PAGE_LIMIT, type_=sa.Integer))


def page_result(
    rows: Sequence[RowT], params: PageParams, keys: Sequence[SortKey]
) -> PageResult[RowT]:
    """The page of `rows` fetched by a `paged` statement, and the cursor of the next one."""
    if len(rows) <= params.limit:
        return PageResult(rows, None)
    rows = rows[: params.limit]
    return PageResult(rows, cursor_after(rows[-1], keys))


def cursor_after(row: Any, keys: Sequence[SortKey]) -> str:
    """The cursor that resumes right after `row` (feeds hand it out even on their last
    page, so a consumer can poll from where it stopped)."""
    return _encode([_value_of(row, key) for key in keys])


def _after(keys: Sequence[SortKey], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """(a, b, c) strictly after (x, y, z) in the given directions, as
    a>x OR (a=x AND b>y) OR (a=x AND b=y AND c>z): works for mixed directions and on
    both dialects, and each disjunct can use the (org, a, b, c) index."""
    disjuncts: list[sa.ColumnElement[bool]] = []
    for i, key in enumerate(keys):
        equal_prefix = [keys[j].equal(values[j]) for j in range(i)]
        disjuncts.append(sa.and_(*equal_prefix, key.beyond(values[i])))
    return sa.or_(*disjuncts)


def _value_of(row: Any, key: SortKey) -> Any:
    # ORM objects from `Repository.select()`, dicts from `select_rows()`.
    name = str(key.column.key)
    return row[name] if isinstance(row, dict) else getattr(row, name)


def _encode(values: list[Any]) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, Enum):
            return value.value
        return value

    raw = json.dumps([plain(v) for v in values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, keys: Sequence[SortKey]) -> list[Any]:
    invalid = ValidationFailed(
        "The cursor is not valid for this list.",
        errors=[field_error("cursor", "invalid cursor", location="query")],
    )
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise invalid from None
    if not isinstance(values, list) or len(values) != len(keys):
        raise invalid
    try:
        return [_coerce(value, key) for value, key in zip(values, keys, strict=True)]
    except (TypeError, ValueError, OverflowError):
        raise invalid from None


def _coerce(value: Any, key: SortKey) -> Any:
    python_type = key.column.type.python_type
    if value is None:
        if key.nullable:
            return None
        raise ValueError("null sort value")
    if python_type is uuid.UUID:
        return uuid.UUID(str(value))
    if python_type is datetime:
        parsed = datetime.fromisoformat(str(value))
        if parsed.tzinfo is None:
            raise ValueError("naive timestamp")
        return parsed.astimezone(UTC)
    if python_type is int and not isinstance(value, bool):
        return int(value)
    if python_type is str:
        return str(value)
    if isinstance(python_type, type) and issubclass(python_type, Enum):
        return python_type(value)
    raise TypeError(f"cannot page on {python_type}")
