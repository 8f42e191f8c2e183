"""Fixtures: one fresh PostgreSQL database per test run, migrated to head and dropped
at the end; tenant code runs as the app role (the tenant session switches to it)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState

from app.cli import upgrade_database
from app.config import Settings
from app.db.database import Database
from app.db.session import TENANT_SCOPED, AppSession, session_organization
from app.main import create_app
from app.models.organization import Organization
from tests.support.identity import Actor, Tenant, make_superuser, make_tenant
from tests.support.services import create_database, drop_database, redis_url
from tests.support.statement_proof import prove


@pytest.fixture(scope="session", autouse=True)
def prove_repository_statements() -> Iterator[None]:
    """Every statement a repository builds is proven when a test runs it: tenant and
    soft-delete criteria in each SELECT, UPDATE and DELETE, only the tenant's rows
    inserted (`tests/support/statement_proof.py`). A failed proof fails that test."""

    def check(state: ORMExecuteState) -> None:
        if state.execution_options.get(TENANT_SCOPED, False):
            organization_id = session_organization(state.session)
            assert organization_id is not None
            include_deleted = bool(state.execution_options.get("include_deleted", False))
            prove(state.statement, organization_id, include_deleted=include_deleted)

    event.listen(AppSession, "do_orm_execute", check)
    yield
    event.remove(AppSession, "do_orm_execute", check)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    url = asyncio.run(create_database())
    try:
        upgrade_database("head", url)
        yield url
    finally:
        asyncio.run(drop_database(url))


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        redis_url=None,
        # The SLA timer tests run their own loops (and workers) against this database.
        sla_timers_in_process=False,
        webhook_allow_private_targets=True,
        job_queue_name=f"arq:test:{uuid.uuid4().hex}",
        redis_key_prefix=f"helpdesk-test:{uuid.uuid4().hex}",
        # Every test logs in from the same ASGI client address; the per-IP login
        # budget has its own test with its own app.
        login_ip_max_attempts=1_000_000,
        storage_dir=tmp_path_factory.mktemp("storage"),
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings)
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The real application (every router), started once for the test session."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
async def tenant_a(database: Database) -> Tenant:
    return await make_tenant(database, "Alpha")


@pytest.fixture
async def tenant_b(database: Database) -> Tenant:
    return await make_tenant(database, "Beta")


@pytest.fixture
async def superuser(database: Database) -> Actor:
    return await make_superuser(database)


@pytest.fixture(scope="session")
def test_redis_url() -> str:
    return redis_url()


async def make_organization(database: Database, name: str = "Org") -> Organization:
    suffix = uuid.uuid4().hex[:10]
    async with database.system_session() as session:
        org = Organization(name=f"{name} {suffix}", slug=f"{name.lower()}-{suffix}")
        session.add(org)
        await session.commit()
    return org


@pytest.fixture
async def org_a(database: Database) -> Organization:
    return await make_organization(database, "Alpha")


@pytest.fixture
async def org_b(database: Database) -> Organization:
    return await make_organization(database, "Beta")


# --- embedded mode: a SQLite file as `make run` makes it -------------------------------

DEMO_TICKETS = 301


def helpdesk(database_url: str, *args: str) -> None:
    """The CLI in its own process, as a user runs it."""
    environment = {**os.environ, "DATABASE_URL": database_url}
    environment.pop("REDIS_URL", None)
    command = [sys.executable, "-m", "app.cli", *args]
    subprocess.run(command, env=environment, check=True)  # noqa: S603 - our own CLI


def embedded_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite file as `make run` leaves it: migrated, with the demo organization."""
    path = tmp_path_factory.mktemp("embedded") / "var" / "helpdesk.db"
    url = f"sqlite+aiosqlite:///{path}"
    helpdesk(url, "migrate")
    helpdesk(url, "demo", "--tickets", str(DEMO_TICKETS))
    return url


@pytest.fixture(scope="session")
def embedded_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return embedded_database(tmp_path_factory)


@pytest.fixture(scope="session")
def fuzzed_embedded_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A demo database of its own for contract fuzzing, which leaves whatever it generated
    behind (a required custom field, say, that every later create would have to fill)."""
    return embedded_database(tmp_path_factory)


@pytest.fixture(scope="session")
def embedded_path(embedded_url: str) -> Path:
    return Path(embedded_url.removeprefix("sqlite+aiosqlite:///"))
