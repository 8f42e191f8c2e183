"""Inbound channels in embedded mode (SQLite, as `make run` serves): a signed message
opens a ticket, its reply threads, a redelivery is a duplicate, and concurrent copies
of one message queue on the database's write lock into a single ticket."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx

from tests.channels.helpers import CHANNELS, envelope, signed
from tests.support.identity import API


async def test_a_channel_receives_threads_and_deduplicates_on_sqlite(
    embedded: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    created = await embedded.post(
        CHANNELS, json={"type": "email", "name": "Embedded inbox"}, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    channel = created.json()

    async def deliver(payload: dict[str, object]) -> httpx.Response:
        body = json.dumps(payload).encode()
        return await embedded.post(
            channel["inbound_url"], content=body, headers=signed(channel["secret"], body)
        )

    first = envelope(text="Hello from SQLite")
    opened = await deliver(first)
    assert opened.status_code == 200, opened.text
    assert opened.json()["status"] == "created"
    ticket_id = opened.json()["ticket_id"]
    ticket = await embedded.get(f"{API}/tickets/{ticket_id}", headers=admin_headers)
    assert ticket.json()["channel"] == "email"
    reply = envelope(**{"from": first["from"], "in_reply_to": first["message_id"]}, text="More")
    threaded = (await deliver(reply)).json()
    assert (threaded["status"], threaded["ticket_id"]) == ("threaded", ticket_id)
    assert (await deliver(reply)).json() == {**threaded, "status": "duplicate"}

    storm = envelope()
    answers = await asyncio.gather(*(deliver(storm) for _ in range(20)))
    assert {a.status_code for a in answers} == {200}, [a.text for a in answers]
    assert Counter(a.json()["status"] for a in answers) == {"created": 1, "duplicate": 19}
    inbox = await embedded.get(f"{CHANNELS}/{channel['id']}/inbox", headers=admin_headers)
    assert [i["status"] for i in inbox.json()["items"]] == ["created", "threaded", "created"]

    # A message that cannot be placed fails, and an admin's retry (in a savepoint of the
    # request's own transaction, which holds SQLite's write lock) fails it again.
    failed = await deliver({"message_id": "<no-sender@example.org>", "text": "?"})
    assert failed.status_code == 202, failed.text
    retry = f"{CHANNELS}/{channel['id']}/inbox/{failed.json()['inbox_id']}/retry"
    retried = await embedded.post(retry, headers=admin_headers)
    assert retried.status_code == 202, retried.text
    assert retried.json()["status"] == "failed"
