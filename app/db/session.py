"""Engine, sessions and the global rules every ORM statement passes through.

Three kinds of session, one class:

* a **tenant session** (`Database.tenant_session(org_id)`, or a request session after
  `bind_tenant`): every ORM SELECT, UPDATE and DELETE of a tenant model gets
  `organization_id = :current`, inserts are stamped with it, and on PostgreSQL each
  transaction runs as the non-owner app role with `app.organization_id` set, so row-level
  security filters even raw SQL;
* an **unbound session** (a request before authentication): querying a tenant model
  raises `TenantContextMissing` — the rule fails closed;
* the **system session** (`Database.system_session()`), the one greppable escape hatch
  for platform code (migrations, login look-ups, superuser endpoints, sweeps across
  tenants): no tenant filter, runs as the owner with `app.platform` on.

Soft-deleted rows are hidden from every kind unless a statement opts out with
`.execution_options(include_deleted=True)`.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, with_loader_criteria
from sqlalchemy.orm.attributes import get_history

from app.config import Settings
from app.db.driver import execute_at_begin, forget_transaction
from app.db.tenancy import SoftDeleteMixin, TenantMixin, TenantRootMixin, current_organization_id

SYSTEM = "system"
ORGANIZATION_ID = "organization_id"
APP_ROLE = "app_role"
AFTER_COMMIT = "after_commit"
JOB_QUEUE = "job_queue"
SETTINGS = "settings"

AfterCommit = Callable[[], Awaitable[None]]


class TenantContextMissing(RuntimeError):
    """A tenant model was queried with no organization in context: a bug, never a leak."""


class CrossTenantWrite(RuntimeError):
    """A row of another organization was about to be written from a tenant session."""


class AppSession(Session):
    """The sync session behind every `AsyncSession`; the listeners below hang on it."""


def is_system(session: Session) -> bool:
    return bool(session.info.get(SYSTEM))


def session_organization(session: Session) -> uuid.UUID | None:
    org = session.info.get(ORGANIZATION_ID)
    return org if isinstance(org, uuid.UUID) else None


def _touches_tenant_model(state: ORMExecuteState) -> bool:
    return any(issubclass(m.class_, TenantMixin | TenantRootMixin) for m in state.all_mappers)


@event.listens_for(AppSession, "do_orm_execute")
def _apply_global_criteria(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return  # criteria of the top-level statement already propagate here
    if state.is_insert:
        _stamp_bulk_insert(state)
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    options: list[Any] = []
    if not state.execution_options.get("include_deleted", False):
        options.append(_LIVE_ROWS)
    if not is_system(state.session):
        org = session_organization(state.session)
        if org is None:
            if _touches_tenant_model(state):
                raise TenantContextMissing("tenant model queried outside a tenant session")
        else:
            options.extend(_tenant_criteria(org))
    if options:
        state.statement = state.statement.options(*options)


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


def _stamp_bulk_insert(state: ORMExecuteState) -> None:
    """ORM bulk `insert(Model)` skips the flush; stamp and check its rows here."""
    mapper = state.bind_mapper
    if mapper is None or not issubclass(mapper.class_, TenantMixin) or is_system(state.session):
        return
    org = session_organization(state.session)
    if org is None:
        raise TenantContextMissing("tenant rows inserted outside a tenant session")
    rows: Any = state.parameters
    for row in [rows] if isinstance(rows, dict) else list(rows or []):
        owner = row.setdefault("organization_id", org)
        if owner != org:
            raise CrossTenantWrite(f"row for organization {owner} in a session of {org}")


@event.listens_for(AppSession, "before_flush")
def _stamp_tenant_rows(session: Session, _ctx: object, _instances: object) -> None:
    """The seed's `TenantAwareModel.save` hook: take the organization from the context."""
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
    for obj in session.dirty:
        if isinstance(obj, TenantMixin) and get_history(obj, "organization_id").deleted:
            raise CrossTenantWrite(f"{type(obj).__name__} cannot change organization")


@event.listens_for(AppSession, "after_begin")
def _configure_transaction(session: Session, _tx: SessionTransaction, conn: Connection) -> None:
    """Per transaction (never per connection: pooled connections outlive a request)."""
    if conn.dialect.name != "postgresql":
        return
    if is_system(session):
        execute_at_begin(conn, _SET_PLATFORM)
        return
    _set_pg_tenant(conn, session.info[APP_ROLE], session_organization(session))


