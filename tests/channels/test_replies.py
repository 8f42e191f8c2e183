"""Replies going back out: an agent's public comment on an email ticket is mailed to the
customer through a real SMTP server (aiosmtpd on 127.0.0.1), a chat ticket's reply is
POSTed to a real HTTP receiver (uvicorn) that checks its signature; the delivery status
on the comment, retries, permanent refusals, concurrent senders and tenancy.

The app under test records the jobs it queues instead of running them, and its replies
are due an hour after they are written: each test runs the send job and the sweep
itself, with a clock moved past the due time, so nothing runs behind its back (the
session's other apps sweep with the real clock and find nothing of ours due).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from aiosmtpd.controller import Controller
from fastapi import FastAPI
from pydantic import SecretStr
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.channels import outgoing
from app.config import Settings
from app.db.database import Database
from app.kit.jobs import run_job
from app.main import create_app
from app.models.channel import InboundMessage, MessageDirection, TicketMessageId
from app.models.ticket import ReplyDelivery, TicketComment
from app.models.user import User
from tests.channels.helpers import deliver, envelope, make_channel
from tests.support.identity import API, Tenant, sign_in

PDF = b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n" + b"0" * 200
DELAY = timedelta(hours=1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- a real SMTP server --------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class MailSink:
    """aiosmtpd handler: keeps every message; mailboxes named nobody-… do not exist."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        # Cleared: a message's DATA is held (the server's own thread and loop) until set.
        self.gate = threading.Event()
        self.gate.set()
        self.held = threading.Event()

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address.startswith("nobody"):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        while not self.gate.is_set():
            self.held.set()
            await asyncio.sleep(0.01)
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        )
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]


