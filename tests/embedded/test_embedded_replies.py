"""Replies going out in embedded mode (SQLite, jobs in process, no SMTP_URL), as `make
run` serves: an agent's reply to a ticket that came in by mail is written to MAIL_DIR as
an `.eml` file, threaded to the customer's message, and counts as sent."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from app.db.database import Database
from app.kit.jobs import InProcessJobQueue
from app.main import create_app
from tests.channels.helpers import deliver, envelope, make_channel
from tests.conftest import helpdesk
from tests.embedded.conftest import embedded_settings
from tests.support.identity import API, Tenant, make_tenant


@dataclass
class Embedded:
    client: httpx.AsyncClient
    runner: InProcessJobQueue
    tenant: Tenant
    mail_dir: Path


@pytest.fixture
async def embedded_mail(tmp_path: Path) -> AsyncIterator[Embedded]:
    """A SQLite file of its own, migrated by the CLI; the app sends replies at once."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'helpdesk.db'}"
    helpdesk(url, "migrate")
    settings = embedded_settings(url, tmp_path / "storage", timers=False).model_copy(
        update={"mail_dir": tmp_path / "mail", "reply_send_delay_seconds": 0.0}
    )
    assert settings.smtp is None
    setup = Database(settings)
    try:
        tenant = await make_tenant(setup, "Embedded")
    finally:
        await setup.dispose()
    application: FastAPI = create_app(settings)
    async with application.router.lifespan_context(application):
        runner = application.state.database.jobs
        assert isinstance(runner, InProcessJobQueue)
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://embedded") as client:
            yield Embedded(client, runner, tenant, settings.mail_dir)


async def test_a_reply_is_written_to_mail_dir_as_an_eml_file(embedded_mail: Embedded) -> None:
    client, tenant = embedded_mail.client, embedded_mail.tenant
    channel = await make_channel(client, tenant, "email", address="help@shop.example.com")
    customer = f"sam-{uuid.uuid4().hex[:6]}@example.org"
    first = envelope(**{"from": f"Sam Ortiz <{customer}>", "subject": "Refund"})
    opened = await deliver(client, channel, first)
    assert opened.json()["status"] == "created", opened.text
    ticket_id = opened.json()["ticket_id"]
    created = await client.post(
        f"{API}/tickets/{ticket_id}/comments",
        json={"content": "Your refund is on its way."},
        headers=tenant["agent"].headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["delivery"]["status"] == "queued"

    await embedded_mail.runner.drain()

    comment_id = created.json()["id"]
    [written] = list(embedded_mail.mail_dir.iterdir())
    assert written.name == f"{comment_id}.eml"
    mail = message_from_bytes(written.read_bytes(), policy=policy.default)
    assert isinstance(mail, EmailMessage)
    ticket = (
        await client.get(f"{API}/tickets/{ticket_id}", headers=tenant["agent"].headers)
    ).json()
    assert mail["From"] == f"{channel['name']} <help@shop.example.com>"
    assert mail["To"] == f"Sam Ortiz <{customer}>"
    assert mail["Subject"] == f"Re: Refund [{ticket['ticket_number']}]"
    assert mail["In-Reply-To"] == first["message_id"]
    assert mail["Message-ID"].endswith("@shop.example.com>")
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None and body.get_content().strip() == "Your refund is on its way."
    page = await client.get(f"{API}/tickets/{ticket_id}/comments", headers=tenant["agent"].headers)
    [comment] = page.json()["items"]
    assert comment["delivery"]["status"] == "sent"
    assert comment["delivery"]["attempts"] == 1

    # The customer's answer to that file's Message-ID threads into the ticket.
    answer = envelope(
        **{"from": customer, "subject": "Thanks", "in_reply_to": mail["Message-ID"]}, text="Got it"
    )
    threaded = (await deliver(client, channel, answer)).json()
    assert (threaded["status"], threaded["ticket_id"]) == ("threaded", ticket_id)
    await embedded_mail.runner.drain()
    assert len(list(embedded_mail.mail_dir.iterdir())) == 1  # the customer's comment stays
