"""Embedded mode, as `make run` starts it: a SQLite file migrated and seeded by the CLI
(`helpdesk migrate`, `helpdesk demo`), the app with no Redis (jobs in process)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.demo.service import DEMO_ADMIN_EMAIL, DEMO_PASSWORD, DEMO_SLUG
from app.main import create_app
from tests.support.identity import API


def embedded_settings(url: str, storage: Path, *, timers: bool) -> Settings:
    return Settings(
        environment="test",
        database_url=url,
        redis_url=None,
        login_ip_max_attempts=1_000_000,
        storage_dir=storage,
        sla_timers_in_process=timers,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
async def embedded_app(
    embedded_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    """`make run`'s app, but for the SLA timer loop: the walks of every list need rows
    that hold still (`test_embedded_sla.py` runs the loop).

    Its in-process jobs run on the session's event loop, which stands still between
    async tests and during a plain `def` test: a job suspended inside a transaction then
    keeps SQLite's write lock until the loop runs again. So a test writes this database
    only from async code (through the app), never with a blocking write of its own,
    which would wait out its busy timeout and fail with `database is locked`."""
    settings = embedded_settings(
        embedded_url, tmp_path_factory.mktemp("embedded-storage"), timers=False
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def embedded(embedded_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=embedded_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://embedded") as client:
        yield client


@pytest.fixture(scope="session")
async def admin_headers(embedded: httpx.AsyncClient) -> dict[str, str]:
    """The README's demo login."""
    response = await embedded.post(
        f"{API}/auth/token",
        data={"username": DEMO_ADMIN_EMAIL, "password": DEMO_PASSWORD, "client_id": DEMO_SLUG},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}
