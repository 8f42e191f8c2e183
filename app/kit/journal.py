"""The append-only rows a change writes beside itself — ticket history, the change feed,
outbox events — collected while a service makes the change and written by its explicit
`write()`, in one statement. A change may also settle a row of its own beside itself
(`update`: an inbox message's outcome with the ticket the message opened): a
single-row UPDATE by id, written the same way.

Nothing reads, updates or deletes these rows in the unit of work that writes them, so
they are not ORM objects (an identity map and per-object flush bookkeeping would buy
nothing): each row is a single-row `INSERT`. A request's journal (a few rows) is one
statement on PostgreSQL, its INSERTs chained as data-modifying CTEs — one round trip. A
batch's journal (a worker acting on many tickets) is one executemany per table and
shape of row — a few round trips for hundreds of rows, where chaining would build a new
statement for every batch size. Single-row VALUES either way, because SQLAlchemy caches
the compiled form of those (never of a multi-row VALUES): each shape compiles once.
Every row is stamped with the unit's organization.

A repository may also write a journal inside a statement of its own (`take` and
`ctes`): a ticket's creation writes its journal in the ticket's INSERT, which takes
the ticket's number, so the organization's number counter stays locked over that one
statement and the commit. A value may then be SQL of that statement (the number), or
`Computed` from a bound value (the event payload with the number added).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import sqlalchemy as sa

from app.db.base import Base, new_id
from app.db.tenancy import SoftDeleteMixin, TenantMixin
from app.db.types import UtcNow
from app.db.unit_of_work import UnitOfWork
from app.kit.outbox import queue_relay
from app.kit.repository import prebuilt, scoped
from app.models.outbox import OutboxEvent

# Up to this many rows a journal is one chained statement; beyond, one executemany per
# table and shape (see the module docstring).
CHAINED_ROWS = 12

# One object, so every row stamped with it keeps one shape (SQL values are part of it).
NOW = UtcNow()
# A row's model, its columns (with the SQL of those that are SQL) and whether it is an
# UPDATE of an existing row by its id rather than an INSERT.
Shape = tuple[type[Base], tuple[tuple[str, Any], ...], bool]
Row = tuple[type[Base], dict[str, Any], bool]


@dataclass(frozen=True, eq=False)
class Computed:
    """A value SQL makes from a bound Python value: `sql(<value bound>)`. `sql` is part
    of the row's shape (one object for every row of the shape), `value` is bound."""

    value: Any
    sql: Callable[[sa.BindParameter[Any]], sa.ColumnElement[Any]]


