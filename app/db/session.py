"""Engine, sessions and the rules that keep tenants apart on every statement.

Three kinds of session, one class:

* a **tenant session** (`Database.tenant_session(org_id)`, or a request session after
  `bind_tenant`): every ORM SELECT, UPDATE and DELETE of a tenant model gets
  `organization_id = :current` (`with_loader_criteria`), inserts are stamped with it, a
  row of another organization is refused, and on PostgreSQL its connection is logged in
  as the app role (not a superuser, not the owner, a member of neither) and each
  transaction sets `app.organization_id`, so row-level security filters every
  statement underneath and nothing the transaction runs can widen its own access;
* an **unbound session** (a request before authentication): a tenant model queried
  through it raises `TenantContextMissing` — the rule fails closed;
* the **system session** (`Database.system_session()`), the one greppable escape hatch
  for platform code (migrations, credential look-ups, sweeps across tenants): no tenant
  filter, connects as the owner and sets `app.platform` on.

Core statements (a `Table`, `text()`) carry no mapper the ORM rule could scope, so a
tenant or unbound session refuses them unless a repository built them
(`app.kit.repository`), which states the tenant and soft-delete criteria in the
statement itself. Soft-deleted rows are hidden from every ORM statement unless it opts
out with `.execution_options(include_deleted=True)`.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, with_loader_criteria
from sqlalchemy.orm.attributes import get_history

from app.config import Settings
from app.db.tenancy import SoftDeleteMixin, TenantMixin, TenantRootMixin

# The tenancy state a session carries, read by the listeners below.
SYSTEM = "system"
ORGANIZATION_ID = "organization_id"
# Set by `app.kit.repository` on the statements it builds (and only there): their text
# states the tenant and soft-delete criteria, which the test suite proves on every one.
TENANT_SCOPED = "tenant_scoped"


class TenantContextMissing(RuntimeError):
    """A tenant model was queried with no organization in context: a bug, never a leak."""


class CrossTenantWrite(RuntimeError):
    """A row of another organization was about to be written from a tenant session."""


class UnscopedStatement(RuntimeError):
    """A statement the tenant rule cannot scope was run in a tenant or unbound session."""


class AppSession(Session):
    """The sync session behind every `AsyncSession`; the listeners below hang on it."""


def is_system(session: Session) -> bool:
    return bool(session.info.get(SYSTEM))


def session_organization(session: Session) -> uuid.UUID | None:
    org = session.info.get(ORGANIZATION_ID)
    return org if isinstance(org, uuid.UUID) else None


@event.listens_for(AppSession, "do_orm_execute")
def _apply_tenant_rules(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return  # criteria of the top-level statement already propagate here
    if is_system(state.session):
        if not state.execution_options.get("include_deleted", False) and _is_orm(state):
            state.statement = state.statement.options(_LIVE_ROWS)
        return
    org = session_organization(state.session)
    if not _is_orm(state):
        if not state.execution_options.get(TENANT_SCOPED, False):
            raise UnscopedStatement(
                "a Core or text statement in a tenant session must come from a repository"
            )
        if org is None:
            raise TenantContextMissing("repository statement outside a tenant session")
        return
    if org is None:
        if not state.all_mappers or _touches_tenant_model(state):
            # No mapper named (an entity only in select_from) means no way to tell.
            raise TenantContextMissing("tenant model queried outside a tenant session")
        return
    if state.is_insert:
        _check_insert(state, org)
        return
    if state.is_update:
        _check_update(state)
    options: list[Any] = list(_tenant_criteria(org))
    if not state.execution_options.get("include_deleted", False):
        options.append(_LIVE_ROWS)
    state.statement = state.statement.options(*options)


def _is_orm(state: ORMExecuteState) -> bool:
    return state.is_orm_statement


def _touches_tenant_model(state: ORMExecuteState) -> bool:
    return any(issubclass(m.class_, TenantMixin | TenantRootMixin) for m in state.all_mappers)


_LIVE_ROWS = with_loader_criteria(
    SoftDeleteMixin, lambda cls: cls.deleted_at.is_(None), include_aliases=True
)


@lru_cache(maxsize=4096)
def _tenant_criteria(org: uuid.UUID) -> tuple[Any, ...]:
    """Built once per organization and reused: constructing loader-criteria options is
    a measurable part of every statement's cost."""
    return (
        with_loader_criteria(
            TenantMixin, lambda cls: cls.organization_id == org, include_aliases=True
        ),
        *(
            with_loader_criteria(root, lambda cls: cls.id == org, include_aliases=True)
            for root in TenantRootMixin.__subclasses__()
        ),
    )


def _bound_values(statement: Any, dialect: sa.Dialect) -> dict[str, Any]:
    """The values an INSERT or UPDATE statement carries, by parameter name (a column's
    own name for a single row or a SET; `<column>_m<n>` for the rows of a multi-row
    VALUES). DML has no public accessor for its values; its compiled form does."""
    return dict(statement.compile(dialect=dialect).params)


