"""Tickets over the API and in the database, for the tests that need one: the /tickets
vocabulary, requests that open, move, read and list tickets, and readers of what a ticket
write left behind (rows, history, outbox events)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import sqlalchemy as sa

from app.db.database import Database
from app.models import OutboxEvent, SequenceCounter
from app.models.ticket import Ticket, TicketHistory
from tests.support.api import pages
from tests.support.identity import API, Actor, Tenant

TICKETS = f"{API}/tickets"
NUMBER = re.compile(r"^TK-\d{6}$")

STATUSES = ("new", "open", "pending", "resolved", "closed", "cancelled")
# A walk of allowed moves from `new` to each status.
PATH_TO: dict[str, tuple[str, ...]] = {
    "new": (),
    "open": ("open",),
    "pending": ("pending",),
    "resolved": ("resolved",),
    "closed": ("resolved", "closed"),
    "cancelled": ("cancelled",),
}
TICKET_FIELDS = frozenset(
    {
        "id",
        "ticket_number",
        "subject",
        "description",
        "status",
        "priority",
        "channel",
        "customer_id",
        "assigned_agent_id",
        "created_by_id",
        "department_id",
        "sla_policy_id",
        "tags",
        "custom_fields",
        "sla_breach",
        "sla_status",
        "first_response_due_at",
        "next_reply_due_at",
        "resolution_due_at",
        "first_response_at",
        "resolved_at",
        "closed_at",
        "time_to_first_response",
        "time_to_resolution",
        "version",
        "created_at",
        "updated_at",
    }
)


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def uid(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def customer_of(tenant: Tenant) -> str:
    user_id = tenant["customer"].user_id
    assert user_id is not None
    return str(user_id)


def user_of(tenant: Tenant, role: str) -> str:
    user_id = tenant[role].user_id
    assert user_id is not None
    return str(user_id)


async def post_ticket(
    client: httpx.AsyncClient,
    actor: Actor,
    body: dict[str, Any],
    params: dict[str, Any] | None = None,
) -> httpx.Response:
    return await client.post(TICKETS, json=body, headers=actor.headers, params=params)


async def create(
    client: httpx.AsyncClient, tenant: Tenant, actor: str = "agent", **body: Any
) -> dict[str, Any]:
    """A ticket opened by `actor` (staff: for the tenant's customer unless told)."""
    body.setdefault("subject", f"Subject {uuid.uuid4().hex[:8]}")
    if actor != "customer":
        body.setdefault("customer_id", customer_of(tenant))
    response = await post_ticket(client, tenant[actor], body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def patch(
    client: httpx.AsyncClient,
    actor: Actor,
    ticket_id: str,
    body: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
) -> httpx.Response:
    return await client.patch(
        f"{TICKETS}/{ticket_id}",
        json=body,
        headers={**actor.headers, **(headers or {})},
        params=params,
    )


async def patched(
    client: httpx.AsyncClient, actor: Actor, ticket_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await patch(client, actor, ticket_id, body)
    assert response.status_code == 200, response.text
    updated: dict[str, Any] = response.json()
    return updated


async def ticket_in(
    client: httpx.AsyncClient, tenant: Tenant, status: str, **body: Any
) -> dict[str, Any]:
    """A ticket brought to `status` by allowed moves over the API."""
    ticket = await create(client, tenant, **body)
    for step in PATH_TO[status]:
        ticket = await patched(client, tenant["agent"], ticket["id"], {"status": step})
    assert ticket["status"] == status
    return ticket


async def get_ticket(client: httpx.AsyncClient, actor: Actor, ticket_id: str) -> dict[str, Any]:
    response = await client.get(f"{TICKETS}/{ticket_id}", headers=actor.headers)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == f'"{response.json()["version"]}"'
    found: dict[str, Any] = response.json()
    return found


async def list_all(client: httpx.AsyncClient, actor: Actor, **params: Any) -> list[dict[str, Any]]:
    """Every row of the list, following cursors (pages of 200)."""
    return [row for page in await walk(client, actor, 200, **params) for row in page]


async def walk(
    client: httpx.AsyncClient, actor: Actor, limit: int, **params: Any
) -> list[list[dict[str, Any]]]:
    return await pages(client, TICKETS, actor.headers, limit, **params)


async def api_history(
    client: httpx.AsyncClient, actor: Actor, ticket_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{TICKETS}/{ticket_id}/history", params={"limit": 200}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def ticket_row(database: Database, tenant: Tenant, ticket_id: str) -> Ticket | None:
    async with database.tenant_session(tenant.org.id) as session:
        return await session.scalar(
            sa.select(Ticket)
            .where(Ticket.id == uuid.UUID(ticket_id))
            .execution_options(include_deleted=True)
        )


async def all_ticket_rows(database: Database, tenant: Tenant) -> list[Ticket]:
    async with database.tenant_session(tenant.org.id) as session:
        rows = await session.scalars(sa.select(Ticket).execution_options(include_deleted=True))
        return list(rows)


async def events(database: Database, tenant: Tenant) -> list[OutboxEvent]:
    async with database.tenant_session(tenant.org.id) as session:
        rows = await session.scalars(
            sa.select(OutboxEvent)
            .where(OutboxEvent.aggregate_type == "ticket")
            .order_by(OutboxEvent.id)
        )
        return list(rows)


@dataclass
class Snapshot:
    """Everything a refused request must leave as it was."""

    tickets: dict[uuid.UUID, tuple[Any, ...]]
    history: int
    events: int
    counter: int | None


def _ticket_state(t: Ticket) -> tuple[Any, ...]:
    return (
        t.version,
        t.status,
        t.priority,
        t.subject,
        t.description,
        t.assigned_agent_id,
        t.department_id,
        t.tags,
        t.resolved_at,
        t.closed_at,
        t.time_to_resolution,
        t.deleted_at,
        t.updated_at,
    )


async def snapshot(database: Database, tenant: Tenant) -> Snapshot:
    async with database.tenant_session(tenant.org.id) as session:
        tickets = await session.scalars(sa.select(Ticket).execution_options(include_deleted=True))
        history = await session.scalar(sa.select(sa.func.count()).select_from(TicketHistory))
        outbox = await session.scalar(sa.select(sa.func.count()).select_from(OutboxEvent))
        counter = await session.scalar(
            sa.select(SequenceCounter.value).where(SequenceCounter.name == "ticket")
        )
        return Snapshot(
            tickets={t.id: _ticket_state(t) for t in tickets},
            history=history or 0,
            events=outbox or 0,
            counter=counter,
        )


async def history_rows(
    database: Database, tenant: Tenant, ticket_id: uuid.UUID
) -> list[TicketHistory]:
    """Every history row but the ticket's creation, oldest first."""
    async with database.tenant_session(tenant.org.id) as session:
        rows = await session.scalars(
            sa.select(TicketHistory)
            .where(TicketHistory.ticket_id == ticket_id, TicketHistory.field != "ticket")
            .order_by(TicketHistory.id)
        )
        return list(rows)


async def event_rows(
    database: Database, tenant: Tenant, ticket_id: uuid.UUID, event_type: str | None = None
) -> list[OutboxEvent]:
    """The ticket's outbox events (of one type, if given), oldest first."""
    async with database.tenant_session(tenant.org.id) as session:
        statement = sa.select(OutboxEvent).where(OutboxEvent.aggregate_id == ticket_id)
        if event_type is not None:
            statement = statement.where(OutboxEvent.event_type == event_type)
        return list(await session.scalars(statement.order_by(OutboxEvent.id)))
