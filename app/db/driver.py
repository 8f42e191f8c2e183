"""Statements compiled once by SQLAlchemy and run by asyncpg itself, inside the session's
transaction — for the few statements every request runs (the credential check, a
ticket's read, lock and write, the journal rows).

SQLAlchemy's per-statement execution (cache look-up, parameter processing, result
wrapping, events) costs ~90 µs; on a request of five statements that is a fifth of
its CPU. What it does that matters is kept: values pass through each column type's
bind processor (enumerations to their values, JSON to text, instants checked), and a
driver error is handed back to SQLAlchemy as if it had run the statement, so error
handlers and the pool's invalidation of a dead connection behave the same.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.util import await_

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class DriverStatement:
    sql: str
    names: tuple[str, ...]  # the bound parameter behind each positional placeholder
    processors: tuple[Callable[[Any], Any] | None, ...]
    # Values the caller does not give: literals of the statement (`version + 1`) and the
    # Python-side defaults of columns an INSERT or UPDATE leaves out (ids, flags).
    defaults: Mapping[str, Callable[[], Any]]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = (
            params[name] if name in params or name not in self.defaults else self.defaults[name]()
            for name in self.names
        )
        return [
            value if processor is None else processor(value)
            for value, processor in zip(values, self.processors, strict=True)
        ]


@lru_cache(maxsize=4096)
def compile_for_driver(statement: sa.Executable, dialect: Dialect) -> DriverStatement:
    """Compiled once per statement object and dialect (statements run this way are
    module constants or cached shapes). Named parameters and literal values; no
    expanding (IN) or computed ones."""
    compiled: Any = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    names = tuple(compiled.positiontup or ())
    binds = compiled.binds
    for name in names:
        bind = binds[name]
        if bind.expanding or bind.literal_execute or bind.callable is not None:
            raise ValueError(f"driver statements take plain parameters only: {name}")
    processors = tuple(
        binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    defaults: dict[str, Callable[[], Any]] = {
        name: _constant(binds[name].value) for name in names if binds[name].value is not None
    }
    for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
        default = column.default if column in compiled.insert_prefetch else column.onupdate
        if default.is_callable:
            # SQLAlchemy's (context) form; no model default reads its execution context
            # (`new_id`), which a driver statement has none of.
            defaults[column.key] = partial(default.arg, None)
        elif default.is_scalar:
            defaults[column.key] = _constant(default.arg)
        else:
            raise ValueError(f"driver statements cannot compute the default of {column}")
    return DriverStatement(compiled.string, names, processors, defaults)


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


@dataclass(slots=True)
class _Bound:
    """The session's connection for one transaction, and SQLAlchemy's adapted asyncpg
    connection under it: looked up once per transaction instead of per statement (each
    look-up is two greenlet switches and a proxy)."""

    transaction: SessionTransaction
    connection: AsyncConnection
    adapted: Any


_BOUND = "driver_bound"


async def _bound(session: AsyncSession) -> _Bound:
    sync = session.sync_session
    bound: _Bound | None = sync.info.get(_BOUND)
    if (
        bound is not None
        and bound.transaction is sync.get_transaction()
        and bound.transaction.is_active
        and not bound.connection.invalidated
    ):
        return bound
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    transaction = sync.get_transaction()
    assert transaction is not None  # `connection()` began it
    bound = _Bound(transaction, connection, raw.dbapi_connection)
    sync.info[_BOUND] = bound
    return bound


def forget_transaction(session: Session, transaction: SessionTransaction) -> None:
    """Drop the look-up when its transaction ends: it references the session (through
    the transaction), and a reference cycle left per request is garbage only the cyclic
    collector frees, which then runs every dozen requests."""
    bound: _Bound | None = session.info.get(_BOUND)
    if bound is not None and bound.transaction is transaction:
        del session.info[_BOUND]


async def driver_fetch(
    session: AsyncSession, statement: DriverStatement, params: Mapping[str, Any]
) -> list[Record]:
    """Rows as the driver decodes them (enumerations as their strings, JSON parsed)."""
    bound = await _bound(session)
    if getattr(bound.adapted, "_transaction", None) is None:
        # The session's transaction begins with the tenant settings (`after_begin`); a
        # statement outside it would run without them, and a FOR UPDATE lock nothing.
        raise RuntimeError("a driver statement runs inside the session's transaction")
    driver: Any = bound.adapted.driver_connection
    try:
        args = statement.arguments(params)
    except Exception as error:  # a value its column type refuses, as SQLAlchemy reports it
        raise sa.exc.StatementError(
            f"({type(error).__module__}.{type(error).__name__}) {error}",
            statement.sql,
            dict(params),
            error,
        ) from error
    _echo(bound.connection.sync_connection, statement.sql, args)
    try:
        records = await driver.fetch(statement.sql, *args)
    except Exception as error:
        raise await _as_sqlalchemy_error(
            bound.connection, bound.adapted, statement.sql, args, error
        ) from error
    return [dict(record) for record in records]


def _echo(connection: Connection | None, sql: str, args: Any) -> None:
    """With `DATABASE_ECHO` on, driver statements are logged as SQLAlchemy logs its own."""
    if connection is not None and connection._echo:
        connection._log_info(sql)
        connection._log_info("[driver] %r", tuple(args))


async def _as_sqlalchemy_error(
    connection: AsyncConnection, adapted: Any, sql: str, args: list[Any], error: Exception
) -> Exception:
    dialect = connection.dialect
    try:
        adapted._handle_exception(error)  # raises the dialect's DB-API error for it
    except Exception as dbapi_error:
        error = dbapi_error
    disconnected = dialect.is_disconnect(error, adapted, None)  # type: ignore[arg-type]
    if disconnected:
        await connection.invalidate()
    return sa.exc.DBAPIError.instance(
        sql,
        args,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=disconnected,
        dialect=dialect,
    )


def execute_at_begin(connection: Connection, sql: str, *args: Any) -> None:
    """Run `sql` on the driver as the first statement of the connection's transaction
    (called from SQLAlchemy's synchronous `after_begin`, inside its greenlet): the tenant
    settings every transaction starts with. SQLAlchemy's execution context around this
    one statement cost about as much as its round trip (so SQLAlchemy's cursor events do
    not see it; the echo log does). A failure — a cancellation included — is handed to the
    connection's own error handling: the same translated error, the same invalidation
    of a dead or interrupted connection, as if SQLAlchemy had run it."""
    adapted: Any = connection.connection.dbapi_connection
    dbapi_error: type[Exception] = connection.dialect.loaded_dbapi.Error
    try:
        try:
            if adapted._transaction is None:  # the adapter begins lazily, on first use
                await_(adapted._start_transaction())
            _echo(connection, sql, args)
            await_(adapted.driver_connection.execute(sql, *args))
        except dbapi_error:
            raise
        except Exception as error:
            adapted._handle_exception(error)  # raises the dialect's DB-API error for it
    except BaseException as error:
        connection._handle_dbapi_exception(error, sql, args, None, None)
