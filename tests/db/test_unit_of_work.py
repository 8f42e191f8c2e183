"""The request unit of work: commits on success, rolls back on error, and always gives
its connection back, whichever way it ends (a failed commit included)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.config import Settings
from app.db.database import Database
from app.db.dependencies import committing
from app.models import Department, Organization
from tests.support.services import backend_pid


@pytest.fixture
async def own_database(settings: Settings) -> AsyncIterator[Database]:
    """A pool of its own, so its checked-out count is this test's alone."""
    database = Database(settings)
    yield database
    await database.dispose()


async def _departments(database: Database, org: Organization, name: str) -> int:
    async with database.tenant_session(org.id) as session:
        count = await session.scalar(
            sa.select(sa.func.count()).select_from(Department).where(Department.name == name)
        )
    return int(count or 0)


async def test_a_unit_that_ends_normally_commits_and_returns_its_connection(
    own_database: Database, org_a: Organization
) -> None:
    name = uuid.uuid4().hex
    async with committing(own_database.tenant_unit(org_a.id)) as uow:
        session = uow.session
        session.add(Department(name=name))
        await session.flush()
        assert own_database.tenant_engine.pool.checkedout() == 1  # type: ignore[attr-defined]
    assert not session.in_transaction()
    assert own_database.tenant_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await _departments(own_database, org_a, name) == 1


async def test_a_unit_that_raises_rolls_back_and_returns_its_connection(
    own_database: Database, org_a: Organization
) -> None:
    name = uuid.uuid4().hex

    async def failing_request() -> None:
        async with committing(own_database.tenant_unit(org_a.id)) as uow:
            session = uow.session
            session.add(Department(name=name))
            await session.flush()
            raise LookupError

    with pytest.raises(LookupError):
        await failing_request()
    assert own_database.tenant_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await _departments(own_database, org_a, name) == 0


async def test_a_unit_whose_commit_fails_returns_its_connection(
    own_database: Database, org_a: Organization
) -> None:
    name = uuid.uuid4().hex

    async def duplicate_names() -> None:
        async with committing(own_database.tenant_unit(org_a.id)) as uow:
            session = uow.session
            # Two live departments of one name: refused by the flush inside the commit.
            session.add_all([Department(name=name), Department(name=name)])

    with pytest.raises(IntegrityError):
        await duplicate_names()
    assert own_database.tenant_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    assert await _departments(own_database, org_a, name) == 0


async def test_a_unit_on_a_dropped_connection_still_gives_it_back(
    own_database: Database, database: Database, org_a: Organization
) -> None:
    async def request_on_a_dropped_connection() -> None:
        async with committing(own_database.tenant_unit(org_a.id)) as uow:
            session = uow.session
            pid = await backend_pid(session)
            async with database.system_session() as admin:
                await admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            raise LookupError

    with pytest.raises(DBAPIError) as lost:  # the rollback finds the connection gone
        await request_on_a_dropped_connection()
    assert lost.value.connection_invalidated
    assert own_database.tenant_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_a_failing_after_commit_callback_keeps_the_commit_and_the_others(
    own_database: Database, org_a: Organization
) -> None:
    """The commit is the answer: a failed enqueue after it (Redis down) is logged, the
    other callbacks still run and the request still succeeds."""
    name = uuid.uuid4().hex
    ran: list[str] = []

    async def broken() -> None:
        raise ConnectionError("redis is down")

    async def later() -> None:
        ran.append("later")

    async with committing(own_database.tenant_unit(org_a.id)) as uow:
        uow.session.add(Department(name=name))
        uow.after_commit(broken)
        uow.after_commit(later)
    assert ran == ["later"]
    assert await _departments(own_database, org_a, name) == 1
