"""HTTP clients kept between deliveries: one per pinned target, so a receiver's next
batch reuses the open connections (and TLS sessions) of the last one instead of
connecting again — a client, a connection and a TLS handshake a batch cost more CPU than
the POSTs themselves.

A client serves exactly one target: the address `targets.pinned` checked, the `Host`
the request names, and the certificate authorities it trusts. Two names that resolve to
one address never share a connection, so a request never travels over a connection (or
a TLS session) made for another name; a name that resolves elsewhere gets a new client,
whose connections go to the newly checked address.

Clients belong to the event loop they were made on (their connections do). A client
nobody is using is closed once its connections have idled past `KEEPALIVE_SECONDS`, or
when more than `IDLE_CLIENTS` targets are idle; `close_all` closes the loop's clients
at shutdown.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx

from app.webhooks.targets import Pinned

# Below the keep-alive timeout of common receivers (gunicorn 2 s, uvicorn and Node 5 s),
# so a connection is not reused just as its server closes it.
KEEPALIVE_SECONDS = 1.5
IDLE_CLIENTS = 64

_Key = tuple[str, str, ssl.SSLContext]


@dataclass(eq=False)
class _Entry:
    client: httpx.AsyncClient
    users: int = 0
    idle_since: float = field(default_factory=time.monotonic)


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[_Key, _Entry]] = (
    weakref.WeakKeyDictionary()
)


def _loop_clients() -> dict[_Key, _Entry]:
    return _clients.setdefault(asyncio.get_running_loop(), {})


@asynccontextmanager
async def client_for(target: Pinned, tls: ssl.SSLContext) -> AsyncIterator[httpx.AsyncClient]:
    """The client of `target` (made on first use), for the `async with` block. Requests
    set their own timeouts."""
    clients = _loop_clients()
    key = (f"{target.url.scheme}://{target.url.netloc.decode('ascii')}", target.host_header, tls)
    entry = clients.get(key)
    if entry is None:
        entry = clients[key] = _Entry(
            httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,
                verify=tls,
                limits=httpx.Limits(keepalive_expiry=KEEPALIVE_SECONDS),
            )
        )
    entry.users += 1
    try:
        yield entry.client
    finally:
        entry.users -= 1
        entry.idle_since = time.monotonic()
        await _close_idle(clients)


async def _close_idle(clients: dict[_Key, _Entry]) -> None:
    # Chosen and removed before the first await, so no other task takes one meanwhile.
    idle = sorted(
        (key for key, entry in clients.items() if entry.users == 0),
        key=lambda key: clients[key].idle_since,
    )
    expired = time.monotonic() - KEEPALIVE_SECONDS
    surplus = len(idle) - IDLE_CLIENTS
    closing = [
        clients.pop(key).client
        for position, key in enumerate(idle)
        if position < surplus or clients[key].idle_since < expired
    ]
    for client in closing:
        await client.aclose()


async def close_all() -> None:
    """Close every client of the running loop (shutdown)."""
    clients = _loop_clients()
    while clients:
        _key, entry = clients.popitem()
        await entry.client.aclose()
