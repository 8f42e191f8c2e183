"""HTTP clients kept between deliveries: one per pinned target, so a receiver's next
batch goes over the connections the last one opened (TLS included) instead of a new
client, connection and handshake each time.

A client serves exactly one target: the address `targets.pinned` checked, the `Host`
the request names, and the certificate authorities it trusts. Two names that resolve to
one address never share a connection, so a request never travels over a connection made
for another name; a name that resolves elsewhere gets a new client, whose connections go
to the newly checked address. Clients keep no cookies: a receiver's `Set-Cookie` never
comes back with a later delivery, whichever organization sends it.

Clients belong to the event loop they were made on (their connections do; a process
runs one loop, tests may run several). A client nobody is using is closed within twice
`KEEPALIVE_SECONDS` of its last request (a task of the loop looks every
`KEEPALIVE_SECONDS` while any client is open; past one, httpx reuses none of its
connections), or at once when more than `IDLE_CLIENTS` are idle; never while a request
is under way on it. `close_all` closes them at shutdown: the idle ones at once, the
others as their requests end.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import NamedTuple

import httpx

from app.webhooks.targets import Pinned

# Below the keep-alive timeout of common receivers (gunicorn 2 s, uvicorn and Node 5 s),
# so a connection is not reused just as its server closes it.
KEEPALIVE_SECONDS = 1.5
IDLE_CLIENTS = 64


class _Key(NamedTuple):
    """What a client serves: the checked address (as an origin), the URL's name (`Host`
    and SNI), and the trusted CAs."""

    origin: str
    host: str
    tls: ssl.SSLContext


@dataclass(eq=False)
class _Entry:
    client: httpx.AsyncClient
    users: int = 0
    idle_since: float = field(default_factory=time.monotonic)
    # Taken out of the pool while in use (`close_all`): closed when its last user is done.
    retired: bool = False


class _Clients:
    """The clients of one event loop."""

    def __init__(self) -> None:
        self.entries: dict[_Key, _Entry] = {}
        self.reaper: asyncio.Task[None] | None = None
        self.closing: set[asyncio.Task[None]] = set()

    def take(self, key: _Key) -> _Entry:
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = _Entry(_new_client(key.tls))
        entry.users += 1
        if self.reaper is None:
            self.reaper = asyncio.get_running_loop().create_task(self._reap_while_open())
        return entry

    def release(self, entry: _Entry) -> None:
        entry.users -= 1
        entry.idle_since = time.monotonic()
        if entry.retired and entry.users == 0:
            self._close_later(entry.client)
        elif len(self.entries) > IDLE_CLIENTS:
            self.reap()

    def reap(self) -> None:
        """Close the clients idle past the keep-alive, and the longest idle beyond
        `IDLE_CLIENTS`."""
        idle = sorted(
            (key for key, entry in self.entries.items() if entry.users == 0),
            key=lambda key: self.entries[key].idle_since,
        )
        expired = time.monotonic() - KEEPALIVE_SECONDS
        surplus = len(idle) - IDLE_CLIENTS
        for position, key in enumerate(idle):
            if position < surplus or self.entries[key].idle_since <= expired:
                self._close_later(self.entries.pop(key).client)

    async def close_all(self) -> None:
        if self.reaper is not None:
            self.reaper.cancel()
            self.reaper = None
        entries, self.entries = self.entries, {}
        for entry in entries.values():
            if entry.users:
                entry.retired = True
            else:
                self._close_later(entry.client)
        await asyncio.gather(*self.closing)

    async def _reap_while_open(self) -> None:
        me = asyncio.current_task()
        try:
            while self.entries:
                await asyncio.sleep(KEEPALIVE_SECONDS)
                self.reap()
        finally:
            if self.reaper is me:
                self.reaper = None

    def _close_later(self, client: httpx.AsyncClient) -> None:
        # In a task of its own: a failure to close is nobody's request's failure.
        task = asyncio.get_running_loop().create_task(_close_quietly(client))
        self.closing.add(task)
        task.add_done_callback(self.closing.discard)


def _new_client(tls: ssl.SSLContext) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        follow_redirects=False,
        trust_env=False,
        verify=tls,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        # No cap on connections: one client serves every job of the process sending to
        # its target, whose concurrency the job slots and batch size bound already; a
        # cap would queue POSTs against their deadline, and httpcore closes any
        # connection that goes idle while more than its keep-alive cap are open.
        limits=httpx.Limits(
            max_connections=None, max_keepalive_connections=None, keepalive_expiry=KEEPALIVE_SECONDS
        ),
    )


async def _close_quietly(client: httpx.AsyncClient) -> None:
    with contextlib.suppress(Exception):
        await client.aclose()


_by_loop: dict[asyncio.AbstractEventLoop, _Clients] = {}


def _loop_clients() -> _Clients:
    loop = asyncio.get_running_loop()
    for other in list(_by_loop):
        if other.is_closed():
            _by_loop.pop(other, None)
    return _by_loop.setdefault(loop, _Clients())


@asynccontextmanager
async def client_for(target: Pinned, tls: ssl.SSLContext) -> AsyncIterator[httpx.AsyncClient]:
    """The client of `target` (made on first use), for the `async with` block. Requests
    set their own timeouts."""
    clients = _loop_clients()
    origin = f"{target.url.scheme}://{target.url.netloc.decode('ascii')}"
    entry = clients.take(_Key(origin, target.host_header, tls))
    try:
        yield entry.client
    finally:
        clients.release(entry)


async def close_all() -> None:
    """Close the running loop's clients: the idle ones now, the others as their requests
    end (shutdown)."""
    await _loop_clients().close_all()
