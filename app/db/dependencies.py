"""Request-scoped database access: one session per request, committed in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import Database, commit
from app.kit.errors import AppError


# Dependencies are `async def` even when they do not await: FastAPI runs plain `def`
# dependencies in a worker thread, a hop that costs more than the work itself.
async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


@asynccontextmanager
async def _unit_of_work(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Commits after the endpoint returns and before the response is sent
    (scope="function"), so a 201 is durable; any exception rolls back and drops the
    after-commit work of this unit."""
    try:
        try:
            yield session
        except AppError as exc:
            if exc.keep_writes:
                await commit(session)
            else:
                await session.rollback()
            raise
        except BaseException:
            await session.rollback()
            raise
        await commit(session)
    finally:
        await _close(session)


async def _close(session: AsyncSession) -> None:
    if session.in_transaction():  # a commit or rollback failed: give the connection back
        await session.close()
    else:
        # Nothing to roll back or return: closing is bookkeeping, with no I/O, so it
        # needs neither SQLAlchemy's greenlet nor the task `async with` runs it in
        # (FastAPI already shields a dependency's exit from cancellation).
        session.sync_session.close()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Unbound until the auth dependency names the tenant."""
    async with _unit_of_work(request.app.state.database.unbound_session()) as session:
        yield session


async def get_system_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The platform escape hatch (superuser endpoints, credential look-ups)."""
    async with _unit_of_work(request.app.state.database.system_session()) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SystemSessionDep = Annotated[AsyncSession, Depends(get_system_session, scope="function")]
DatabaseDep = Annotated[Database, Depends(get_database)]
