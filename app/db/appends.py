"""Append-only rows — ticket history, the change feed, outbox events — queued during a
unit of work and written at its end, in one statement on PostgreSQL.

Nothing reads, updates or deletes these rows in the unit of work that writes them, so
ORM objects (identity map, flush bookkeeping, one INSERT per table) buy nothing: they
were a third of a comment's CPU. `append` queues a row; the queue is written

* when the unit of work commits, after the ORM flush (so references to new rows
  resolve), as one INSERT with data-modifying CTEs on PostgreSQL (handed to asyncpg
  directly by `commit`, see `app.db.driver`), one per table on SQLite;
* before any ORM query of the same session, so a read sees what its own unit of work
  wrote (as autoflush does for objects).

Rows are stamped with the session's organization and refused where the flush rule
refuses ORM rows (no tenant, or another tenant). When the unit of work ends without
committing (rollback, close) the queue is dropped; savepoints are not tracked (rows
queued inside one that rolls back are still written with the outer commit — the
application uses none).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction

from app.db.base import Base, new_id
from app.db.driver import compile_for_driver, driver_fetch
from app.db.session import (
    AppSession,
    CrossTenantWrite,
    TenantContextMissing,
    before_commit,
    is_system,
    session_organization,
)
from app.db.tenancy import TenantMixin

APPENDS = "appends"
# Bound parameters per statement stay far below PostgreSQL's 32,767 (rows have < 10).
ROWS_PER_STATEMENT = 200


def append(session: AsyncSession, model: type[Base], **values: Any) -> None:
    """Queue one row of `model` (a tenant model) for this unit of work."""
    if not issubclass(model, TenantMixin):
        raise TypeError(f"{model.__name__} is not a tenant model")
    sync = session.sync_session
    org = session_organization(sync)
    owner = values.setdefault("organization_id", org)
    if owner is None:
        raise TenantContextMissing(f"{model.__name__} appended outside a tenant session")
    if not is_system(sync) and owner != org:
        raise CrossTenantWrite(f"{model.__name__} of another organization")
    values.setdefault("id", new_id())
    if not sync.in_transaction():
        sync.begin()  # as `session.add` would: a rollback must see, and drop, the queue
    queue: list[tuple[type[Base], dict[str, Any]]] = sync.info.setdefault(APPENDS, [])
    queue.append((model, values))


def flush_pending(session: Session) -> None:
    """What a query must see first: pending ORM changes (as autoflush), then the queue."""
    if session.autoflush:
        session.flush()
    write_appended(session)


def write_appended(session: Session) -> None:
    queue: list[tuple[type[Base], dict[str, Any]]] | None = session.info.pop(APPENDS, None)
    if not queue:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        for statement, params in _journal_statements(queue):
            connection.execute(statement, params)
        return
    by_model: dict[type[Base], list[dict[str, Any]]] = {}
    for model, row in queue:
        by_model.setdefault(model, []).append(row)
    for model, rows in by_model.items():
        connection.execute(sa.insert(model), rows)


def _journal_statements(
    queue: list[tuple[type[Base], dict[str, Any]]],
) -> Iterator[tuple[sa.Insert, dict[str, Any]]]:
    """The queue as journal statements of at most ROWS_PER_STATEMENT rows each."""
    for start in range(0, len(queue), ROWS_PER_STATEMENT):
        shape: list[tuple[type[Base], tuple[tuple[str, Any], ...]]] = []
        params: dict[str, Any] = {}
        for i, (model, row) in enumerate(queue[start : start + ROWS_PER_STATEMENT]):
            columns: list[tuple[str, Any]] = []
            for column, value in row.items():
                if isinstance(value, sa.ClauseElement):
                    columns.append((column, value))  # SQL, part of the statement
                else:
                    columns.append((column, None))
                    params[f"r{i}_{column}"] = value
            shape.append((model, tuple(columns)))
        yield _journal_statement(tuple(shape)), params


@lru_cache(maxsize=512)
def _journal_statement(
    shape: tuple[tuple[type[Base], tuple[tuple[str, Any], ...]], ...],
) -> sa.Insert:
    """One single-row INSERT per queued row, chained as CTEs, with a bound parameter per
    value; built once per shape (the tables, columns and SQL values of a write path)."""
    inserts = [
        sa.insert(model).values(
            {
                column: sql if sql is not None else sa.bindparam(f"r{i}_{column}")
                for column, sql in columns
            }
        )
        for i, (model, columns) in enumerate(shape)
    ]
    *earlier, last = inserts
    return last.add_cte(*(insert.cte(f"appended_{i}") for i, insert in enumerate(earlier)))


@before_commit
async def _write_before_commit(session: AsyncSession) -> None:
    """`commit`'s path: on asyncpg the journal statement goes to the driver directly
    (`app.db.driver`), compiled once per shape."""
    sync = session.sync_session
    if not sync.info.get(APPENDS):
        return
    dialect = sync.get_bind().dialect
    if dialect.driver != "asyncpg":
        return  # written by the synchronous listener below, inside `session.commit()`
    if sync.new or sync.dirty or sync.deleted:
        await session.flush()  # rows the journal refers to exist first
    queue: list[tuple[type[Base], dict[str, Any]]] = sync.info.pop(APPENDS)
    for statement, params in _journal_statements(queue):
        await driver_fetch(session, compile_for_driver(statement, dialect), params)


@event.listens_for(AppSession, "before_commit")
def _write_on_commit(session: Session) -> None:
    """Any other commit (a bare `session.commit()`), and SQLite."""
    if session.info.get(APPENDS):
        session.flush()
        write_appended(session)


@event.listens_for(AppSession, "do_orm_execute")
def _write_before_queries(state: ORMExecuteState) -> None:
    session = state.session
    if state.is_select and session.info.get(APPENDS):
        flush_pending(session)  # autoflush comes after this hook: objects first


@event.listens_for(AppSession, "after_transaction_end")
def _drop_unwritten(session: Session, transaction: SessionTransaction) -> None:
    """A root transaction that ended without writing the queue (rollback, close) drops
    it; a savepoint's end leaves the outer transaction's rows alone."""
    if transaction.parent is None:
        session.info.pop(APPENDS, None)
