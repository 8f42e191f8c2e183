"""The engine, its sessions, and the units of work built on them."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db.session import ORGANIZATION_ID, SYSTEM, AppSession, create_engine
from app.db.unit_of_work import JobQueue, UnitOfWork


class Database:
    """Built once per process from `Settings`; `jobs` is attached by whoever runs jobs
    (the app's lifespan, the worker's start-up).

    Two engines on PostgreSQL: tenant and unbound sessions connect as the app role
    (`tenant_engine`), the system session as the owner (`engine`). Embedded SQLite has
    one database file and no roles: both are the same engine."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine = create_engine(settings, settings.database_url)
        self.tenant_engine: AsyncEngine = (
            self.engine
            if settings.tenant_database_url == settings.database_url
            else create_engine(settings, settings.tenant_database_url)
        )
        self.sessions = async_sessionmaker(
            self.tenant_engine, expire_on_commit=False, sync_session_class=AppSession
        )
        self.system_sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=AppSession
        )
        self.jobs: JobQueue | None = None

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def unbound_session(self) -> AsyncSession:
        """A request's session before authentication names its tenant."""
        return self.sessions(info={})

    def tenant_session(self, organization_id: uuid.UUID) -> AsyncSession:
        return self.sessions(info={ORGANIZATION_ID: organization_id})

    def system_session(self) -> AsyncSession:
        """The explicit escape hatch from tenant filtering. Platform code only."""
        return self.system_sessions(info={SYSTEM: True})

    def unit_of_work(self, session: AsyncSession) -> UnitOfWork:
        return UnitOfWork(session=session, settings=self.settings, jobs=self.jobs)

    def tenant_unit(self, organization_id: uuid.UUID) -> UnitOfWork:
        return self.unit_of_work(self.tenant_session(organization_id))

    def system_unit(self) -> UnitOfWork:
        return self.unit_of_work(self.system_session())

    async def dispose(self) -> None:
        await self.tenant_engine.dispose()
        await self.engine.dispose()