class SmtpServer:
    """A local SMTP server that can be stopped and started again on its port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sink = MailSink()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        self.stop()
        try:
            yield
        finally:
            self.start()


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


# --- a real HTTP receiver for chat replies ------------------------------------------------


@dataclass
class Post:
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def json(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded


@dataclass
class ChatPlatform:
    """What a chat platform does with our replies: it checks the Standard Webhooks
    signature with the channel's secret and answers the next of `answers` (200 after)."""

    port: int
    secrets: dict[str, str] = field(default_factory=dict)  # path → the channel's secret
    posts: dict[str, list[Post]] = field(default_factory=dict)
    answers: dict[str, list[int]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def endpoint(self, request: Request) -> Response:
        path = request.path_params["path"]
        body = await request.body()
        try:
            Webhook(self.secrets[path]).verify(body, dict(request.headers))
            verified = True
        except (WebhookVerificationError, KeyError):
            verified = False
        self.posts.setdefault(path, []).append(Post(dict(request.headers), body, verified))
        queued = self.answers.get(path)
        status = queued.pop(0) if queued else 200
        return Response(status_code=status if verified else 401)


@pytest.fixture(scope="module")
async def chat_platform() -> AsyncIterator[ChatPlatform]:
    platform = ChatPlatform(port=free_port())
    app = Starlette(routes=[Route("/{path}", platform.endpoint, methods=["POST"])])
    config = uvicorn.Config(
        app, host="127.0.0.1", port=platform.port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "the chat receiver did not start"
        await asyncio.sleep(0.01)
    yield platform
    server.should_exit = True
    await serving


# --- the app under test -------------------------------------------------------------------


@dataclass
class Job:
    name: str
    organization_id: uuid.UUID | None
    job_id: str | None
    run_at: float | None
    kwargs: dict[str, Any]


class RecordedJobs:
    """The app's job queue: keeps what is queued for the test to run."""

    def __init__(self) -> None:
        self.queued: list[Job] = []

    async def enqueue(
        self,
        name: str,
        *,
        organization_id: uuid.UUID | None,
        job_id: str | None = None,
        run_at: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.queued.append(Job(name, organization_id, job_id, run_at, kwargs))

    async def close(self) -> None:
        return None

    def sends_of(self, comment_id: str) -> list[Job]:
        return [
            job
            for job in self.queued
            if job.name == outgoing.SEND_JOB and job.kwargs.get("comment_id") == comment_id
        ]


@dataclass
class Outbound:
    client: httpx.AsyncClient
    database: Database
    jobs: RecordedJobs
    mail_dir: Path


@pytest.fixture(scope="module")
async def outbound(
    settings: Settings, smtp: SmtpServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Outbound]:
    mail_dir = tmp_path_factory.mktemp("mail")
    configured = settings.model_copy(
        update={
            "smtp_url": SecretStr(f"smtp://127.0.0.1:{smtp.port}"),
            "mail_dir": mail_dir,
            "reply_send_delay_seconds": DELAY.total_seconds(),
            # A third app beside the session's two: a small pool, so the suite's share of
            # the server's connections stays what it was.
            "database_pool_size": 2,
            "database_max_overflow": 10,
        }
    )
    application: FastAPI = create_app(configured)
    async with application.router.lifespan_context(application):
        database: Database = application.state.database
        runner, recorded = database.jobs, RecordedJobs()
        database.jobs = recorded
        try:
            transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield Outbound(client, database, recorded, mail_dir)
        finally:
            database.jobs = runner


def later(hours: float = 2) -> datetime:
    """A moment past a reply's due time (queued an hour ahead)."""
    return datetime.now(UTC) + timedelta(hours=hours)


async def send(
    out: Outbound,
    organization_id: uuid.UUID,
    comment_id: str,
    at: datetime | None = None,
    **options: Any,
) -> str | None:
    """The send job, as a worker runs it for the organization."""
    moment = at or later()
    return await run_job(
        out.database,
        outgoing.send_reply,
        organization_id,
        comment_id=comment_id,
        clock=lambda: moment,
        **options,
    )


async def sweep(out: Outbound, at: datetime) -> list[Job]:
    before = len(out.jobs.queued)
    await run_job(out.database, outgoing.sweep_replies, None, clock=lambda: at)
    return out.jobs.queued[before:]


async def comment_row(database: Database, tenant: Tenant, comment_id: str) -> TicketComment:
    async with database.tenant_session(tenant.org.id) as session:
        row = await session.get(TicketComment, uuid.UUID(comment_id))
        assert row is not None
        return row


async def mail_ticket(
    out: Outbound, tenant: Tenant, *, sender: str | None = None, **fields: Any
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """An email channel and a ticket its customer opened by mail: (channel, the
    envelope, the ticket)."""
    channel = await make_channel(
        out.client, tenant, "email", name="Acme Support", address="support@acme.example.com"
    )
    sender = sender or f"jane-{uuid.uuid4().hex[:8]}@example.org"
    first = envelope(**{"from": f"Jane Doe <{sender}>", **fields})
    answer = await deliver(out.client, channel, first)
    assert answer.json()["status"] == "created", answer.text
    ticket = await out.client.get(
        f"{API}/tickets/{answer.json()['ticket_id']}", headers=tenant["agent"].headers
    )
    return channel, first, ticket.json()


async def reply(
    out: Outbound, tenant: Tenant, ticket_id: str, content: str, *, who: str = "agent", **body: Any
) -> dict[str, Any]:
    response = await out.client.post(
        f"{API}/tickets/{ticket_id}/comments",
        json={"content": content, **body},
        headers=tenant[who].headers,
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def delivery_of(out: Outbound, tenant: Tenant, ticket_id: str, comment_id: str) -> Any:
    """The comment's `delivery` as staff read it in the thread."""
    page = await out.client.get(
        f"{API}/tickets/{ticket_id}/comments", headers=tenant["agent"].headers
    )
    assert page.status_code == 200, page.text
    [found] = [c for c in page.json()["items"] if c["id"] == comment_id]
    return found["delivery"]


# --- email ---------------------------------------------------------------------------------


async def test_an_agent_reply_is_mailed_and_the_customers_answer_threads_back(
    outbound: Outbound, smtp: SmtpServer, tenant_a: Tenant
) -> None:
    out = outbound
    customer = f"jane-{uuid.uuid4().hex[:8]}@example.org"
    channel, first, ticket = await mail_ticket(out, tenant_a, sender=customer)
    content = "Hello Jane,\n\nthe technician comes at 3 pm.\nBring <the> key & badge.\n\nDana"
    created = await reply(out, tenant_a, ticket["id"], content)
    assert created["delivery"] == {
        "status": "queued",
        "attempts": 0,
        "error": None,
        "sent_at": None,
    }
    # Queued after the commit, for the organization, due after the configured delay.
    [job] = out.jobs.sends_of(created["id"])
    assert job.organization_id == tenant_a.org.id
    assert job.job_id == f"{outgoing.SEND_JOB}:{created['id']}"
    assert job.run_at is not None
    assert job.run_at == pytest.approx((datetime.now(UTC) + DELAY).timestamp(), abs=30)
    # Not due yet: a job that runs early sends nothing.
    assert await send(out, tenant_a.org.id, created["id"], at=datetime.now(UTC)) is None
    upload = await out.client.post(
        f"{API}/tickets/{ticket['id']}/attachments",
        files={"file": ("quote.pdf", PDF, "application/pdf")},
        data={"comment_id": created["id"]},
        headers=tenant_a["agent"].headers,
    )
    assert upload.status_code == 201, upload.text

    assert await send(out, tenant_a.org.id, created["id"]) == "sent"

    [received] = smtp.sink.to(customer)
    mail = received.message
    row = await comment_row(out.database, tenant_a, created["id"])
    assert row.outgoing_message_id is not None
    assert row.outgoing_message_id.endswith("@acme.example.com")
    assert received.mail_from == "support@acme.example.com"
    assert mail["From"] == "Acme Support <support@acme.example.com>"
    assert mail["To"] == f"Jane Doe <{customer}>"
    assert mail["Subject"] == f"Re: Printer on fire [{ticket['ticket_number']}]"
    assert mail["Message-ID"] == f"<{row.outgoing_message_id}>"
    assert mail["In-Reply-To"] == first["message_id"]
    assert mail["References"] == first["message_id"]
    assert mail["Auto-Submitted"] is None  # a person wrote it: answers are welcome
    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    # SMTP carries lines ended by CRLF.
    assert text.get_content().replace("\r\n", "\n").rstrip("\n") == content
    assert "<p>Hello Jane,</p>" in html.get_content()
    assert "Bring &lt;the&gt; key &amp; badge." in html.get_content()
    [attachment] = list(mail.iter_attachments())
    assert attachment.get_filename() == "quote.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == PDF
    delivery = await delivery_of(out, tenant_a, ticket["id"], created["id"])
    assert delivery["status"] == "sent" and delivery["attempts"] == 1
    assert delivery["error"] is None and delivery["sent_at"] is not None
    # Our Message-ID is the ticket's, as outbound.
    async with out.database.tenant_session(tenant_a.org.id) as session:
        registered = await session.scalar(
            sa.select(TicketMessageId).where(TicketMessageId.message_id == row.outgoing_message_id)
        )
    assert registered is not None
    assert registered.direction is MessageDirection.OUTBOUND
    assert str(registered.ticket_id) == ticket["id"]

    # The customer answers our mail (a subject without the number: In-Reply-To alone
    # threads it), into the same ticket.
    answer = envelope(
        **{
            "from": customer,
            "subject": "Re: your visit",
            "in_reply_to": mail["Message-ID"],
            "references": [first["message_id"], mail["Message-ID"]],
        },
        text="3 pm works, thanks!",
    )
    threaded = (await deliver(out.client, channel, answer)).json()
    assert (threaded["status"], threaded["ticket_id"]) == ("threaded", ticket["id"])
    async with out.database.tenant_session(tenant_a.org.id) as session:
        inbox = await session.scalar(
            sa.select(InboundMessage).where(InboundMessage.id == uuid.UUID(threaded["inbox_id"]))
        )
    assert inbox is not None and inbox.thread_reason is not None
    assert inbox.thread_reason.value == "in_reply_to"
    # The customer's comment goes nowhere.
    page = await out.client.get(
        f"{API}/tickets/{ticket['id']}/comments", headers=tenant_a["agent"].headers
    )
    assert [c["delivery"] is None for c in page.json()["items"]] == [False, True]
    assert out.jobs.sends_of(threaded["comment_id"]) == []
    # Our own mail delivered back to the channel (a forwarding loop) is ignored.
    loop = await deliver(out.client, channel, received.content, content_type="message/rfc822")
    assert (loop.json()["status"], loop.json()["reason"]) == ("ignored", "own_message")

    # A second reply threads after the customer's answer and names the whole thread.
    second = await reply(out, tenant_a, ticket["id"], "See you then.")
    assert await send(out, tenant_a.org.id, second["id"]) == "sent"
    follow_up = smtp.sink.to(customer)[-1].message
    assert follow_up["In-Reply-To"] == answer["message_id"]
    assert follow_up["References"].split() == [
        first["message_id"],
        mail["Message-ID"],
        answer["message_id"],
    ]
    assert follow_up["Message-ID"] != mail["Message-ID"]


async def test_a_reply_to_mail_without_a_message_id_names_none_of_ours_derived(
    outbound: Outbound, smtp: SmtpServer, tenant_a: Tenant
) -> None:
    """The id derived for a mail that named none is ours alone: our answer does not
    claim to reply to it (no mail program knows it)."""
    out = outbound
    customer = f"jane-{uuid.uuid4().hex[:8]}@example.org"
    _, _, ticket = await mail_ticket(out, tenant_a, sender=customer, message_id=None)
    created = await reply(out, tenant_a, ticket["id"], "We are on it.")
    assert await send(out, tenant_a.org.id, created["id"]) == "sent"
    [received] = smtp.sink.to(customer)
    mail = received.message
    row = await comment_row(out.database, tenant_a, created["id"])
    assert mail["Message-ID"] == f"<{row.outgoing_message_id}>"
    assert mail["In-Reply-To"] is None and mail["References"] is None


async def test_notes_customer_comments_and_other_tickets_send_nothing(
    outbound: Outbound, smtp: SmtpServer, tenant_a: Tenant
) -> None:
    out = outbound
    customer = f"jane-{uuid.uuid4().hex[:8]}@example.org"
    _, _, ticket = await mail_ticket(out, tenant_a, sender=customer)
    note = await reply(out, tenant_a, ticket["id"], "Customer is VIP", comment_type="internal")
    # A web ticket, and an email ticket opened by hand (no channel brought it in).
    web = await out.client.post(
        f"{API}/tickets",
        json={"subject": "Web", "customer_id": str(tenant_a["customer"].user_id)},
        headers=tenant_a["agent"].headers,
    )
    by_hand = await out.client.post(
        f"{API}/tickets",
        json={
            "subject": "Phoned in",
            "channel": "email",
            "customer_id": str(tenant_a["customer"].user_id),
        },
        headers=tenant_a["agent"].headers,
    )
    on_web = await reply(out, tenant_a, web.json()["id"], "Answered on the web")
    on_hand = await reply(out, tenant_a, by_hand.json()["id"], "Answered by hand")
    # The ticket's customer user, writing through the API.
    own = await out.client.post(
        f"{API}/tickets",
        json={"subject": "Mine", "customer_id": str(tenant_a["customer"].user_id)},
        headers=tenant_a["customer"].headers,
    )
    by_customer = await reply(out, tenant_a, own.json()["id"], "Any news?", who="customer")

    for comment in (note, on_web, on_hand, by_customer):
        assert comment["delivery"] is None
        assert out.jobs.sends_of(comment["id"]) == []
        row = await comment_row(out.database, tenant_a, comment["id"])
        assert (row.delivery_status, row.delivery_attempts, row.delivery_next_attempt_at) == (
            None,
            0,
            None,
        )
        # Even a job asking for it sends nothing.
        assert await send(out, tenant_a.org.id, comment["id"]) is None
    queued = [job.kwargs["comment_id"] for job in await sweep(out, later(hours=24 * 30))]
    assert not {note["id"], on_web["id"], on_hand["id"], by_customer["id"]} & set(queued)
    assert smtp.sink.to(customer) == []
    # The customer never reads the delivery of a reply to them: it is for staff.
    staff_reply = await reply(out, tenant_a, ticket["id"], "We are on it")
    assert staff_reply["delivery"]["status"] == "queued"
    async with out.database.tenant_session(tenant_a.org.id) as session:
        mail_customer = await session.scalar(sa.select(User).where(User.email == customer))
    assert mail_customer is not None
    as_customer = await sign_in(out.database, "mail customer", mail_customer)
    customer_view = await out.client.get(
        f"{API}/tickets/{ticket['id']}/comments", headers=as_customer.headers
    )
    assert customer_view.status_code == 200, customer_view.text
    assert [(c["id"], c["delivery"]) for c in customer_view.json()["items"]] == [
        (staff_reply["id"], None)
    ]


async def test_a_reply_waits_while_the_mail_server_is_down_and_goes_once_it_is_up(
    outbound: Outbound, smtp: SmtpServer, tenant_a: Tenant
) -> None:
    out = outbound
    customer = f"jane-{uuid.uuid4().hex[:8]}@example.org"
    _, _, ticket = await mail_ticket(out, tenant_a, sender=customer)
    created = await reply(out, tenant_a, ticket["id"], "Your part has shipped.")
    first_try = later()
    with smtp.down():
        assert await send(out, tenant_a.org.id, created["id"], at=first_try) == "queued"
    row = await comment_row(out.database, tenant_a, created["id"])
    assert row.delivery_status is ReplyDelivery.QUEUED and row.delivery_attempts == 1
    assert row.delivery_error is not None
    assert f"127.0.0.1:{smtp.port}" in row.delivery_error
    # The first retry waits 30 s, give or take the jitter.
    assert row.delivery_next_attempt_at is not None
    wait = (row.delivery_next_attempt_at - first_try).total_seconds()
    assert 24 <= wait <= 36
    delivery = await delivery_of(out, tenant_a, ticket["id"], created["id"])
    assert delivery == {
        "status": "queued",
        "attempts": 1,
        "error": row.delivery_error,
        "sent_at": None,
    }
    # Before the retry is due the sweep leaves it, and a job sends nothing.
    assert created["id"] not in [j.kwargs["comment_id"] for j in await sweep(out, first_try)]
    assert await send(out, tenant_a.org.id, created["id"], at=first_try) is None
    assert smtp.sink.to(customer) == []

    # The server is back; the sweep finds the retry due and queues it for its tenant.
    retry_at = first_try + timedelta(minutes=1)
    [job] = [j for j in await sweep(out, retry_at) if j.kwargs["comment_id"] == created["id"]]
    assert job.organization_id == tenant_a.org.id
    assert await send(out, job.organization_id, created["id"], at=retry_at) == "sent"
    assert await send(out, tenant_a.org.id, created["id"], at=retry_at) is None
    assert len(smtp.sink.to(customer)) == 1
    delivery = await delivery_of(out, tenant_a, ticket["id"], created["id"])
    assert (delivery["status"], delivery["attempts"], delivery["error"]) == ("sent", 2, None)


async def test_a_reply_is_given_up_after_its_last_retry(
    outbound: Outbound, smtp: SmtpServer, tenant_a: Tenant
) -> None:
    out = outbound
    _, _, ticket = await mail_ticket(out, tenant_a)
    created = await reply(out, tenant_a, ticket["id"], "Are you there?")
    schedule = outgoing.ReplySchedule(backoff=(60.0,), jitter=0)
    start = later()
    with smtp.down():
        first = await send(out, tenant_a.org.id, created["id"], at=start, schedule=schedule)
        assert first == "queued"
        row = await comment_row(out.database, tenant_a, created["id"])
        assert row.delivery_next_attempt_at == start + timedelta(seconds=60)
        at = start + timedelta(seconds=61)
        assert await send(out, tenant_a.org.id, created["id"], at=at, schedule=schedule) == (
            "failed"
        )
    row = await comment_row(out.database, tenant_a, created["id"])
    assert row.delivery_status is ReplyDelivery.FAILED
    assert (row.delivery_attempts, row.delivery_next_attempt_at) == (2, None)
    assert row.delivery_error is not None and "SMTP server" in row.delivery_error
    queued = await sweep(out, later(hours=24 * 30))
    assert created["id"] not in [j.kwargs["comment_id"] for j in queued]


async def test_a_mailbox_that_does_not_exist_fails_at_once(
    outbound: Outbound, smtp: SmtpServer, tenant_a: Tenant
) -> None:
    out = outbound
    nobody = f"nobody-{uuid.uuid4().hex[:8]}@example.org"
    _, _, ticket = await mail_ticket(out, tenant_a, sender=nobody)
    created = await reply(out, tenant_a, ticket["id"], "Hello?")
    assert await send(out, tenant_a.org.id, created["id"]) == "failed"
    delivery = await delivery_of(out, tenant_a, ticket["id"], created["id"])
    assert delivery["status"] == "failed" and delivery["attempts"] == 1
    assert "550" in delivery["error"] and "No such mailbox" in delivery["error"]
    assert delivery["sent_at"] is None
    row = await comment_row(out.database, tenant_a, created["id"])
    assert row.delivery_next_attempt_at is None
    assert smtp.sink.to(nobody) == []


async def test_concurrent_senders_of_one_reply_send_one_message(
    outbound: Outbound, smtp: SmtpServer, tenant_a: Tenant
) -> None:
    out = outbound
    customer = f"jane-{uuid.uuid4().hex[:8]}@example.org"
    _, _, ticket = await mail_ticket(out, tenant_a, sender=customer)
    created = await reply(out, tenant_a, ticket["id"], "Only once, please.")
    moment = later()
    outcomes = await asyncio.gather(
        *(send(out, tenant_a.org.id, created["id"], at=moment) for _ in range(8))
    )
    assert Counter(outcomes) == {"sent": 1, None: 7}
    assert len(smtp.sink.to(customer)) == 1
    row = await comment_row(out.database, tenant_a, created["id"])
    assert (row.delivery_status, row.delivery_attempts) == (ReplyDelivery.SENT, 1)


async def test_a_reply_being_sent_is_not_taken_by_another_sender(
    outbound: Outbound, smtp: SmtpServer, tenant_a: Tenant
) -> None:
    """The claim commits before the mail server is reached (no transaction waits on it);
    its lease keeps the reply from a second sender until the first one is done."""
    out = outbound
    customer = f"jane-{uuid.uuid4().hex[:8]}@example.org"
    _, _, ticket = await mail_ticket(out, tenant_a, sender=customer)
    created = await reply(out, tenant_a, ticket["id"], "Slow server.")
    moment = later()
    smtp.sink.held.clear()
    smtp.sink.gate.clear()
    try:
        first = asyncio.create_task(send(out, tenant_a.org.id, created["id"], at=moment))
        assert await asyncio.to_thread(smtp.sink.held.wait, 10), "the mail never reached DATA"
        # Mid-send: the claim is committed and visible, and nobody else takes the reply.
        row = await comment_row(out.database, tenant_a, created["id"])
        assert (row.delivery_status, row.delivery_attempts) == (ReplyDelivery.QUEUED, 1)
        assert row.delivery_next_attempt_at == moment + outgoing.LEASE
        assert await send(out, tenant_a.org.id, created["id"], at=moment) is None
    finally:
        smtp.sink.gate.set()
    assert await first == "sent"
    assert len(smtp.sink.to(customer)) == 1


async def test_the_send_job_runs_in_the_replys_organization_only(
    outbound: Outbound, smtp: SmtpServer, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    out = outbound
    customer = f"jane-{uuid.uuid4().hex[:8]}@example.org"
    _, _, ticket = await mail_ticket(out, tenant_a, sender=customer)
    created = await reply(out, tenant_a, ticket["id"], "For Alpha's customer")
    [job] = out.jobs.sends_of(created["id"])
    assert job.organization_id == tenant_a.org.id
    # Run for another organization, the job finds no such reply and sends nothing.
    assert await send(out, tenant_b.org.id, created["id"]) is None
    row = await comment_row(out.database, tenant_a, created["id"])
    assert (row.delivery_status, row.delivery_attempts) == (ReplyDelivery.QUEUED, 0)
    assert smtp.sink.to(customer) == []
    # In its own organization's unit of work it goes.
    assert await send(out, tenant_a.org.id, created["id"]) == "sent"
    assert len(smtp.sink.to(customer)) == 1


# --- chat ----------------------------------------------------------------------------------


async def chat_ticket(
    out: Outbound, tenant: Tenant, platform: ChatPlatform
) -> tuple[dict[str, Any], str, str]:
    """A chat channel posting replies to `platform`, and a ticket a visitor opened:
    (the channel, the receiver's path, the ticket id)."""
    path = uuid.uuid4().hex
    channel = await make_channel(out.client, tenant, "chat", reply_url=platform.url(path))
    platform.secrets[path] = channel["secret"]
    event = {
        "event_id": f"evt_{uuid.uuid4().hex}",
        "conversation_id": f"conv-{path}",
        "author": {"email": f"visitor-{path[:8]}@example.org", "name": "Vic Visitor"},
        "text": "My order never arrived",
        "sent_at": "2025-03-04T09:00:00Z",
    }
    opened = (await deliver(out.client, channel, event)).json()
    assert opened["status"] == "created", opened
    return channel, path, opened["ticket_id"]


async def test_a_chat_reply_is_posted_signed_to_the_channels_reply_url(
    outbound: Outbound, chat_platform: ChatPlatform, tenant_a: Tenant
) -> None:
    out = outbound
    _, path, ticket_id = await chat_ticket(out, tenant_a, chat_platform)
    created = await reply(out, tenant_a, ticket_id, "It ships tomorrow.")
    assert created["delivery"]["status"] == "queued"
    assert await send(out, tenant_a.org.id, created["id"]) == "sent"
    [post] = chat_platform.posts[path]
    assert post.verified  # Standard Webhooks, with the channel's secret
    assert post.headers["webhook-id"] == created["id"]
    assert post.headers["content-type"] == "application/json"
    ticket = await out.client.get(f"{API}/tickets/{ticket_id}", headers=tenant_a["agent"].headers)
    agent = (await out.client.get(f"{API}/users/me", headers=tenant_a["agent"].headers)).json()
    # The agent's name; the fixture's agents have none, so their address stands in.
    name = f"{agent['first_name']} {agent['last_name']}".strip() or agent["email"]
    assert post.json == {
        "conversation_id": f"conv-{path}",
        "text": "It ships tomorrow.",
        "ticket_number": ticket.json()["ticket_number"],
        "comment_id": created["id"],
        "author": {"name": name},
    }
    delivery = await delivery_of(out, tenant_a, ticket_id, created["id"])
    assert (delivery["status"], delivery["attempts"]) == ("sent", 1)


async def test_a_chat_platform_answering_500_gets_the_reply_again_with_the_same_id(
    outbound: Outbound, chat_platform: ChatPlatform, tenant_a: Tenant
) -> None:
    out = outbound
    _, path, ticket_id = await chat_ticket(out, tenant_a, chat_platform)
    created = await reply(out, tenant_a, ticket_id, "Retry me.")
    chat_platform.answers[path] = [500]
    first_try = later()
    assert await send(out, tenant_a.org.id, created["id"], at=first_try) == "queued"
    delivery = await delivery_of(out, tenant_a, ticket_id, created["id"])
    assert delivery["status"] == "queued" and "HTTP 500" in delivery["error"]
    retry_at = first_try + timedelta(minutes=5)
    [job] = [j for j in await sweep(out, retry_at) if j.kwargs["comment_id"] == created["id"]]
    assert await send(out, job.organization_id, created["id"], at=retry_at) == "sent"
    posts = chat_platform.posts[path]
    assert [p.verified for p in posts] == [True, True]
    assert {p.headers["webhook-id"] for p in posts} == {created["id"]}
    assert posts[0].body == posts[1].body
    delivery = await delivery_of(out, tenant_a, ticket_id, created["id"])
    assert (delivery["status"], delivery["attempts"], delivery["error"]) == ("sent", 2, None)


async def test_a_chat_reply_to_a_private_address_is_refused_unless_allowed(
    outbound: Outbound, chat_platform: ChatPlatform, tenant_a: Tenant, settings: Settings
) -> None:
    out = outbound
    _, _, ticket_id = await chat_ticket(out, tenant_a, chat_platform)
    created = await reply(out, tenant_a, ticket_id, "Not to 127.0.0.1")
    strict = Database(settings.model_copy(update={"webhook_allow_private_targets": False}))
    try:
        moment = later()
        outcome = await run_job(
            strict,
            outgoing.send_reply,
            tenant_a.org.id,
            comment_id=created["id"],
            clock=lambda: moment,
        )
    finally:
        await strict.dispose()
    assert outcome is None  # given up in the claim: nothing was sent
    delivery = await delivery_of(out, tenant_a, ticket_id, created["id"])
    assert delivery["status"] == "failed"
    assert "private, loopback" in delivery["error"]
