"""POST /inbound/{email,chat}/{channel_id}: the signature checked before anything else,
the payload stored before it is processed, and every way a message is placed — a new
ticket, a comment by each threading rule (and the refusals), a duplicate, noise, the
sender's hourly limit, follow-ups of closed tickets, reopened resolved ones, failures
and their retry — checked over HTTP and in PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from app.channels import service as channel_service
from app.config import Settings
from app.db.database import Database
from app.kit.storage import Storage, storage_from_settings
from app.main import create_app
from app.models import Channel, InboundMessage, Ticket, TicketAttachment, TicketComment, User
from app.models.channel import InboundStatus
from app.models.user import Role
from tests.channels.helpers import (
    CHANNELS,
    comments_of,
    count,
    deliver,
    envelope,
    inbox_rows,
    make_channel,
    raw_email,
    signed,
    ticket_row,
)
from tests.support.api import problem
from tests.support.identity import API, Tenant, add_user

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n" + b"0" * 200
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def user_by_email(database: Database, tenant: Tenant, email: str) -> User | None:
    async with database.tenant_session(tenant.org.id) as session:
        found: User | None = await session.scalar(
            sa.select(User).where(sa.func.lower(User.email) == email.lower())
        )
        return found


async def set_status(
    client: httpx.AsyncClient, tenant: Tenant, ticket_id: str, status: str
) -> None:
    response = await client.patch(
        f"{API}/tickets/{ticket_id}", json={"status": status}, headers=tenant["admin"].headers
    )
    assert response.status_code == 200, response.text


def message_id() -> str:
    return f"<{uuid.uuid4().hex}@mail.example.org>"


# --- the signature, before anything ---------------------------------------------------------


async def test_an_unsigned_or_badly_signed_delivery_is_401_and_stores_nothing(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    theirs = await make_channel(client, tenant_b)
    body = b'{"message_id": "<a@b>", "from": "jane@example.org", "text": "hi"}'
    now = datetime.now(UTC)
    attempts = {
        "missing": {"content-type": "application/json"},
        "wrong secret": signed("whsec_" + base64.b64encode(b"x" * 32).decode(), body),
        "another organization's secret": signed(theirs["secret"], body),
        "stale": signed(channel["secret"], body, at=now - timedelta(minutes=6)),
        "from the future": signed(channel["secret"], body, at=now + timedelta(minutes=6)),
        "tampered body": signed(channel["secret"], body.replace(b"hi", b"ho")),
        "garbage signature": {
            **signed(channel["secret"], body),
            "webhook-signature": "v1,not-base64!!",
        },
    }
    for name, headers in attempts.items():
        response = await client.post(channel["inbound_url"], content=body, headers=headers)
        body_of = problem(response, 401)
        assert body_of["type"].endswith("/invalid-signature"), name
        assert "bearer" not in response.headers["www-authenticate"].lower(), name
    assert await inbox_rows(database, tenant_a, channel["id"]) == []
    assert await inbox_rows(database, tenant_b, theirs["id"]) == []
    assert await count(database, tenant_a, Ticket) == 0
    assert await count(database, tenant_b, Ticket) == 0


async def test_unknown_deleted_or_wrong_type_channels_are_404(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    email = await make_channel(client, tenant_a)
    chat = await make_channel(client, tenant_a, "chat")
    payload = envelope()
    missing = await client.post(
        f"{API}/inbound/email/{uuid.uuid4()}",
        content=b"{}",
        headers=signed(email["secret"], b"{}"),
    )
    problem(missing, 404)
    # An email channel's id is not a chat channel, and the other way around.
    wrong_type = {**chat, "inbound_url": chat["inbound_url"].replace("/chat/", "/email/")}
    problem(await deliver(client, wrong_type, payload), 404)
    # Received once (the process remembers its organization), then deleted: still 404.
    accepted = await deliver(client, email, envelope())
    assert accepted.status_code < 300, accepted.text
    deleted = await client.delete(f"{CHANNELS}/{email['id']}", headers=tenant_a["admin"].headers)
    assert deleted.status_code == 204
    problem(await deliver(client, email, payload), 404)
    assert len(await inbox_rows(database, tenant_a, email["id"])) == 1


async def test_a_disabled_channel_refuses_deliveries_and_stores_nothing(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a, is_active=False)
    problem(await deliver(client, channel, envelope()), 403)
    assert await inbox_rows(database, tenant_a, channel["id"]) == []


# --- new tickets -----------------------------------------------------------------------------


async def test_a_new_sender_opens_a_ticket_as_a_new_customer_user(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(
        client, tenant_a, default_department_id=str(tenant_a.department_id), default_priority="high"
    )
    payload = envelope(**{"from": "Jane Q. Doe <Jane.Doe@Example.org>"})
    response = await deliver(client, channel, payload)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "created"
    assert answer["comment_id"] is None
    ticket = await ticket_row(database, tenant_a, answer["ticket_id"])
    assert ticket.channel.value == "email"
    assert ticket.priority.value == "high"
    assert ticket.department_id == tenant_a.department_id
    assert ticket.subject == "Printer on fire"
    assert ticket.description == "Smoke is coming out of tray 2."
    customer = await user_by_email(database, tenant_a, "jane.doe@example.org")
    assert customer is not None
    assert customer.role is Role.CUSTOMER
    assert customer.password_hash is None
    assert (customer.first_name, customer.last_name) == ("Jane", "Q. Doe")
    assert ticket.customer_id == customer.id
    [row] = await inbox_rows(database, tenant_a, channel["id"])
    assert row.status is InboundStatus.CREATED
    assert row.thread_reason is not None and row.thread_reason.value == "new"
    assert row.sender_email == "jane.doe@example.org"
    assert row.raw_body == response.request.content
    assert row.attempts == 1 and row.processed_at is not None


async def test_a_known_customer_gets_the_ticket_and_no_second_user(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    customer_email = tenant_a["customer"].email
    assert customer_email is not None
    users_before = await count(database, tenant_a, User)
    answer = (await deliver(client, channel, envelope(**{"from": customer_email}))).json()
    assert answer["status"] == "created"
    ticket = await ticket_row(database, tenant_a, answer["ticket_id"])
    assert ticket.customer_id == tenant_a["customer"].user_id
    assert await count(database, tenant_a, User) == users_before


async def test_a_chat_event_opens_a_chat_ticket_and_its_conversation_threads(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a, "chat")
    author = {"email": f"visitor-{uuid.uuid4().hex[:6]}@example.org", "name": "Vic Visitor"}
    conversation = f"conv-{uuid.uuid4().hex}"

    def event(text: str) -> dict[str, Any]:
        return {
            "event_id": f"evt_{uuid.uuid4().hex}",
            "conversation_id": conversation,
            "author": author,
            "text": text,
            "sent_at": "2025-03-04T09:00:00Z",
        }

    first = (await deliver(client, channel, event("My order never arrived\nOrder 77"))).json()
    assert first["status"] == "created"
    ticket = await ticket_row(database, tenant_a, first["ticket_id"])
    assert ticket.channel.value == "chat"
    assert ticket.subject == "My order never arrived"
    second = (await deliver(client, channel, event("Any news?"))).json()
    assert second["status"] == "threaded"
    assert second["ticket_id"] == first["ticket_id"]
    [comment] = await comments_of(database, tenant_a, first["ticket_id"])
    assert comment.content == "Any news?"
    rows = await inbox_rows(database, tenant_a, channel["id"])
    assert [r.thread_reason.value for r in rows if r.thread_reason] == ["new", "conversation"]


async def test_a_channel_may_refuse_unknown_senders(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a, accept_unknown_senders=False)
    stranger = await deliver(client, channel, envelope())
    assert stranger.json() | {"inbox_id": None} == {
        "status": "ignored",
        "ticket_id": None,
        "comment_id": None,
        "inbox_id": None,
        "reason": "unknown_sender",
    }
    customer_email = tenant_a["customer"].email
    known = await deliver(client, channel, envelope(**{"from": customer_email}))
    assert known.json()["status"] == "created"
    assert await count(database, tenant_a, Ticket) == 1


async def test_new_tickets_per_sender_are_limited_per_hour_but_replies_are_not(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a, new_tickets_per_sender_per_hour=2)
    sender = f"busy-{uuid.uuid4().hex[:6]}@example.org"
    answers = [
        (await deliver(client, channel, envelope(**{"from": sender}))).json() for _ in range(3)
    ]
    assert [a["status"] for a in answers] == ["created", "created", "ignored"]
    assert answers[2]["reason"] == "rate_limited"
    # Another sender is not held up.
    other = await deliver(client, channel, envelope())
    assert other.json()["status"] == "created"
    first = await inbox_rows(database, tenant_a, channel["id"])
    reply = envelope(**{"from": sender, "in_reply_to": f"<{first[0].message_id}>"})
    assert (await deliver(client, channel, reply)).json()["status"] == "threaded"
    assert await count(database, tenant_a, Ticket) == 3


async def test_the_per_sender_limit_holds_under_concurrent_deliveries(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a, new_tickets_per_sender_per_hour=3)
    sender = f"burst-{uuid.uuid4().hex[:6]}@example.org"
    answers = await asyncio.gather(
        *(deliver(client, channel, envelope(**{"from": sender})) for _ in range(12))
    )
    statuses = Counter(answer.json()["status"] for answer in answers)
    assert statuses == {"created": 3, "ignored": 9}
    assert await count(database, tenant_a, Ticket) == 3


async def test_a_staff_member_writing_a_new_message_opens_nothing(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    answer = (await deliver(client, channel, envelope(**{"from": tenant_a["agent"].email}))).json()
    assert (answer["status"], answer["reason"]) == ("ignored", "sender_is_staff")


# --- threading -----------------------------------------------------------------------------


async def opened(
    client: httpx.AsyncClient, channel: dict[str, Any], sender: str, **fields: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ticket opened by mail: (the envelope sent, the answer)."""
    first = envelope(**{"from": sender, **fields})
    answer = (await deliver(client, channel, first)).json()
    assert answer["status"] == "created", answer
    return first, answer