def _check_insert(state: ORMExecuteState, org: uuid.UUID) -> None:
    """ORM `insert(Model)` skips the flush: stamp and check its rows here, whether they
    come as execution parameters or in the statement's own VALUES."""
    mapper = state.bind_mapper
    if mapper is None or not issubclass(mapper.class_, TenantMixin):
        return
    statement: Any = state.statement
    if statement.select is not None:
        raise UnscopedStatement("INSERT … SELECT is not run in a tenant session")
    rows: Any = state.parameters
    if rows:  # ORM bulk INSERT: the rows are the parameters
        for row in [rows] if isinstance(rows, dict) else list(rows):
            owner = row.setdefault("organization_id", org)
            if owner != org:
                raise CrossTenantWrite(f"row for organization {owner} in a session of {org}")
        return
    for name, value in _bound_values(statement, state.session.get_bind().dialect).items():
        if _names_tenant(name) and value != org:
            raise CrossTenantWrite(f"row for organization {value} in a session of {org}")


def _check_update(state: ORMExecuteState) -> None:
    """A bulk UPDATE never moves rows to another organization (or out of one)."""
    rows: Any = state.parameters
    if rows:  # ORM bulk UPDATE by primary key: the rows are the parameters
        changed = any(
            "organization_id" in row for row in ([rows] if isinstance(rows, dict) else rows)
        )
    else:
        changed = "organization_id" in _bound_values(
            state.statement, state.session.get_bind().dialect
        )
    if changed:
        raise CrossTenantWrite("a tenant session cannot change organization_id")


def _names_tenant(parameter: str) -> bool:
    name, _, row = parameter.partition("_m")
    return parameter == "organization_id" or (name == "organization_id" and row.isdigit())


@event.listens_for(AppSession, "before_flush")
def _stamp_tenant_rows(session: Session, _ctx: object, _instances: object) -> None:
    """Rows take their organization from the session; a row of another one is refused,
    whether added, changed or deleted (an object loaded elsewhere and merged in)."""
    if is_system(session):
        return
    org = session_organization(session)
    for obj in session.new:
        if not isinstance(obj, TenantMixin):
            continue
        if org is None:
            raise TenantContextMissing(f"{type(obj).__name__} added outside a tenant session")
        if obj.organization_id is None:
            obj.organization_id = org
        elif obj.organization_id != org:
            raise CrossTenantWrite(f"{type(obj).__name__} of another organization")
    for obj in (*session.dirty, *session.deleted):
        if not isinstance(obj, TenantMixin):
            continue
        if get_history(obj, "organization_id").deleted:
            raise CrossTenantWrite(f"{type(obj).__name__} cannot change organization")
        if org is None or obj.organization_id != org:
            raise CrossTenantWrite(f"{type(obj).__name__} of another organization")


@event.listens_for(AppSession, "after_begin")
def _configure_transaction(session: Session, _tx: SessionTransaction, conn: Connection) -> None:
    """Per transaction (never per connection: pooled connections outlive a request)."""
    if conn.dialect.name != "postgresql":
        return
    if is_system(session):
        conn.execute(_SET_PLATFORM)
        return
    _set_pg_tenant(conn, session_organization(session))


def _set_pg_tenant(conn: Connection, org: uuid.UUID | None) -> None:
    """The one per-transaction setting of a tenant transaction: its organization (empty
    for an unbound session, which the policies then show nothing)."""
    conn.execute(_SET_TENANT, {"org": str(org) if org else ""})


_SET_TENANT = sa.text("SELECT set_config('app.organization_id', :org, true)")
_SET_PLATFORM = sa.text("SELECT set_config('app.platform', 'on', true)")


async def bind_tenant(session: AsyncSession, organization_id: uuid.UUID) -> None:
    """Make an unbound session a tenant session (the auth dependency calls this)."""
    if is_system(session.sync_session):
        raise CrossTenantWrite("the system session cannot be bound to a tenant")
    bound = session_organization(session.sync_session)
    if bound is not None and bound != organization_id:
        raise CrossTenantWrite("session already bound to another organization")
    session.info[ORGANIZATION_ID] = organization_id
    if session.in_transaction() and dialect_name(session) == "postgresql":
        conn = await session.connection()
        await conn.run_sync(_set_pg_tenant, organization_id)


def dialect_name(session: AsyncSession) -> str:
    return session.sync_session.get_bind().dialect.name


def create_engine(settings: Settings, database_url: str) -> AsyncEngine:
    url = sa.make_url(database_url)
    kwargs: dict[str, Any] = {
        "echo": settings.database_echo,
        "pool_pre_ping": settings.database_pool_pre_ping,
        "pool_recycle": settings.database_pool_recycle_seconds,
    }
    if url.get_backend_name() == "sqlite":
        ensure_sqlite_directory(database_url)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
        return engine
    kwargs |= {
        "pool_size": settings.database_pool_size,
        "max_overflow": settings.database_max_overflow,
    }
    return create_async_engine(url, **kwargs)


def ensure_sqlite_directory(database_url: str) -> None:
    """The embedded default lives under ./var/, which a fresh clone does not have."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: object) -> None:
    # Foreign keys are off by default in SQLite; WAL lets readers run during a write.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
    # The driver's own BEGIN is deferred (it takes the write lock at the first write,
    # after the reads a write is based on); `_sqlite_begin_immediate` replaces it.
    dbapi_conn.isolation_level = None


def _sqlite_begin_immediate(conn: Connection) -> None:
    """Embedded SQLite has no row locks: each transaction takes the database's write lock
    when it begins, so transactions run one at a time, in arrival order (waiting up to
    the busy timeout), and a read-then-write never sees its row change under it — what
    `SELECT … FOR UPDATE` gives on PostgreSQL."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")
