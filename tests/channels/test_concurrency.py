"""Storms of one message: a hundred identical deliveries at once, against real
PostgreSQL, make exactly one ticket (or one comment), answer every caller with the same
ids, and never a 5xx."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
import sqlalchemy as sa

from app.db.database import Database
from app.models import InboundMessage, Ticket, TicketComment, User
from tests.channels.helpers import count, envelope, make_channel, signed
from tests.support.identity import Tenant

STORM = 100


async def storm(
    client: httpx.AsyncClient, url: str, secret: str, body: bytes
) -> list[httpx.Response]:
    """`STORM` copies at once; each signed on its own, as a sender's retries would be."""
    headers = [signed(secret, body) for _ in range(STORM)]
    return await asyncio.gather(*(client.post(url, content=body, headers=h) for h in headers))


async def test_a_hundred_identical_new_messages_make_one_ticket(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    users = await count(database, tenant_a, User)
    body = json.dumps(envelope()).encode()
    responses = await storm(client, channel["inbound_url"], channel["secret"], body)
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses if r.is_error]
    answers = [r.json() for r in responses]
    assert Counter(a["status"] for a in answers) == {"created": 1, "duplicate": STORM - 1}
    assert len({a["ticket_id"] for a in answers}) == 1
    assert len({a["inbox_id"] for a in answers}) == 1
    assert await count(database, tenant_a, Ticket) == 1
    assert await count(database, tenant_a, InboundMessage) == 1
    assert await count(database, tenant_a, User) == users + 1


async def test_a_hundred_identical_replies_make_one_comment(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    first = envelope()
    opened = await client.post(
        channel["inbound_url"],
        content=json.dumps(first).encode(),
        headers=signed(channel["secret"], json.dumps(first).encode()),
    )
    assert opened.json()["status"] == "created"
    reply = envelope(**{"from": first["from"], "in_reply_to": first["message_id"]})
    body = json.dumps(reply).encode()
    responses = await storm(client, channel["inbound_url"], channel["secret"], body)
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses if r.is_error]
    answers = [r.json() for r in responses]
    assert Counter(a["status"] for a in answers) == {"threaded": 1, "duplicate": STORM - 1}
    assert {a["comment_id"] for a in answers} != {None}
    assert len({a["comment_id"] for a in answers}) == 1
    assert await count(database, tenant_a, TicketComment) == 1
    assert await count(database, tenant_a, Ticket) == 1


async def test_concurrent_new_senders_are_each_created_once(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    """Different messages of one new sender at once: one customer user, a ticket each."""
    channel = await make_channel(client, tenant_a, new_tickets_per_sender_per_hour=100)
    sender = envelope()["from"]
    bodies = [json.dumps(envelope(**{"from": sender})).encode() for _ in range(20)]
    responses = await asyncio.gather(
        *(
            client.post(channel["inbound_url"], content=b, headers=signed(channel["secret"], b))
            for b in bodies
        )
    )
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses if r.is_error]
    assert {r.json()["status"] for r in responses} == {"created"}
    assert await count(database, tenant_a, Ticket) == 20
    async with database.tenant_session(tenant_a.org.id) as session:
        customers = await session.scalar(
            sa.select(sa.func.count()).select_from(User).where(User.email.contains("jane-"))
        )
    assert customers == 1