async def test_in_reply_to_threads_a_reply_as_a_comment_by_its_customer(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    sender = f"jane-{uuid.uuid4().hex[:6]}@example.org"
    first, created = await opened(client, channel, sender)
    reply = envelope(
        **{"from": sender, "in_reply_to": first["message_id"], "subject": "Re: Printer on fire"},
        text="It is out now.",
    )
    answer = (await deliver(client, channel, reply)).json()
    assert answer["status"] == "threaded"
    assert answer["ticket_id"] == created["ticket_id"]
    [comment] = await comments_of(database, tenant_a, created["ticket_id"])
    assert str(comment.id) == answer["comment_id"]
    assert comment.content == "It is out now."
    assert comment.comment_type.value == "public"
    customer = await user_by_email(database, tenant_a, sender)
    assert customer is not None and comment.author_id == customer.id
    rows = await inbox_rows(database, tenant_a, channel["id"])
    assert rows[1].thread_reason is not None and rows[1].thread_reason.value == "in_reply_to"
    assert rows[1].in_reply_to == first["message_id"].strip("<>")


async def test_references_thread_when_in_reply_to_names_nothing_known(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    sender = f"jane-{uuid.uuid4().hex[:6]}@example.org"
    first, created = await opened(client, channel, sender)
    reply = envelope(
        **{
            "from": sender,
            "in_reply_to": message_id(),
            "references": [message_id(), first["message_id"], message_id()],
        }
    )
    answer = (await deliver(client, channel, reply)).json()
    assert (answer["status"], answer["ticket_id"]) == ("threaded", created["ticket_id"])
    rows = await inbox_rows(database, tenant_a, channel["id"])
    assert rows[1].thread_reason is not None and rows[1].thread_reason.value == "references"


async def test_a_raw_reply_threads_by_its_headers_and_trims_the_quote(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    first_id = message_id()
    created = (
        await deliver(client, channel, raw_email(sender="jane@example.org", message_id=first_id))
    ).json()
    quoted = (
        "Thanks, that fixed it!\n\nBest regards,\nJane\n\n"
        "On Tue, Mar 4, 2025 at 9:02 AM Support <support@example.com> wrote:\n"
        "> Please restart the printer.\n> -- Support\n"
    )
    reply = raw_email(
        sender="Jane <jane@example.org>",
        subject="Re: Printer on fire",
        text=quoted,
        headers={"In-Reply-To": first_id, "References": first_id},
    )
    answer = (await deliver(client, channel, reply)).json()
    assert (answer["status"], answer["ticket_id"]) == ("threaded", created["ticket_id"])
    [comment] = await comments_of(database, tenant_a, created["ticket_id"])
    assert comment.content == "Thanks, that fixed it!"
    row = (await inbox_rows(database, tenant_a, channel["id"]))[1]
    assert b"Please restart the printer." in row.raw_body  # the original is kept whole


async def test_a_new_ticket_keeps_the_whole_body_and_a_reply_only_its_newest_part(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    """Quoted mail and the signature are trimmed from a reply's comment only: a message
    that opens a ticket (a forward, say) keeps all of its text as the description."""
    channel = await make_channel(client, tenant_a)
    body = (
        "Forwarding what the vendor said.\n\n"
        "On Tue, Mar 4, 2025 at 9:02 AM Vendor <vendor@example.com> wrote:\n"
        "> Replace the fuser.\n"
    )
    first_id = message_id()
    created = (
        await deliver(
            client,
            channel,
            raw_email(sender="jane@example.org", message_id=first_id, text=body),
        )
    ).json()
    ticket = await ticket_row(database, tenant_a, created["ticket_id"])
    assert "> Replace the fuser." in ticket.description
    reply = raw_email(
        sender="jane@example.org",
        subject="Re: Printer on fire",
        text=body,
        headers={"In-Reply-To": first_id},
    )
    assert (await deliver(client, channel, reply)).json()["status"] == "threaded"
    [comment] = await comments_of(database, tenant_a, created["ticket_id"])
    assert comment.content == "Forwarding what the vendor said."


async def test_the_subject_number_threads_for_the_customer_and_staff_only(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    sender = f"jane-{uuid.uuid4().hex[:6]}@example.org"
    _, created = await opened(client, channel, sender)
    number = (await ticket_row(database, tenant_a, created["ticket_id"])).ticket_number
    subject = f"Re: [{number}] Printer on fire"
    # A stranger who guesses the number opens a ticket of their own.
    stranger = (
        await deliver(
            client, channel, envelope(**{"from": "mallory@example.net", "subject": subject})
        )
    ).json()
    assert stranger["status"] == "created"
    assert stranger["ticket_id"] != created["ticket_id"]
    assert await comments_of(database, tenant_a, created["ticket_id"]) == []
    # The customer threads by it.
    customer = (
        await deliver(
            client, channel, envelope(**{"from": sender.upper(), "subject": subject}, text="Me")
        )
    ).json()
    assert (customer["status"], customer["ticket_id"]) == ("threaded", created["ticket_id"])
    # So does staff, and a staff reply by mail is a staff reply: it is the first response.
    staff = (
        await deliver(
            client,
            channel,
            envelope(**{"from": tenant_a["agent"].email, "subject": subject}, text="On it."),
        )
    ).json()
    assert (staff["status"], staff["ticket_id"]) == ("threaded", created["ticket_id"])
    comments = await comments_of(database, tenant_a, created["ticket_id"])
    assert [c.content for c in comments] == ["Me", "On it."]
    assert comments[1].author_id == tenant_a["agent"].user_id
    ticket = await ticket_row(database, tenant_a, created["ticket_id"])
    assert ticket.first_response_at is not None
    reasons = [r.thread_reason.value for r in await inbox_rows(database, tenant_a, channel["id"])]
    assert reasons == ["new", "new", "subject_number", "subject_number"]


async def test_a_reply_naming_another_customers_message_does_not_thread(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    first, created = await opened(client, channel, f"jane-{uuid.uuid4().hex[:6]}@example.org")
    reply = envelope(**{"from": "mallory@example.net", "in_reply_to": first["message_id"]})
    answer = (await deliver(client, channel, reply)).json()
    assert answer["status"] == "created"
    assert answer["ticket_id"] != created["ticket_id"]
    assert await comments_of(database, tenant_a, created["ticket_id"]) == []


async def test_a_reply_to_a_closed_ticket_opens_a_follow_up(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    sender = f"jane-{uuid.uuid4().hex[:6]}@example.org"
    first, created = await opened(client, channel, sender)
    await set_status(client, tenant_a, created["ticket_id"], "resolved")
    await set_status(client, tenant_a, created["ticket_id"], "closed")
    reply = envelope(**{"from": sender, "in_reply_to": first["message_id"]}, text="Again!")
    answer = (await deliver(client, channel, reply)).json()
    assert answer["status"] == "created"
    assert answer["ticket_id"] != created["ticket_id"]
    old = await ticket_row(database, tenant_a, created["ticket_id"])
    follow_up = await ticket_row(database, tenant_a, answer["ticket_id"])
    assert follow_up.description == f"Follow-up to {old.ticket_number}.\n\nAgain!"
    assert follow_up.customer_id == old.customer_id
    assert old.status.value == "closed"
    row = (await inbox_rows(database, tenant_a, channel["id"]))[1]
    assert row.follow_up_of_ticket_id == old.id
    assert row.thread_reason is not None and row.thread_reason.value == "in_reply_to"


async def test_a_customer_reply_reopens_a_resolved_ticket_through_the_service(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    sender = f"jane-{uuid.uuid4().hex[:6]}@example.org"
    first, created = await opened(client, channel, sender)
    await set_status(client, tenant_a, created["ticket_id"], "resolved")
    reply = envelope(**{"from": sender, "in_reply_to": first["message_id"]}, text="Not fixed")
    answer = (await deliver(client, channel, reply)).json()
    assert (answer["status"], answer["ticket_id"]) == ("threaded", created["ticket_id"])
    ticket = await ticket_row(database, tenant_a, created["ticket_id"])
    assert ticket.status.value == "open"
    assert ticket.resolved_at is None
    history = await client.get(
        f"{API}/tickets/{created['ticket_id']}/history", headers=tenant_a["admin"].headers
    )
    moves = [
        (h["old_value"], h["new_value"]) for h in history.json()["items"] if h["field"] == "status"
    ]
    assert moves[-1] == ("resolved", "open")
    events = await client.get(
        f"{API}/tickets/{created['ticket_id']}/sla-events", headers=tenant_a["admin"].headers
    )
    assert events.status_code == 200
    assert "resume" in [e["kind"] for e in events.json()["items"]]


# --- duplicates ----------------------------------------------------------------------------


async def test_a_redelivery_is_a_duplicate_with_the_same_ids_and_writes_nothing(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    sender = f"jane-{uuid.uuid4().hex[:6]}@example.org"
    first, created = await opened(client, channel, sender)
    again = await deliver(client, channel, first)
    assert again.status_code == 200
    assert again.json() | {"reason": None} == {**created, "status": "duplicate"}
    reply = envelope(**{"from": sender, "in_reply_to": first["message_id"]})
    threaded = (await deliver(client, channel, reply)).json()
    before = (
        await count(database, tenant_a, Ticket),
        await count(database, tenant_a, TicketComment),
    )
    redelivered = (await deliver(client, channel, reply)).json()
    assert redelivered == {**threaded, "status": "duplicate"}
    after = (
        await count(database, tenant_a, Ticket),
        await count(database, tenant_a, TicketComment),
    )
    assert before == after == (1, 1)
    assert len(await inbox_rows(database, tenant_a, channel["id"])) == 2


async def test_a_message_without_message_id_is_identified_by_sender_date_and_body(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    raw = raw_email(message_id=None)
    first = (await deliver(client, channel, raw)).json()
    assert first["status"] == "created"
    # The provider re-sends it with a transport header of its own: the same message.
    again = (await deliver(client, channel, b"X-Received: by relay-2\r\n" + raw)).json()
    assert again["status"] == "duplicate"
    assert again["ticket_id"] == first["ticket_id"]
    [row] = await inbox_rows(database, tenant_a, channel["id"])
    assert row.external_id.startswith("sha256-") and row.message_id == row.external_id
    # It goes by that id everywhere: the same mail through another channel is known.
    other = await make_channel(client, tenant_a)
    elsewhere = (await deliver(client, other, raw)).json()
    assert elsewhere["status"] == "duplicate"
    assert elsewhere["ticket_id"] == first["ticket_id"]
    assert await count(database, tenant_a, Ticket) == 1


async def test_the_same_message_through_two_channels_is_placed_once(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    support = await make_channel(client, tenant_a)
    billing = await make_channel(client, tenant_a)
    message = envelope()
    first = (await deliver(client, support, message)).json()
    second = (await deliver(client, billing, message)).json()
    assert second["status"] == "duplicate"
    assert second["ticket_id"] == first["ticket_id"]
    assert await count(database, tenant_a, Ticket) == 1
    [row] = await inbox_rows(database, tenant_a, billing["id"])
    assert row.status is InboundStatus.DUPLICATE


# --- noise ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Auto-Submitted": "auto-replied"}, "auto_submitted"),
        ({"Auto-Submitted": "auto-generated; type=vacation"}, "auto_submitted"),
        ({"X-Autoreply": "yes"}, "auto_reply"),
        ({"Precedence": "bulk"}, "bulk_mail"),
        ({"Precedence": "junk"}, "bulk_mail"),
        ({"Precedence": "list"}, "bulk_mail"),
        ({"Precedence": "auto_reply"}, "bulk_mail"),
    ],
)
async def test_auto_replies_and_bulk_mail_are_ignored(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    headers: dict[str, str],
    reason: str,
) -> None:
    channel = await make_channel(client, tenant_a)
    users = await count(database, tenant_a, User)
    raw = await deliver(client, channel, raw_email(headers=headers))
    as_json = await deliver(client, channel, envelope(headers=headers))
    for response in (raw, as_json):
        assert response.status_code == 200
        assert (response.json()["status"], response.json()["reason"]) == ("ignored", reason)
    assert await count(database, tenant_a, Ticket) == 0
    assert await count(database, tenant_a, User) == users  # no customer made for a robot


async def test_auto_submitted_no_is_a_person_writing(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    response = await deliver(client, channel, raw_email(headers={"Auto-Submitted": "no"}))
    assert response.json()["status"] == "created"


async def test_bounces_are_ignored(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    daemon = raw_email(sender="Mail Delivery Subsystem <MAILER-DAEMON@mx.example.org>")
    postmaster = envelope(**{"from": "postmaster@example.org"})
    report = (
        "From: notifications@mx.example.org\r\n"
        f"Message-ID: {message_id()}\r\n"
        "Subject: Delivery Status Notification (Failure)\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--b1\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.org\r\n\r\n--b1--\r\n"
    ).encode()
    for payload in (daemon, postmaster, report):
        answer = (await deliver(client, channel, payload)).json()
        assert (answer["status"], answer["reason"]) == ("ignored", "bounce")
    assert await count(database, tenant_a, Ticket) == 0


# --- content -------------------------------------------------------------------------------


async def test_html_only_mail_is_sanitized_and_reduced_to_text(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    markup = (
        "<html><head><style>p {color: red}</style></head><body>"
        "<p>Hello &amp; welcome</p><script>alert('x')</script>"
        "<div>Line one<br>Line two</div><img src=x onerror=alert(1)></body></html>"
    )
    for payload in (raw_email(text=None, html=markup), envelope(text=None, html=markup)):
        answer = (await deliver(client, channel, payload)).json()
        ticket = await ticket_row(database, tenant_a, answer["ticket_id"])
        assert ticket.description == "Hello & welcome\nLine one\nLine two"


async def test_the_text_part_wins_over_html(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    raw = raw_email(text="Plain words.", html="<p>Rich <b>words</b>.</p>")
    answer = (await deliver(client, channel, raw)).json()
    assert (await ticket_row(database, tenant_a, answer["ticket_id"])).description == "Plain words."


@pytest.mark.parametrize(
    ("charset", "text"),
    [("iso-8859-1", "Grüße aus Köln, ça va?"), ("shift_jis", "プリンターが壊れました")],
)
async def test_declared_charsets_are_decoded(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, charset: str, text: str
) -> None:
    channel = await make_channel(client, tenant_a)
    raw = (
        f"From: jane@example.org\r\nMessage-ID: {message_id()}\r\nSubject: Hi\r\n"
        f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + text.encode(charset)
    answer = (await deliver(client, channel, raw)).json()
    assert answer["status"] == "created"
    assert (await ticket_row(database, tenant_a, answer["ticket_id"])).description == text


async def test_an_unknown_charset_is_read_with_replacements_and_noted(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    raw = (
        f"From: jane@example.org\r\nMessage-ID: {message_id()}\r\nSubject: Hi\r\n"
        "Content-Type: text/plain; charset=x-klingon\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + b"caf\xe9 ok"
    response = await deliver(client, channel, raw)
    assert response.status_code == 200
    answer = response.json()
    assert answer["status"] == "created"
    assert "x-klingon" in answer["reason"]
    ticket = await ticket_row(database, tenant_a, answer["ticket_id"])
    assert ticket.description == "caf\ufffd ok"


async def test_attachments_are_stored_like_uploads(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    sender = f"jane-{uuid.uuid4().hex[:6]}@example.org"
    # The client's type is not believed: the bytes decide (as for uploads).
    raw = raw_email(
        sender=sender,
        attachments=[
            ("invoice.pdf", "application/octet-stream", PDF),
            ("photo.png", "image/png", PNG),
        ],
    )
    created = (await deliver(client, channel, raw)).json()
    listed = await client.get(
        f"{API}/tickets/{created['ticket_id']}/attachments", headers=tenant_a["admin"].headers
    )
    files = {a["file_name"]: a for a in listed.json()["items"]}
    assert files.keys() == {"invoice.pdf", "photo.png"}
    assert files["invoice.pdf"]["content_type"] == "application/pdf"
    assert files["photo.png"]["content_type"] == "image/png"
    assert all(a["is_public"] and a["comment_id"] is None for a in files.values())
    download = await client.get(
        f"{API}/attachments/{files['invoice.pdf']['id']}/download",
        headers=tenant_a["admin"].headers,
    )
    assert download.content == PDF
    # On a reply the files belong to its comment; a file that is not base64 is noted.
    first = (await inbox_rows(database, tenant_a, channel["id"]))[0]
    reply = envelope(
        **{"from": sender, "in_reply_to": f"<{first.message_id}>"},
        attachments=[
            {"filename": "log.txt", "content_type": "text/plain", "content_base64": "aGVsbG8="},
            {"filename": "bad.bin", "content_type": "x/y", "content_base64": "***"},
        ],
    )
    threaded = (await deliver(client, channel, reply)).json()
    assert threaded["status"] == "threaded"
    assert "bad.bin" in threaded["reason"]
    async with database.tenant_session(tenant_a.org.id) as session:
        attached = (
            await session.scalars(
                sa.select(TicketAttachment).where(
                    TicketAttachment.comment_id == uuid.UUID(threaded["comment_id"])
                )
            )
        ).all()
        comment = await session.get(TicketComment, uuid.UUID(threaded["comment_id"]))
    assert [(a.file_name, a.content_type, a.file_size) for a in attached] == [
        ("log.txt", "text/plain", 5)
    ]
    assert comment is not None and comment.has_attachments


async def test_an_oversized_attachment_is_left_out_and_noted(
    client: httpx.AsyncClient, settings: Settings, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    big = b"A" * 2048
    raw = raw_email(
        attachments=[("huge.txt", "text/plain", big), ("ok.pdf", "application/pdf", PDF)]
    )
    async with limited(settings, max_attachment_bytes=1024) as small_app:
        answer = (await deliver(small_app, channel, raw)).json()
    assert answer["status"] == "created"
    assert "huge.txt" in answer["reason"]
    async with database.tenant_session(tenant_a.org.id) as session:
        names = (await session.scalars(sa.select(TicketAttachment.file_name))).all()
    assert names == ["ok.pdf"]


class GatedStorage:
    """The configured storage, whose saves wait for `release` once they have begun: a
    file's bytes held in flight for as long as a test needs."""

    def __init__(self, settings: Settings) -> None:
        self.inner = storage_from_settings(settings)
        self.saving = asyncio.Event()
        self.release = asyncio.Event()

    async def save(self, key: str, chunks: AsyncIterator[bytes]) -> None:
        self.saving.set()
        await self.release.wait()
        await self.inner.save(key, chunks)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)


async def stored_keys(storage: Storage) -> set[str]:
    return {key async for group in storage.key_groups() for key, _at in group}


@asynccontextmanager
async def file_in_flight(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, delivery: Any
) -> AsyncIterator[asyncio.Task[httpx.Response]]:
    """`delivery` under way, its first attachment's bytes held until the block ends."""
    gated = GatedStorage(settings)
    monkeypatch.setattr(channel_service, "storage_from_settings", lambda _settings: gated)
    task = asyncio.ensure_future(delivery)
    try:
        await asyncio.wait_for(gated.saving.wait(), 10)
        yield task
    finally:
        gated.release.set()
        await task


async def test_no_lock_is_held_while_an_attachment_is_stored(
    client: httpx.AsyncClient,
    settings: Settings,
    database: Database,
    tenant_a: Tenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The files go to storage before the ticket's statement (which locks the
    organization's number counter) and before a reply locks its ticket: a slow store
    holds up neither another ticket's creation nor the ticket's other writers."""
    channel = await make_channel(client, tenant_a)
    sender = f"jane-{uuid.uuid4().hex[:6]}@example.org"
    raw = raw_email(sender=sender, attachments=[("scan.pdf", "application/pdf", PDF)])
    agent = tenant_a["agent"].headers
    customer = tenant_a["customer"].user_id
    async with file_in_flight(monkeypatch, settings, deliver(client, channel, raw)) as new:
        other = await asyncio.wait_for(
            client.post(
                f"{API}/tickets",
                json={"subject": "Meanwhile", "customer_id": str(customer)},
                headers=agent,
            ),
            5,
        )
        assert other.status_code == 201, other.text
    created = new.result().json()
    assert created["status"] == "created"
    first = (await inbox_rows(database, tenant_a, channel["id"]))[0]
    reply = raw_email(
        sender=sender,
        headers={"In-Reply-To": f"<{first.message_id}>"},
        attachments=[("log.txt", "text/plain", b"hello")],
    )
    ticket_url = f"{API}/tickets/{created['ticket_id']}"
    async with file_in_flight(monkeypatch, settings, deliver(client, channel, reply)) as answer:
        note = await asyncio.wait_for(
            client.post(
                f"{ticket_url}/comments",
                json={"content": "On it", "comment_type": "internal"},
                headers=agent,
            ),
            5,
        )
        assert note.status_code == 201, note.text
    threaded = answer.result().json()
    assert threaded["status"] == "threaded"
    listed = await client.get(f"{ticket_url}/attachments", headers=agent)
    assert sorted(a["file_name"] for a in listed.json()["items"]) == ["log.txt", "scan.pdf"]


async def test_a_placement_that_fails_after_storing_removes_its_files(
    client: httpx.AsyncClient,
    settings: Settings,
    database: Database,
    tenant_a: Tenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reply whose ticket is deleted while its file is being stored fails (an admin
    can retry it) and leaves no object behind."""
    channel = await make_channel(client, tenant_a)
    sender = f"jane-{uuid.uuid4().hex[:6]}@example.org"
    created = (await deliver(client, channel, raw_email(sender=sender))).json()
    first = (await inbox_rows(database, tenant_a, channel["id"]))[0]
    reply = raw_email(
        sender=sender,
        headers={"In-Reply-To": f"<{first.message_id}>"},
        attachments=[("log.txt", "text/plain", b"hello")],
    )
    storage = storage_from_settings(settings)
    before = await stored_keys(storage)
    async with file_in_flight(monkeypatch, settings, deliver(client, channel, reply)) as answer:
        deleted = await asyncio.wait_for(
            client.delete(
                f"{API}/tickets/{created['ticket_id']}", headers=tenant_a["admin"].headers
            ),
            5,
        )
        assert deleted.status_code == 204, deleted.text
    response = answer.result()
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "failed"
    after = await stored_keys(storage)
    assert after == before
    async with database.tenant_session(tenant_a.org.id) as session:
        assert (await session.scalars(sa.select(TicketAttachment.id))).all() == []


class FailingSecondSave:
    """The configured storage, whose second save fails (a full disk, say)."""

    def __init__(self, settings: Settings) -> None:
        self.inner = storage_from_settings(settings)
        self.saves = 0

    async def save(self, key: str, chunks: AsyncIterator[bytes]) -> None:
        self.saves += 1
        if self.saves == 2:
            raise OSError("No space left on device")
        await self.inner.save(key, chunks)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)


async def test_a_file_that_cannot_be_stored_removes_the_ones_stored_before_it(
    client: httpx.AsyncClient,
    settings: Settings,
    database: Database,
    tenant_a: Tenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel = await make_channel(client, tenant_a)
    raw = raw_email(attachments=[("a.pdf", "application/pdf", PDF), ("b.png", "image/png", PNG)])
    storage = storage_from_settings(settings)
    before = await stored_keys(storage)
    failing = FailingSecondSave(settings)
    monkeypatch.setattr(channel_service, "storage_from_settings", lambda _settings: failing)
    response = await deliver(client, channel, raw)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "failed"
    assert failing.saves == 2
    after = await stored_keys(storage)
    assert after == before
    assert await count(database, tenant_a, Ticket) == 0
    assert await count(database, tenant_a, TicketAttachment) == 0


# --- size and malformed input ---------------------------------------------------------------


async def test_a_message_over_the_general_body_limit_is_accepted(
    client: httpx.AsyncClient, settings: Settings, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    data = PDF + b"0" * (settings.max_request_body_bytes + 1024)
    raw = raw_email(attachments=[("scan.pdf", "application/pdf", data)])
    assert len(raw) > settings.max_request_body_bytes
    response = await deliver(client, channel, raw)
    assert response.status_code == 200, response.text
    async with database.tenant_session(tenant_a.org.id) as session:
        sizes = (await session.scalars(sa.select(TicketAttachment.file_size))).all()
    assert sizes == [len(data)]


@asynccontextmanager
async def limited(settings: Settings, **limits: int) -> AsyncIterator[httpx.AsyncClient]:
    """The app with other size limits, over its own client."""
    application: FastAPI = create_app(settings.model_copy(update=limits))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as small:
            yield small


async def test_a_message_over_the_inbound_limit_is_413_and_not_stored(
    client: httpx.AsyncClient, settings: Settings, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    async with limited(settings, max_inbound_message_bytes=4096) as small_app:
        await _over_the_limit(small_app, channel)
    assert await inbox_rows(database, tenant_a, channel["id"]) == []


async def _over_the_limit(small_app: httpx.AsyncClient, channel: dict[str, Any]) -> None:
    raw = raw_email(text="x" * 5000)
    problem(await deliver(small_app, channel, raw), 413)

    async def streamed() -> Any:  # no Content-Length: the limit holds while it streams
        for _ in range(10):
            yield b"x" * 1000

    headers = signed(channel["secret"], b"x" * 10_000, content_type="message/rfc822")
    response = await small_app.post(channel["inbound_url"], content=streamed(), headers=headers)
    problem(response, 413)


@pytest.mark.parametrize(
    ("kind", "body", "content_type"),
    [
        ("email", b'{"message_id": ', "application/json"),
        ("email", b"[1, 2]", "application/json"),
        ("email", b'{"subject": "no id, no sender"}', "application/json"),
        ("email", b"\xff\xfe\x00garbage", "application/json"),
        ("email", b"   ", "message/rfc822"),
        ("chat", b'{"conversation_id": "c", "text": "no event id"}', "application/json"),
    ],
    ids=["truncated", "array", "unidentifiable", "binary", "empty", "chat-without-event-id"],
)
async def test_a_payload_nothing_identifies_is_a_422_and_not_stored(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    kind: str,
    body: bytes,
    content_type: str,
) -> None:
    channel = await make_channel(client, tenant_a, kind)
    response = await deliver(client, channel, body, content_type=content_type)
    problem(response, 422)
    assert await inbox_rows(database, tenant_a, channel["id"]) == []


async def test_an_unsupported_content_type_is_415(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    email = await make_channel(client, tenant_a)
    chat = await make_channel(client, tenant_a, "chat")
    problem(await deliver(client, email, b"hello", content_type="text/plain"), 415)
    problem(await deliver(client, chat, raw_email(), content_type="message/rfc822"), 415)
    assert await inbox_rows(database, tenant_a, email["id"]) == []


@pytest.mark.parametrize(
    ("kind", "payload", "content_type", "reason"),
    [
        ("email", b'{"message_id": "<m1@x>", "text": "who am I?"}', "application/json", "from"),
        ("email", b"no headers, no structure, just words", "message/rfc822", "From"),
        (
            "email",
            b'{"message_id": "<m2@x>", "from": "not an address"}',
            "application/json",
            "sender",
        ),
        ("chat", b'{"event_id": "e1", "text": "hi"}', "application/json", "conversation_id"),
    ],
    ids=["envelope-without-from", "raw-without-headers", "bad-sender", "chat-without-author"],
)
async def test_a_stored_payload_that_cannot_be_placed_fails_with_its_reason(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    kind: str,
    payload: bytes,
    content_type: str,
    reason: str,
) -> None:
    channel = await make_channel(client, tenant_a, kind)
    response = await deliver(client, channel, payload, content_type=content_type)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["status"] == "failed" and reason in answer["reason"]
    [row] = await inbox_rows(database, tenant_a, channel["id"])
    assert (row.status, row.raw_body) == (InboundStatus.FAILED, payload)
    assert reason in (row.reason or "")
    assert await count(database, tenant_a, Ticket) == 0


# --- failures and retries -------------------------------------------------------------------


async def test_a_processing_failure_is_202_and_an_admin_retries_it(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    channel = await make_channel(client, tenant_a)
    original = channel_service.tickets.open_ticket

    async def broken(*args: Any, **kwargs: Any) -> Any:
        await original(*args, **kwargs)  # writes, which the failure must roll back
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(channel_service.tickets, "open_ticket", broken)
    response = await deliver(client, channel, envelope())
    assert response.status_code == 202
    failed = response.json()
    assert failed["status"] == "failed" and failed["ticket_id"] is None
    assert "RuntimeError" in failed["reason"] and "disk" not in failed["reason"]
    [row] = await inbox_rows(database, tenant_a, channel["id"])
    assert (row.status, row.attempts) == (InboundStatus.FAILED, 1)
    assert await count(database, tenant_a, Ticket) == 0
    # A redelivery does not retry it behind the admin's back.
    again = await deliver(
        client, channel, response.request.content, content_type="application/json"
    )
    assert again.json()["status"] == "duplicate"

    monkeypatch.setattr(channel_service.tickets, "open_ticket", original)
    retry_url = f"{CHANNELS}/{channel['id']}/inbox/{failed['inbox_id']}/retry"
    problem(await client.post(retry_url, headers=tenant_a["agent"].headers), 403)
    retried = await client.post(retry_url, headers=tenant_a["admin"].headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "created"
    [row] = await inbox_rows(database, tenant_a, channel["id"])
    assert (row.status, row.attempts, row.reason) == (InboundStatus.CREATED, 2, None)
    assert await count(database, tenant_a, Ticket) == 1
    problem(await client.post(retry_url, headers=tenant_a["admin"].headers), 409)


async def test_a_retry_that_fails_again_stays_failed(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    response = await deliver(client, channel, b'{"message_id": "<x@y>"}')
    inbox_id = response.json()["inbox_id"]
    retried = await client.post(
        f"{CHANNELS}/{channel['id']}/inbox/{inbox_id}/retry", headers=tenant_a["admin"].headers
    )
    assert retried.status_code == 202
    [row] = await inbox_rows(database, tenant_a, channel["id"])
    assert (row.status, row.attempts) == (InboundStatus.FAILED, 2)


# --- tenancy ---------------------------------------------------------------------------------


async def test_a_channel_of_one_organization_never_writes_in_another(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    theirs = await make_channel(client, tenant_b)
    # B's customer writes to A's channel: the ticket is A's, with a customer of A's.
    b_customer = tenant_b["customer"].email
    answer = (await deliver(client, channel, envelope(**{"from": b_customer}))).json()
    assert answer["status"] == "created"
    assert await count(database, tenant_b, Ticket) == 0
    assert await count(database, tenant_a, Ticket) == 1
    # B's ticket numbers mean nothing in A.
    b_ticket = (await deliver(client, theirs, envelope(**{"from": b_customer}))).json()
    number = (await ticket_row(database, tenant_b, b_ticket["ticket_id"])).ticket_number
    guess = envelope(**{"from": b_customer, "subject": f"Re: [{number}]"})
    placed = (await deliver(client, channel, guess)).json()
    assert placed["ticket_id"] != b_ticket["ticket_id"]
    assert await comments_of(database, tenant_b, b_ticket["ticket_id"]) == []
    async with database.tenant_session(tenant_b.org.id) as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(InboundMessage)) == 1
        assert await session.get(Channel, uuid.UUID(channel["id"])) is None


async def test_an_existing_user_of_the_sender_is_found_ignoring_case(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    user = await add_user(database, tenant_a.org, Role.CUSTOMER, email="mixed.case@example.org")
    channel = await make_channel(client, tenant_a)
    sender = {"from": "Mixed Case <Mixed.Case@Example.ORG>"}
    answer = (await deliver(client, channel, envelope(**sender))).json()
    assert (await ticket_row(database, tenant_a, answer["ticket_id"])).customer_id == user.id


async def test_stored_addresses_are_lower_case(database: Database, tenant_a: Tenant) -> None:
    # Look-ups compare the column as it is (an index under row-level security needs a
    # leakproof condition), so an address in any other case would never be found.
    with pytest.raises(sa.exc.IntegrityError, match="email_lowercase"):
        await add_user(database, tenant_a.org, Role.CUSTOMER, email="Mixed.Case@Example.org")


async def test_nul_and_control_characters_never_reach_the_database(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    payload = envelope(
        **{"from": "Ja\u0000ne <jane-nul@example.org>"},
        subject="Print\u0000er\u0007",
        text="Sm\u0000oke",
        headers={"X-Note": "a\u0000b"},
    )
    response = await deliver(client, channel, payload)
    assert response.status_code == 200, response.text
    ticket = await ticket_row(database, tenant_a, response.json()["ticket_id"])
    assert (ticket.subject, ticket.description) == ("Printer", "Smoke")
    bad_sender = await deliver(client, channel, envelope(**{"from": "x\u0000y@exa\u0000mple"}))
    assert bad_sender.status_code == 202
    assert "\u0000" not in bad_sender.json()["reason"]
