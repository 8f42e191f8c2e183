"""A live receiver per test, and helpers to reach the webhook rows."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.db.database import Database
from app.models.webhook import WebhookDelivery, WebhookDeliveryAttempt, WebhookSubscription
from app.webhooks import connections
from tests.support.identity import API, Tenant
from tests.webhooks.receiver import Receiver

WEBHOOKS = f"{API}/webhooks"


@pytest.fixture(autouse=True)
async def _no_kept_connections() -> AsyncIterator[None]:
    """Each test starts and ends with no client kept from another (the receivers'
    ports come and go)."""
    await connections.close_all()
    yield
    await connections.close_all()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    live = Receiver()
    await live.start()
    yield live
    await live.stop()


async def make_webhook(
    client: httpx.AsyncClient, tenant: Tenant, url: str, **fields: Any
) -> dict[str, Any]:
    response = await client.post(
        WEBHOOKS, json={"url": url, **fields}, headers=tenant["admin"].headers
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def open_ticket(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> dict[str, Any]:
    body = {
        "subject": f"Printer {uuid.uuid4().hex[:6]}",
        "description": "Smoke from tray 2.",
        "customer_id": str(tenant["customer"].user_id),
        **fields,
    }
    response = await client.post(f"{API}/tickets", json=body, headers=tenant["agent"].headers)
    assert response.status_code == 201, response.text
    ticket: dict[str, Any] = response.json()
    return ticket


async def deliveries(database: Database, tenant: Tenant, webhook_id: str) -> list[WebhookDelivery]:
    async with database.tenant_session(tenant.org.id) as session:
        rows = await session.scalars(
            sa.select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == uuid.UUID(webhook_id))
            .order_by(WebhookDelivery.event_id)
        )
        return list(rows)


async def attempts(
    database: Database, tenant: Tenant, delivery_id: uuid.UUID
) -> list[WebhookDeliveryAttempt]:
    async with database.tenant_session(tenant.org.id) as session:
        rows = await session.scalars(
            sa.select(WebhookDeliveryAttempt)
            .where(WebhookDeliveryAttempt.delivery_id == delivery_id)
            .order_by(WebhookDeliveryAttempt.attempt_number)
        )
        return list(rows)


async def subscription(database: Database, tenant: Tenant, webhook_id: str) -> WebhookSubscription:
    async with database.tenant_session(tenant.org.id) as session:
        row = await session.get(WebhookSubscription, uuid.UUID(webhook_id))
        assert row is not None
        return row


POLL_SECONDS = 0.02
WAIT_SECONDS = 10.0


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Until `check()` holds: the app's in-process runner delivers on its own time, and
    the database is what tells (no event to wait on)."""
    async with asyncio.timeout(WAIT_SECONDS):
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(POLL_SECONDS)
