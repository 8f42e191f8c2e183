"""SLA policies and clocks over the API, and moving a ticket's clocks into the past, for
the tests of the clock and its timers."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from app.db.database import Database
from app.models.ticket import Ticket, TicketSLAEvent
from tests.support.api import pages
from tests.support.identity import API, Tenant
from tests.support.tickets import TICKETS

POLICIES = f"{API}/sla-policies"


async def add_policy(client: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> str:
    body = {
        "name": f"Policy {uuid.uuid4().hex[:8]}",
        "first_response_minutes": 60,
        "resolution_minutes": 240,
        **fields,
    }
    response = await client.post(POLICIES, json=body, headers=tenant["admin"].headers)
    assert response.status_code == 201, response.text
    policy_id: str = response.json()["id"]
    return policy_id


async def sla_events(
    client: httpx.AsyncClient, tenant: Tenant, ticket_id: str
) -> list[dict[str, Any]]:
    found = await pages(
        client, f"{TICKETS}/{ticket_id}/sla-events", tenant["agent"].headers, limit=2
    )
    return [event for page in found for event in page]


def kinds(events: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    return [(e["kind"], e["target"]) for e in events]


async def comment(
    client: httpx.AsyncClient, tenant: Tenant, actor: str, ticket_id: str, kind: str = "public"
) -> None:
    response = await client.post(
        f"{TICKETS}/{ticket_id}/comments",
        json={"content": "Hello", "comment_type": kind},
        headers=tenant[actor].headers,
    )
    assert response.status_code == 201, response.text


async def age(database: Database, ticket_ids: Sequence[uuid.UUID | str], minutes: float) -> None:
    """Move the tickets' clocks `minutes` into the past, as if they had been opened that
    much earlier: every instant of their logs and the fields derived from them."""
    shift = timedelta(minutes=minutes)
    ids = [uuid.UUID(str(i)) for i in ticket_ids]
    async with database.system_session() as session:
        tickets = await session.scalars(sa.select(Ticket).where(Ticket.id.in_(ids)))
        for ticket in tickets:
            for name in (
                "created_at",
                "first_response_due_at",
                "next_reply_due_at",
                "resolution_due_at",
                "sla_next_deadline",
            ):
                value = getattr(ticket, name)
                if value is not None:
                    setattr(ticket, name, value - shift)
        logged = await session.scalars(
            sa.select(TicketSLAEvent).where(TicketSLAEvent.ticket_id.in_(ids))
        )
        for event in logged:
            event.at -= shift
        await session.commit()