class Journal:
    def __init__(self, uow: UnitOfWork) -> None:
        organization_id = uow.organization_id
        if organization_id is None:
            raise TypeError("journal rows belong to a tenant: bind the unit of work first")
        self.uow = uow
        self.organization_id: uuid.UUID = organization_id
        self.rows: list[Row] = []

    def add(self, model: type[Base], **values: Any) -> None:
        _check_tenant_model(model)
        row = {"id": new_id(), **values, "organization_id": self.organization_id}
        self.rows.append((model, row, False))

    def update(self, model: type[Base], row_id: uuid.UUID, **values: Any) -> None:
        """Set `values` on the tenant's live row `row_id` of `model` (one this transaction
        holds locked), and stamp its `updated_at`: a column's `onupdate` default does not run in
        a statement written as a CTE."""
        _check_tenant_model(model)
        if "updated_at" in cast(sa.Table, model.__table__).c:
            values = {**values, "updated_at": NOW}
        self.rows.append((model, {"id": row_id, **values}, True))

    def event(
        self,
        event_type: str,
        *,
        aggregate_type: str,
        aggregate_id: uuid.UUID,
        payload: dict[str, Any] | Computed,
    ) -> None:
        """A domain event in the outbox; `write` queues its relay for after the commit
        (every event of the organization committed within the same slot shares one)."""
        self.add(
            OutboxEvent,
            event_type=event_type,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            payload=payload,
        )

    async def write(self) -> None:
        """Write what was collected (and forget it, so a second call writes nothing)."""
        rows = self._handed_over()
        if not rows:
            return
        postgres = self.uow.dialect == "postgresql"
        if postgres and len(rows) <= CHAINED_ROWS:
            await self._write_chained(rows)
            return
        groups: dict[Shape, list[dict[str, Any]]] = {}
        for model, row, updating in rows:
            groups.setdefault((model, _columns(row), updating), []).append(_params(0, row))
        for shape, params in groups.items():
            key = ("journal-rows", self.organization_id, shape)
            statement = prebuilt(key, partial(self._statement, 0, *shape))
            await self.uow.session.execute(statement, params)

    def take(self) -> tuple[tuple[Shape, ...], dict[str, Any]]:
        """Hand what was collected to a statement of the caller's, which adds
        `ctes(shape)` and binds the values returned (see the module docstring); the
        journal forgets the rows as `write` does."""
        rows = self._handed_over()
        return _shape(rows), _chained_params(rows)

    def ctes(self, shape: tuple[Shape, ...]) -> list[sa.CTE]:
        """The rows of `shape`, one INSERT (or UPDATE) CTE each."""
        return [self._statement(i, *row).cte(f"journal_{i}") for i, row in enumerate(shape)]

    def _handed_over(self) -> list[Row]:
        """The collected rows, forgotten here; an event among them queues the relay for
        after the commit (every event of the organization committed within the same
        slot shares one)."""
        rows, self.rows = self.rows, []
        if any(model is OutboxEvent for model, _row, _updating in rows):
            queue_relay(self.uow)
        return rows

    async def _write_chained(self, rows: list[Row]) -> None:
        # Values are parameters `r<row>_<column>`; SQL values (a function of the
        # transaction) and the tenant are part of the statement, built once per shape.
        shape = _shape(rows)
        key = ("journal", self.organization_id, shape)
        statement = prebuilt(key, lambda: self._chained(shape))
        await self.uow.session.execute(statement, _chained_params(rows))

    def _chained(self, shape: tuple[Shape, ...]) -> sa.Insert | sa.Update:
        """One single-row statement per row, chained as CTEs of one statement."""
        *earlier, last = shape
        return self._statement(len(earlier), *last).add_cte(*self.ctes(tuple(earlier)))

    def _statement(
        self, i: int, model: type[Base], columns: tuple[tuple[str, Any], ...], updating: bool
    ) -> sa.Insert | sa.Update:
        """Row `i`: the tenant and SQL values in the statement, the rest `r<i>_<column>`."""
        table = cast(sa.Table, model.__table__)
        values: dict[str, Any] = {}
        for column, sql in columns:
            if column == "organization_id":
                values[column] = self.organization_id
            elif isinstance(sql, sa.ClauseElement):
                values[column] = sql
            elif sql is not None:
                values[column] = sql(sa.bindparam(f"r{i}_{column}", type_=table.c[column].type))
            else:
                values[column] = sa.bindparam(f"r{i}_{column}", type_=table.c[column].type)
        if not updating:
            return scoped(sa.insert(table).values(values))
        row_id = values.pop("id")
        statement = sa.update(table).where(
            table.c.organization_id == self.organization_id, table.c.id == row_id
        )
        if issubclass(model, SoftDeleteMixin):
            statement = statement.where(table.c.deleted_at.is_(None))
        return scoped(statement.values(values))


def _columns(row: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A row's shape: its columns, with the SQL (part of the statement) named."""
    return tuple((column, _sql(value)) for column, value in row.items())


def _sql(value: Any) -> Any:
    if isinstance(value, sa.ClauseElement):
        return value
    if isinstance(value, Computed):
        return value.sql
    return None


def _check_tenant_model(model: type[Base]) -> None:
    if not issubclass(model, TenantMixin):
        raise TypeError(f"{model.__name__} is not a tenant model")


def _shape(rows: list[Row]) -> tuple[Shape, ...]:
    return tuple((model, _columns(row), updating) for model, row, updating in rows)


def _params(i: int, row: dict[str, Any]) -> dict[str, Any]:
    """Row `i`'s bound values (the tenant and SQL values are in the statement)."""
    return {
        f"r{i}_{column}": value.value if isinstance(value, Computed) else value
        for column, value in row.items()
        if column != "organization_id" and not isinstance(value, sa.ClauseElement)
    }


def _chained_params(rows: list[Row]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for i, (_model, row, _updating) in enumerate(rows):
        params |= _params(i, row)
    return params
