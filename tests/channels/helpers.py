"""Channels over HTTP as their callers see them: an admin creating a channel, a sender
signing deliveries the Standard Webhooks way, and the rows they leave."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import httpx
import sqlalchemy as sa
from standardwebhooks import Webhook

from app.db.database import Database
from app.models.channel import InboundMessage
from app.models.ticket import Ticket, TicketComment
from tests.support.identity import API, Tenant

CHANNELS = f"{API}/channels"


async def make_channel(
    client: httpx.AsyncClient, tenant: Tenant, kind: str = "email", **fields: Any
) -> dict[str, Any]:
    """A channel created by the tenant's admin, with its secret."""
    body = {"type": kind, "name": f"Inbox {uuid.uuid4().hex[:6]}", **fields}
    response = await client.post(CHANNELS, json=body, headers=tenant["admin"].headers)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def signed(
    secret: str,
    body: bytes,
    *,
    msg_id: str | None = None,
    at: datetime | None = None,
    content_type: str = "application/json",
) -> dict[str, str]:
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or datetime.now(UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
        "content-type": content_type,
    }


def envelope(**fields: Any) -> dict[str, Any]:
    """A JSON email envelope from a new customer, with `fields` on top."""
    return {
        "message_id": f"<{uuid.uuid4().hex}@mail.example.org>",
        "from": f"Jane Doe <jane-{uuid.uuid4().hex[:8]}@example.org>",
        "to": "support@example.com",
        "subject": "Printer on fire",
        "text": "Smoke is coming out of tray 2.",
        **fields,
    }


def raw_email(
    *,
    sender: str = "Jane Doe <jane@example.org>",
    subject: str = "Printer on fire",
    text: str | None = "Smoke is coming out of tray 2.",
    html: str | None = None,
    message_id: str | None = "auto",
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@example.com"
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2025, 3, 4, 9, 0, tzinfo=UTC))
    if message_id == "auto":
        message["Message-ID"] = make_msgid(domain="mail.example.org")
    elif message_id is not None:
        message["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        message[name] = value
    if text is not None:
        message.set_content(text)
    if html is not None:
        if text is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    for file_name, mime, data in attachments or []:
        maintype, subtype = mime.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=file_name)
    return message.as_bytes()


async def deliver(
    client: httpx.AsyncClient,
    channel: dict[str, Any],
    payload: dict[str, Any] | bytes,
    *,
    secret: str | None = None,
    content_type: str | None = None,
    **signing: Any,
) -> httpx.Response:
    """POST a message to the channel's inbound URL, signed with its secret."""
    if isinstance(payload, dict):
        body = json.dumps(payload).encode()
        content_type = content_type or "application/json"
    else:
        body = payload
        content_type = content_type or "message/rfc822"
    headers = signed(secret or channel["secret"], body, content_type=content_type, **signing)
    return await client.post(channel["inbound_url"], content=body, headers=headers)


async def inbox_rows(database: Database, tenant: Tenant, channel_id: str) -> list[InboundMessage]:
    async with database.tenant_session(tenant.org.id) as session:
        rows = await session.scalars(
            sa.select(InboundMessage)
            .where(InboundMessage.channel_id == uuid.UUID(channel_id))
            .order_by(InboundMessage.id)
        )
        return list(rows)


async def ticket_row(database: Database, tenant: Tenant, ticket_id: str) -> Ticket:
    async with database.tenant_session(tenant.org.id) as session:
        ticket = await session.get(Ticket, uuid.UUID(ticket_id))
        assert ticket is not None
        return ticket


async def comments_of(database: Database, tenant: Tenant, ticket_id: str) -> list[TicketComment]:
    async with database.tenant_session(tenant.org.id) as session:
        rows = await session.scalars(
            sa.select(TicketComment)
            .where(TicketComment.ticket_id == uuid.UUID(ticket_id))
            .order_by(TicketComment.id)
        )
        return list(rows)


async def count(database: Database, tenant: Tenant, model: type[Any]) -> int:
    async with database.tenant_session(tenant.org.id) as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)
