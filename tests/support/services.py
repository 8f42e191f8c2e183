"""Test databases on the real PostgreSQL: create, migrate, drop. And a reachability check.

`python -m tests.support.services --check` fails fast with a clear message when
PostgreSQL or Redis is not reachable, before any test starts."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid

import asyncpg
import sqlalchemy as sa
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"


async def backend_pid(session: AsyncSession) -> int:
    """The server process behind a session's connection (for tests that drop it). Run on
    the connection: a tenant session refuses SQL text that no repository built."""
    connection = await session.connection()
    return int((await connection.exec_driver_sql("SELECT pg_backend_pid()")).scalar_one())


def admin_url() -> sa.URL:
    return sa.make_url(os.environ.get("TEST_DATABASE_URL", DEFAULT_DATABASE_URL))


def redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL", DEFAULT_REDIS_URL)


def _dsn(url: sa.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(prefix: str = "helpdesk_test") -> str:
    """A fresh, empty database; returns its async SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_dsn(admin_url()))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin_url().set(database=name).render_as_string(hide_password=False)


async def drop_database(url: str) -> None:
    name = sa.make_url(url).database
    conn = await asyncpg.connect(_dsn(admin_url()))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def check() -> list[str]:
    problems = []
    try:
        conn = await asyncio.wait_for(asyncpg.connect(_dsn(admin_url())), 5)
        await conn.close()
    except Exception as exc:
        problems.append(f"PostgreSQL at {admin_url().render_as_string()} unreachable: {exc!r}")
    try:
        client = Redis.from_url(redis_url())
        await asyncio.wait_for(client.ping(), 5)
        await client.aclose()
    except Exception as exc:
        problems.append(f"Redis at {redis_url()} unreachable: {exc!r}")
    return problems


if __name__ == "__main__" and "--check" in sys.argv:
    found = asyncio.run(check())
    for problem in found:
        print(f"error: {problem}", file=sys.stderr)
    if found:
        print(
            "make test needs a running PostgreSQL and Redis "
            "(set TEST_DATABASE_URL / TEST_REDIS_URL to point elsewhere).",
            file=sys.stderr,
        )
        sys.exit(2)
    print("PostgreSQL and Redis reachable")
