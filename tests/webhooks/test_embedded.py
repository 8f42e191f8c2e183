"""Embedded mode (`make run`: SQLite, no Redis, jobs in process): the relay and the
delivery job run inside the API process, and a ticket change still reaches a real
receiver, signed; a failed attempt waits in the database for its retry."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from standardwebhooks import Webhook

from app.config import Settings
from app.db.database import Database
from app.main import create_app
from app.models.webhook import DeliveryStatus
from tests.conftest import helpdesk
from tests.support.identity import Tenant, make_tenant
from tests.webhooks.conftest import (
    WEBHOOKS,
    attempts,
    deliveries,
    eventually,
    make_webhook,
    open_ticket,
)
from tests.webhooks.receiver import Receiver, Reply


@pytest.fixture(scope="module")
async def sqlite_app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FastAPI]:
    path = tmp_path_factory.mktemp("webhooks-embedded") / "helpdesk.db"
    url = f"sqlite+aiosqlite:///{path}"
    helpdesk(url, "migrate")
    settings = Settings(
        environment="test",
        database_url=url,
        redis_url=None,
        sla_timers_in_process=False,
        webhook_allow_private_targets=True,
        login_ip_max_attempts=1_000_000,
        storage_dir=Path(path).parent / "storage",
        _env_file=None,  # type: ignore[call-arg]
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="module")
async def sqlite_client(sqlite_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sqlite_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://embedded") as client:
        yield client


async def test_deliveries_happen_in_process_on_sqlite(
    sqlite_app: FastAPI, sqlite_client: httpx.AsyncClient, receiver: Receiver
) -> None:
    database: Database = sqlite_app.state.database
    tenant: Tenant = await make_tenant(database, f"Embedded{uuid.uuid4().hex[:4]}")
    webhook = await make_webhook(sqlite_client, tenant, receiver.url())
    ticket = await open_ticket(sqlite_client, tenant)
    await receiver.wait_for(1)
    [request] = receiver.requests
    Webhook(webhook["secret"]).verify(request.body, request.headers, json_parse=False)
    assert request.json["data"]["id"] == ticket["id"]

    async def delivered() -> bool:
        rows = await deliveries(database, tenant, webhook["id"])
        return [row.status for row in rows] == [DeliveryStatus.SUCCEEDED]

    await eventually(delivered)

    receiver.answer = lambda _request: Reply(503)
    tested = await sqlite_client.post(
        f"{WEBHOOKS}/{webhook['id']}/test", headers=tenant["admin"].headers
    )
    assert tested.status_code == 202, tested.text

    async def retry_scheduled() -> bool:
        tried = await attempts(database, tenant, uuid.UUID(tested.json()["id"]))
        return [a.status_code for a in tried] == [503]

    await eventually(retry_scheduled)
    listed = await sqlite_client.get(
        f"{WEBHOOKS}/{webhook['id']}/deliveries",
        params={"status": "pending"},
        headers=tenant["admin"].headers,
    )
    [pending] = listed.json()["items"]
    assert (pending["event_type"], pending["last_status_code"]) == ("webhook.test", 503)
    assert pending["next_attempt_at"] is not None
