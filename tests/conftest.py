"""Fixtures: one fresh PostgreSQL database per test run, migrated to head and dropped
at the end; tenant code runs as the app role (the tenant session switches to it)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from app.cli import upgrade_database
from app.config import Settings
from app.db.session import Database, commit
from app.models.organization import Organization
from tests.support.services import create_database, drop_database, redis_url


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    url = asyncio.run(create_database())
    try:
        upgrade_database("head", url)
        yield url
    finally:
        asyncio.run(drop_database(url))


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        redis_url=None,
        webhook_allow_private_targets=True,
        job_queue_name=f"arq:test:{uuid.uuid4().hex}",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings)
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
def test_redis_url() -> str:
    return redis_url()


async def make_organization(database: Database, name: str = "Org") -> Organization:
    suffix = uuid.uuid4().hex[:10]
    async with database.system_session() as session:
        org = Organization(name=f"{name} {suffix}", slug=f"{name.lower()}-{suffix}")
        session.add(org)
        await commit(session)
    return org


@pytest.fixture
async def org_a(database: Database) -> Organization:
    return await make_organization(database, "Alpha")


@pytest.fixture
async def org_b(database: Database) -> Organization:
    return await make_organization(database, "Beta")
