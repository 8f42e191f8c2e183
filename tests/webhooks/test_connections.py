"""Kept connections (`app.webhooks.connections`): a receiver's next batch reuses the
connection of the last, two names of one address never share one, and a client is
closed once idle — never while a request is under way on it."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from app.webhooks import connections
from app.webhooks.sender import Outcome, Outgoing, send_all
from app.webhooks.targets import tls_context
from tests.webhooks.receiver import Receiver, Reply

SECRET = "whsec_" + "A" * 43 + "="


@pytest.fixture
async def kept() -> AsyncIterator[Receiver]:
    """A receiver that keeps connections open between requests, as most servers do."""
    live = Receiver(keep_alive=True)
    await live.start()
    yield live
    await live.stop()


async def post(url: str) -> Outcome:
    item = Outgoing(uuid.uuid4(), b"{}")
    [outcome] = await send_all(url, [SECRET], [item], allow_private=True, tls=tls_context())
    assert outcome.status_code == 204, outcome.error
    return outcome


async def test_a_receivers_next_batch_reuses_the_connection(kept: Receiver) -> None:
    await post(kept.url())
    await post(kept.url())
    first, second = kept.requests
    assert first.connection == second.connection
    assert kept.closed == []


async def test_two_names_of_one_address_never_share_a_connection(kept: Receiver) -> None:
    """`127.1` resolves to 127.0.0.1 too: same address and port, another name."""
    await post(kept.url(host="127.0.0.1"))
    await post(kept.url(host="127.1"))
    await post(kept.url(host="127.0.0.1"))
    by_number, by_other_name, by_number_again = kept.requests
    assert by_other_name.headers["host"] == f"127.1:{kept.port}"
    assert by_number.connection == by_number_again.connection != by_other_name.connection


async def test_a_receivers_cookie_never_comes_back(kept: Receiver) -> None:
    """Clients keep no cookies: what one delivery was told to send back never reaches
    the next, whichever organization's it is."""
    kept.answer = lambda _request: Reply(headers={"Set-Cookie": "session=tenant-a; Path=/"})
    await post(kept.url())
    await post(kept.url())
    first, second = kept.requests
    assert first.connection == second.connection
    assert "cookie" not in second.headers


async def test_two_trust_stores_never_share_a_connection(tmp_path: Path) -> None:
    """The same https target with other certificate authorities trusted is another
    client: a connection checked against one set of authorities never serves the other."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server)
    secure = Receiver(tls=server, keep_alive=True)
    await secure.start()
    try:
        url = secure.url(host="localhost")
        item = Outgoing(uuid.uuid4(), b"{}")
        for trust in (tls_context(ca_file), ssl.create_default_context(cafile=ca_file)):
            for _ in range(2):
                [sent] = await send_all(url, [SECRET], [item], allow_private=True, tls=trust)
                assert sent.status_code == 204, sent.error
        one, one_again, other, other_again = secure.requests
        assert one.connection == one_again.connection
        assert other.connection == other_again.connection != one.connection
    finally:
        await connections.close_all()
        await secure.stop()


async def test_an_idle_client_is_closed_with_no_delivery_after_it(
    kept: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connections, "KEEPALIVE_SECONDS", 0.2)
    await post(kept.url())
    await kept.wait_closed(kept.requests[0].connection)


async def test_beyond_the_idle_limit_the_longest_idle_client_is_closed(
    kept: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connections, "IDLE_CLIENTS", 1)
    await post(kept.url(host="127.0.0.1"))
    await post(kept.url(host="127.1"))
    by_number, by_other_name = kept.requests
    await kept.wait_closed(by_number.connection)
    await post(kept.url(host="127.1"))
    assert kept.requests[2].connection == by_other_name.connection


async def test_an_idle_client_is_closed_and_one_in_use_is_not(
    kept: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connections, "KEEPALIVE_SECONDS", 0.2)
    slow = Receiver(keep_alive=True)
    slow.answer = lambda _request: Reply(delay=1.0)
    await slow.start()
    try:
        # Under way past the keep-alive, on a client of its own.
        answering = asyncio.create_task(post(slow.url()))
        await slow.wait_for(1)
        await post(kept.url())
        # The loop's reaper closes the client idle past the keep-alive, not the one
        # waiting on `slow`.
        await kept.wait_closed(kept.requests[0].connection)
        # Its request ends with its answer: the client was not closed under it.
        await answering
    finally:
        await slow.stop()


async def test_close_all_closes_the_loops_connections(kept: Receiver) -> None:
    await post(kept.url())
    await connections.close_all()
    connection = kept.requests[0].connection
    await kept.wait_closed(connection)
    # A later delivery makes a new client.
    await post(kept.url())
    assert kept.requests[1].connection != connection


async def test_close_all_leaves_a_request_under_way_to_finish(kept: Receiver) -> None:
    kept.answer = lambda _request: Reply(delay=0.5)
    answering = asyncio.create_task(post(kept.url()))
    await kept.wait_for(1)
    await connections.close_all()
    await answering
    await kept.wait_closed(kept.requests[0].connection)


async def test_a_batch_larger_than_httpx_keep_alive_cap_reuses_every_connection(
    kept: Receiver,
) -> None:
    """httpx keeps at most 20 connections alive by default and closes any that goes idle
    beyond that: the kept clients lift the cap, so a batch's connections all serve the
    next batch."""
    kept.answer = lambda _request: Reply(delay=0.2)
    items = [Outgoing(uuid.uuid4(), b"{}") for _ in range(30)]
    for _ in range(2):
        outcomes = await send_all(
            kept.url(), [SECRET], items, allow_private=True, tls=tls_context()
        )
        assert {outcome.status_code for outcome in outcomes} == {204}
    first, second = kept.requests[:30], kept.requests[30:]
    assert len({r.connection for r in first}) == 30
    assert {r.connection for r in second} == {r.connection for r in first}
