"""Pooled connections are not pinged on checkout (three round trips per request with
asyncpg): a connection the database dropped fails one unit of work with a retryable
503, and the pool replaces it."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from starlette.requests import Request

from app.config import Settings
from app.db.session import Database
from app.kit.errors import _database_error


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