def _set_pg_tenant(conn: Connection, role: str, org: uuid.UUID | None) -> None:
    # One round trip: drop to the app role (RLS applies, no DDL) and name the tenant.
    execute_at_begin(conn, _SET_TENANT, role, str(org) if org else "")


_SET_TENANT = "SELECT set_config('role', $1, true), set_config('app.organization_id', $2, true)"
_SET_PLATFORM = "SELECT set_config('app.platform', 'on', true)"


event.listen(AppSession, "after_transaction_end", forget_transaction)


@event.listens_for(AppSession, "after_rollback")
def _drop_after_commit_callbacks(session: Session) -> None:
    session.info.pop(AFTER_COMMIT, None)


async def bind_tenant(session: AsyncSession, organization_id: uuid.UUID) -> None:
    """Make an unbound request session a tenant session (the auth dependency calls this)."""
    if is_system(session.sync_session):
        raise CrossTenantWrite("the system session cannot be bound to a tenant")
    bound = session_organization(session.sync_session)
    if bound is not None and bound != organization_id:
        raise CrossTenantWrite("session already bound to another organization")
    session.info[ORGANIZATION_ID] = organization_id
    current_organization_id.set(organization_id)
    if session.in_transaction() and dialect_name(session) == "postgresql":
        conn = await session.connection()
        await conn.run_sync(_set_pg_tenant, session.info[APP_ROLE], organization_id)


def dialect_name(session: AsyncSession) -> str:
    return session.sync_session.get_bind().dialect.name


def after_commit(session: AsyncSession, callback: AfterCommit) -> None:
    """Run `callback` once this unit of work has committed; drop it on rollback."""
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


BeforeCommit = Callable[[AsyncSession], Awaitable[None]]
_BEFORE_COMMIT: list[BeforeCommit] = []


def before_commit(hook: BeforeCommit) -> BeforeCommit:
    """Async work of every `commit` before the transaction commits (SQLAlchemy's own
    `before_commit` event is synchronous, which rules out the driver's async calls)."""
    _BEFORE_COMMIT.append(hook)
    return hook


async def commit(session: AsyncSession) -> None:
    """The only commit: called by the request dependency and the job wrapper."""
    for hook in _BEFORE_COMMIT:
        await hook(session)
    await session.commit()
    for callback in session.info.pop(AFTER_COMMIT, []):
        await callback()


class Database:
    """The engine and the three kinds of session, built from `Settings`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine = create_engine(settings)
        self._sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=AppSession
        )
        # Set by whoever runs jobs (app lifespan, worker start-up); sessions carry it so
        # services can queue work without knowing which runner is in use.
        self.jobs: Any = None

    def _info(self, **info: Any) -> dict[str, Any]:
        info[SETTINGS] = self.settings
        return {JOB_QUEUE: self.jobs, **info} if self.jobs is not None else info

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def unbound_session(self) -> AsyncSession:
        return self._sessions(info=self._info(**{APP_ROLE: self.settings.database_app_role}))

    def tenant_session(self, organization_id: uuid.UUID) -> AsyncSession:
        current_organization_id.set(organization_id)
        return self._sessions(
            info=self._info(
                **{APP_ROLE: self.settings.database_app_role, ORGANIZATION_ID: organization_id}
            )
        )

    def system_session(self) -> AsyncSession:
        """The explicit escape hatch from tenant filtering. Platform code only."""
        return self._sessions(info=self._info(**{SYSTEM: True}))

    async def dispose(self) -> None:
        await self.engine.dispose()


def create_engine(settings: Settings) -> AsyncEngine:
    url = sa.make_url(settings.database_url)
    kwargs: dict[str, Any] = {
        "echo": settings.database_echo,
        "pool_pre_ping": settings.database_pool_pre_ping,
        "pool_recycle": settings.database_pool_recycle_seconds,
    }
    if url.get_backend_name() == "sqlite":
        ensure_sqlite_directory(settings.database_url)
        engine = create_async_engine(url, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
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
