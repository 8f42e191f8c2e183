"""Request-scoped database access: one unit of work per request, committed in one place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.database import Database
from app.db.unit_of_work import UnitOfWork
from app.kit.errors import AppError


# Dependencies are `async def` even when they do not await: FastAPI runs plain `def`
# dependencies in a worker thread, a hop that costs more than the work itself.
async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


@asynccontextmanager
async def committing(uow: UnitOfWork) -> AsyncIterator[UnitOfWork]:
    """Commits after the endpoint returns and before the response is sent
    (scope="function"), so a 201 is durable; any exception rolls back and drops the
    after-commit work of this unit."""
    try:
        try:
            yield uow
        except AppError as exc:
            if exc.keep_writes:
                await uow.commit()
            else:
                await uow.rollback()
            raise
        except BaseException:
            await uow.rollback()
            raise
        await uow.commit()
    finally:
        await uow.close()


async def get_unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    """Unbound until the auth dependency names the tenant."""
    database: Database = request.app.state.database
    async with committing(database.unit_of_work(database.unbound_session())) as uow:
        yield uow


async def get_system_unit_of_work(request: Request) -> AsyncIterator[UnitOfWork]:
    """The platform escape hatch (superuser endpoints, credential look-ups)."""
    database: Database = request.app.state.database
    async with committing(database.system_unit()) as uow:
        yield uow


UnitOfWorkDep = Annotated[UnitOfWork, Depends(get_unit_of_work, scope="function")]
SystemUnitOfWorkDep = Annotated[UnitOfWork, Depends(get_system_unit_of_work, scope="function")]


async def get_session(uow: UnitOfWorkDep) -> AsyncSession:
    """The request unit's session, for routes whose services need nothing else."""
    return uow.session


async def get_system_session(uow: SystemUnitOfWorkDep) -> AsyncSession:
    return uow.session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
SystemSessionDep = Annotated[AsyncSession, Depends(get_system_session)]
DatabaseDep = Annotated[Database, Depends(get_database)]
