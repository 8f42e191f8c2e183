"""Real-world-shaped mail, kept as fixtures in `corpus/`: what providers' inbound hooks
pass on from Gmail, Outlook and older clients — multipart/alternative with
quoted-printable, Windows-1252, ISO-8859-1 and Shift_JIS bodies, encoded-word headers,
an inline image in multipart/related, a calendar invitation, no Message-ID — and a
10 MB attachment. Each becomes the ticket or comment a person would expect to read."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.db.database import Database
from tests.channels.helpers import comments_of, deliver, inbox_rows, make_channel, raw_email
from tests.support.identity import API, Tenant

CORPUS = Path(__file__).parent / "corpus"
# The message the reply fixtures answer (their In-Reply-To / References).
ORIGINAL_ID = "<original-1@mail.example.org>"


def fixture(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


async def ticket(client: httpx.AsyncClient, tenant: Tenant, ticket_id: str) -> dict[str, Any]:
    response = await client.get(f"{API}/tickets/{ticket_id}", headers=tenant["admin"].headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def attachments(
    client: httpx.AsyncClient, tenant: Tenant, ticket_id: str
) -> list[dict[str, Any]]:
    response = await client.get(
        f"{API}/tickets/{ticket_id}/attachments", headers=tenant["admin"].headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def opened_by_original(client: httpx.AsyncClient, channel: dict[str, Any]) -> dict[str, Any]:
    original = raw_email(sender="Jane Doe <jane@example.org>", message_id=ORIGINAL_ID)
    created: dict[str, Any] = (await deliver(client, channel, original)).json()
    assert created["status"] == "created", created
    return created


@pytest.mark.parametrize(
    ("name", "said", "quoted"),
    [
        (
            "gmail_reply.eml",
            "Thanks \u2014 the restart fixed it, the tray works again.",
            "Please restart the printer",
        ),
        (
            "outlook_reply.eml",
            "It still smokes after the restart \u2013 should I unplug it?",
            "Please restart the printer",
        ),
    ],
)
async def test_replies_from_common_clients_thread_without_their_quotes(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    name: str,
    said: str,
    quoted: str,
) -> None:
    channel = await make_channel(client, tenant_a)
    created = await opened_by_original(client, channel)
    answer = await deliver(client, channel, fixture(name))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["status"], result["ticket_id"]) == ("threaded", created["ticket_id"])
    [comment] = await comments_of(database, tenant_a, created["ticket_id"])
    assert said in comment.content
    assert quoted not in comment.content
    assert "wrote:" not in comment.content and "Sent:" not in comment.content
    stored = (await inbox_rows(database, tenant_a, channel["id"]))[-1]
    assert stored.raw_body == fixture(name)  # the original is kept whole


@pytest.mark.parametrize(
    ("name", "subject", "sender", "text"),
    [
        (
            "iso_8859_1.eml",
            "Drucker qualmt, Fach 2 hei\u00df",
            "juergen@example.de",
            "Gr\u00fc\u00dfe aus M\u00fcnchen: der Drucker qualmt, Fach 2 ist hei\u00df.",
        ),
        (
            "shift_jis.eml",
            "\u30d7\u30ea\u30f3\u30bf\u30fc\u304b\u3089\u7159",
            "taro@example.jp",
            "\u30d7\u30ea\u30f3\u30bf\u30fc\u304b\u3089\u7159\u304c\u51fa\u3066\u3044\u307e\u3059"
            "\u3002\u30c8\u30ec\u30a42\u3067\u3059\u3002",
        ),
    ],
)
async def test_legacy_charsets_in_headers_and_bodies_are_decoded(
    client: httpx.AsyncClient, tenant_a: Tenant, name: str, subject: str, sender: str, text: str
) -> None:
    channel = await make_channel(client, tenant_a)
    result = (await deliver(client, channel, fixture(name))).json()
    assert result["status"] == "created", result
    opened = await ticket(client, tenant_a, result["ticket_id"])
    assert opened["subject"] == subject
    assert opened["description"].strip() == text
    assert opened["channel"] == "email"
    customer = await client.get(
        f"{API}/users/{opened['customer_id']}", headers=tenant_a["admin"].headers
    )
    assert customer.json()["email"] == sender


async def test_an_inline_image_is_kept_and_the_html_never_runs(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    result = (await deliver(client, channel, fixture("inline_image.eml"))).json()
    assert result["status"] == "created", result
    opened = await ticket(client, tenant_a, result["ticket_id"])
    assert "The printer shows this error:" in opened["description"]
    assert "alert" not in opened["description"] and "<script" not in opened["description"]
    [image] = await attachments(client, tenant_a, result["ticket_id"])
    assert (image["file_name"], image["content_type"]) == ("error.png", "image/png")


async def test_a_calendar_invitation_opens_a_ticket_with_its_ics(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    result = (await deliver(client, channel, fixture("calendar_invite.eml"))).json()
    assert result["status"] == "created", result
    opened = await ticket(client, tenant_a, result["ticket_id"])
    assert opened["description"].strip() == (
        "Could a technician come on Thursday at 10:00 to look at the printer?"
    )
    assert "BEGIN:VCALENDAR" not in opened["description"]
    files = [a["file_name"] for a in await attachments(client, tenant_a, result["ticket_id"])]
    assert "invite.ics" in files


async def test_mail_without_a_message_id_is_stored_once_under_a_derived_one(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    first = (await deliver(client, channel, fixture("no_message_id.eml"))).json()
    again = (await deliver(client, channel, fixture("no_message_id.eml"))).json()
    assert first["status"] == "created"
    assert (again["status"], again["ticket_id"]) == ("duplicate", first["ticket_id"])
    [row] = await inbox_rows(database, tenant_a, channel["id"])
    assert row.external_id  # derived from sender, date and body


async def test_a_ten_megabyte_attachment_arrives_whole(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    data = b"%PDF-1.4\n" + uuid.uuid4().bytes * (10 * 1024 * 1024 // 16)
    raw = raw_email(
        sender="jane@example.org",
        subject="The full scan",
        attachments=[("scan.pdf", "application/pdf", data)],
    )
    assert len(raw) > 13 * 1024 * 1024  # base64 on the wire, over the API's body limit
    result = (await deliver(client, channel, raw)).json()
    assert result["status"] == "created", result
    [scan] = await attachments(client, tenant_a, result["ticket_id"])
    assert (scan["file_name"], scan["file_size"]) == ("scan.pdf", len(data))
    download = await client.get(
        f"{API}/attachments/{scan['id']}/download", headers=tenant_a["admin"].headers
    )
    assert download.content == data
