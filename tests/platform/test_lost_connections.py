"""Pooled connections are not pinged on checkout (three round trips per request with
asyncpg): a connection the database dropped fails one unit of work with a retryable
503, and the pool replaces it."""

from __future__ import annotations

import json
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from starlette.requests import Request

from app.config import Settings
from app.db.scoped import ScopedQuery, fetch_one_or_none, scope
from app.db.session import Database
from app.kit.errors import _database_error
from app.models import Organization, User
from app.models.user import Role


async def test_a_dropped_connection_fails_one_request_with_503_then_recovers(
    settings: Settings, database: Database
) -> None:
    own = Database(settings)
    try:
        async with own.system_session() as session:
            pid = await session.scalar(sa.text("SELECT pg_backend_pid()"))
        async with database.system_session() as admin:
            await admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        async with own.system_session() as session:
            try:
                await session.scalar(sa.text("SELECT 1"))
            except DBAPIError as exc:
                lost = exc
            else:
                raise AssertionError("the dropped connection was used without an error")
        assert lost.connection_invalidated
        response = await _database_error(Request({"type": "http", "headers": []}), lost)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert json.loads(response.body)["type"].endswith("database-unavailable")
        async with own.system_session() as session:
            assert await session.scalar(sa.text("SELECT 1")) == 1  # a fresh connection
    finally:
        await own.dispose()


async def test_prepared_scoped_reads_report_a_lost_connection_like_any_statement(
    settings: Settings, database: Database, org_a: Organization
) -> None:
    """Prepared scoped reads run on the driver itself; a failure there still becomes
    SQLAlchemy's error (so the handlers answer 503) and the pool drops the connection."""
    query = ScopedQuery(
        sa.select(User.id).where(*scope(User), User.id == sa.bindparam("user_id"))
    ).prepare()
    own = Database(settings)
    try:
        async with own.tenant_session(org_a.id) as session:
            connection = await session.connection()
            pid = (await connection.exec_driver_sql("SELECT pg_backend_pid()")).scalar()
            async with database.system_session() as admin:
                await admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(DBAPIError) as lost:
                await fetch_one_or_none(session, query, user_id=uuid.uuid4())
        assert lost.value.connection_invalidated
        async with own.tenant_session(org_a.id) as session:
            assert await fetch_one_or_none(session, query, user_id=uuid.uuid4()) is None
    finally:
        await own.dispose()


async def test_prepared_and_plain_scoped_reads_agree(
    database: Database, org_a: Organization
) -> None:
    async with database.tenant_session(org_a.id) as session:
        user = User(email=f"{uuid.uuid4().hex}@example.com", role=Role.AGENT)
        session.add(user)
        await session.flush()
        plain = ScopedQuery(
            sa.select(User.__table__).where(*scope(User), User.id == sa.bindparam("user_id"))
        )
        via_sqlalchemy = await fetch_one_or_none(session, plain, user_id=user.id)
        via_driver = await fetch_one_or_none(session, plain.prepare(), user_id=user.id)
        await session.rollback()
    assert via_sqlalchemy is not None and via_driver is not None
    assert via_driver == {
        key: value.value if isinstance(value, Role) else value
        for key, value in via_sqlalchemy.items()
    }


async def test_tenant_settings_on_a_dropped_connection_fail_like_any_statement(
    settings: Settings, database: Database, org_a: Organization
) -> None:
    """The tenant settings open every transaction and run on the driver itself: a
    connection lost before them is reported and invalidated as SQLAlchemy would."""
    own = Database(settings)
    try:
        async with own.tenant_session(org_a.id) as session:
            pid = await session.scalar(sa.text("SELECT pg_backend_pid()"))
        async with database.system_session() as admin:
            await admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        async with own.tenant_session(org_a.id) as session:
            with pytest.raises(DBAPIError) as lost:
                await session.connection()
        assert lost.value.connection_invalidated
        async with own.tenant_session(org_a.id) as session:
            assert await session.scalar(
                sa.text("SELECT current_setting('app.organization_id')")
            ) == str(org_a.id)
    finally:
        await own.dispose()
