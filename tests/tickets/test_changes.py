"""GET /changes: created, updated and deleted tickets in commit order, never skipping a
transaction that commits late."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import httpx
import sqlalchemy as sa

from app.auth.principal import Principal, PrincipalKind
from app.db.database import Database
from app.models.ticket import Priority, Ticket
from app.models.user import Role
from app.tickets.schemas import TicketUpdate
from app.tickets.service import update_ticket
from tests.support.identity import API, Tenant


async def _walk(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    cursor: str | None = None,
    limit: int = 2,
) -> tuple[list[dict[str, Any]], str | None]:
    """Every entry settled after `cursor`; returns them and the cursor to poll from."""
    entries: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(f"{API}/changes", params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        entries += body["items"]
        if not body["items"]:
            assert body["next_cursor"] == cursor  # nothing new: poll from the same place
            return entries, cursor
        cursor = body["next_cursor"]


async def test_feed_lists_creates_updates_and_tombstones(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    agent = tenant_a["agent"].headers
    body = {"subject": "Feed me", "customer_id": str(tenant_a["customer"].user_id)}
    created = (await client.post(f"{API}/tickets", json=body, headers=agent)).json()
    await client.patch(f"{API}/tickets/{created['id']}", json={"priority": "high"}, headers=agent)
    other = (await client.post(f"{API}/tickets", json=body, headers=agent)).json()
    await client.delete(f"{API}/tickets/{other['id']}", headers=tenant_a["manager"].headers)

    entries, _ = await _walk(client, agent)
    assert [(e["ticket_id"], e["change"]) for e in entries] == [
        (created["id"], "created"),
        (created["id"], "updated"),
        (other["id"], "created"),
        (other["id"], "deleted"),
    ]
    assert entries[0]["ticket"]["priority"] == "high"  # the ticket as it is now
    assert entries[3]["ticket"] is None  # a tombstone
    # Another organization's feed holds none of it; customers have no feed.
    theirs, _ = await _walk(client, tenant_b["agent"].headers)
    assert theirs == []
    customer = await client.get(f"{API}/changes", headers=tenant_a["customer"].headers)
    assert customer.status_code == 403


async def test_a_transaction_that_commits_late_is_not_skipped(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    agent = tenant_a["agent"]
    body = {"subject": "Early", "customer_id": str(tenant_a["customer"].user_id)}
    first = (await client.post(f"{API}/tickets", json=body, headers=agent.headers)).json()
    seen, cursor = await _walk(client, agent.headers)
    principal = Principal(PrincipalKind.USER, agent.user_id, tenant_a.org.id, Role.AGENT)
    # A slow writer takes its transaction id first and commits last.
    slow = database.tenant_unit(tenant_a.org.id)
    async with slow.session:
        await update_ticket(
            slow, principal, uuid.UUID(first["id"]), TicketUpdate(priority=Priority.HIGH)
        )
        second = (await client.post(f"{API}/tickets", json=body, headers=agent.headers)).json()
        held, _ = await _walk(client, agent.headers, cursor)
        # The quick writer's change is held back while an older transaction is open.
        assert held == []
        await slow.commit()
    rest, _ = await _walk(client, agent.headers, cursor)
    assert [(e["ticket_id"], e["change"]) for e in seen + rest] == [
        (first["id"], "created"),
        (first["id"], "updated"),
        (second["id"], "created"),
    ]


async def test_concurrent_writers_all_appear_exactly_once(
    client: httpx.AsyncClient, tenant_a: Tenant, database: Database
) -> None:
    agent = tenant_a["agent"].headers
    body = {"subject": "Burst", "customer_id": str(tenant_a["customer"].user_id)}
    first, cursor = await _walk(client, agent)
    responses = await asyncio.gather(
        *(client.post(f"{API}/tickets", json=body, headers=agent) for _ in range(30))
    )
    assert {r.status_code for r in responses} == {201}
    rest, _ = await _walk(client, agent, cursor, limit=7)
    async with database.tenant_session(tenant_a.org.id) as session:
        ids = {str(i) for i in await session.scalars(sa.select(Ticket.id))}
    assert sorted(e["ticket_id"] for e in first + rest) == sorted(ids)


async def test_a_comment_is_a_change_of_its_ticket(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    agent = tenant_a["agent"].headers
    body = {"subject": "Thread", "customer_id": str(tenant_a["customer"].user_id)}
    ticket = (await client.post(f"{API}/tickets", json=body, headers=agent)).json()
    _, cursor = await _walk(client, agent)
    for comment_type in ("internal", "public", "public"):
        response = await client.post(
            f"{API}/tickets/{ticket['id']}/comments",
            json={"content": "Update", "comment_type": comment_type},
            headers=agent,
        )
        assert response.status_code == 201
    entries, _ = await _walk(client, agent, cursor)
    # One entry per write, the first public reply (which also stamps the first response)
    # included exactly once.
    assert [(e["ticket_id"], e["change"]) for e in entries] == [(ticket["id"], "updated")] * 3


async def test_the_cursor_reveals_only_the_callers_own_last_change(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    """No transaction id (PostgreSQL counts them across tenants) leaves the server: the
    cursor is the id of the caller's last change served, and another tenant's id is no
    cursor at all."""
    agent = tenant_a["agent"].headers
    body = {"subject": "Cursor", "customer_id": str(tenant_a["customer"].user_id)}
    await client.post(f"{API}/tickets", json=body, headers=agent)
    entries, cursor = await _walk(client, agent)
    assert cursor is not None
    decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    assert decoded == [entries[-1]["id"]]
    response = await client.get(
        f"{API}/changes", params={"cursor": cursor}, headers=tenant_b["agent"].headers
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["query", "cursor"]
