"""Pooled connections are not pinged on checkout (three round trips per request with
asyncpg): a connection the database dropped fails one unit of work with a retryable
503, and the pool replaces it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from starlette.requests import Request

from app.auth.repository import SessionCheckRepository
from app.config import Settings
from app.db.database import Database
from app.kit.errors import _database_error
from app.models import Organization
from tests.support.services import backend_pid


async def test_a_dropped_connection_fails_one_request_with_503_then_recovers(
    settings: Settings, database: Database
) -> None:
    own = Database(settings)
    try:
        async with own.system_session() as session:
            pid = await (await session.connection()).scalar(sa.text("SELECT pg_backend_pid()"))
        async with database.system_session() as admin:
            await admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        async with own.system_session() as session:
            try:
                await (await session.connection()).scalar(sa.text("SELECT 1"))
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
            assert (
                await (await session.connection()).scalar(sa.text("SELECT 1")) == 1
            )  # a fresh connection
    finally:
        await own.dispose()


async def test_a_repository_read_on_a_lost_connection_fails_and_the_pool_recovers(
    settings: Settings, database: Database, org_a: Organization
) -> None:
    own = Database(settings)
    try:
        async with own.tenant_session(org_a.id) as session:
            pid = await backend_pid(session)
            async with database.system_session() as admin:
                await admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            with pytest.raises(DBAPIError) as lost:
                await SessionCheckRepository(session).live_session(
                    uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
                )
        assert lost.value.connection_invalidated
        async with own.tenant_session(org_a.id) as session:
            found = await SessionCheckRepository(session).live_session(
                uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
            )
            assert found is None
    finally:
        await own.dispose()


async def test_tenant_settings_on_a_dropped_connection_fail_like_any_statement(
    settings: Settings, database: Database, org_a: Organization
) -> None:
    """The tenant settings open every transaction: a connection lost before them is
    reported and invalidated like any statement's."""
    own = Database(settings)
    try:
        async with own.tenant_session(org_a.id) as session:
            pid = await backend_pid(session)
        async with database.system_session() as admin:
            await admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        async with own.tenant_session(org_a.id) as session:
            with pytest.raises(DBAPIError) as lost:
                await session.connection()
        assert lost.value.connection_invalidated
        async with own.tenant_session(org_a.id) as session:
            connection = await session.connection()
            setting = await connection.exec_driver_sql(
                "SELECT current_setting('app.organization_id')"
            )
            assert setting.scalar_one() == str(org_a.id)
    finally:
        await own.dispose()
