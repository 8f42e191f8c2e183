"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware instant, always handed back in UTC.

    PostgreSQL stores `timestamptz` natively; SQLite keeps naive text, so values are
    normalised to UTC on the way in and get their tzinfo back on the way out. Naive
    datetimes are refused: an instant without an offset is a bug waiting to happen.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a timezone-aware column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        # asyncpg already hands `timestamptz` back as an aware datetime in UTC; skipping
        # the per-value hook matters on wide result sets (seven instants per ticket).
        if dialect.name == "postgresql" and dialect.driver == "asyncpg":
            return None
        return super().result_processor(dialect, coltype)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite server defaults come back as text
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class UtcNow(FunctionElement[datetime]):
    """The database's current instant, in the form the backend stores bound instants in:
    PostgreSQL's `now()` (the transaction's start); on SQLite, text in SQLAlchemy's
    format with six fractional digits (`CURRENT_TIMESTAMP` has whole seconds and no
    fraction, and as text sorts before a bound value of the same second — a keyset page
    on `created_at` then never ends). SQLite's clock has milliseconds: the last three
    digits are zeros. Columns take it as their `default` and `onupdate`, so every INSERT
    and UPDATE the application runs sets it in the statement."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(UtcNow)
def _now(_element: UtcNow, _compiler: Any, **_kw: Any) -> str:
    return "now()"


@compiles(UtcNow, "sqlite")
def _sqlite_now(_element: UtcNow, _compiler: Any, **_kw: Any) -> str:
    return "strftime('%Y-%m-%d %H:%M:%f000', 'now')"


# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def str_enum(enum_cls: type[enum.StrEnum], name: str) -> sa.Enum:
    """A VARCHAR + CHECK enumeration: enforced by the database on every dialect,
    and extended later by swapping one CHECK rather than altering a native type."""
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum_cls),
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )
