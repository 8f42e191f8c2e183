"""One POST per delivery: the stored body as is, signed the Standard Webhooks way over
those exact bytes, to the address `targets.pinned` checked. Nothing here touches the
database: the delivery job calls it between the transaction that leases the deliveries
and the one that records what happened."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from app.webhooks.connections import client_for
from app.webhooks.schedule import retry_after_seconds
from app.webhooks.targets import Pinned, TargetRefused, pinned

TIMEOUT_SECONDS = 10.0
EXCERPT_BYTES = 1024
USER_AGENT = "helpdesk-webhooks/1.0"


@dataclass(frozen=True, slots=True)
class Outgoing:
    delivery_id: uuid.UUID
    body: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery_id: uuid.UUID
    status_code: int | None
    error: str | None
    duration_ms: int | None
    excerpt: str | None
    retry_after: float | None
    headers: dict[str, str]

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def signature(secrets: Sequence[str], msg_id: str, at: datetime, body: bytes) -> str:
    """`v1,<base64>` per secret, space-separated: during a rotation's overlap the
    receiver finds the one it knows."""
    return " ".join(Webhook(secret).sign(msg_id, at, body) for secret in secrets)


def headers_for(secrets: Sequence[str], msg_id: str, at: datetime, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature(secrets, msg_id, at, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


async def send_all(
    url: str,
    secrets: Sequence[str],
    items: Sequence[Outgoing],
    *,
    allow_private: bool,
    tls: ssl.SSLContext,
    seconds_per_post: float = TIMEOUT_SECONDS,
) -> list[Outcome]:
    """POST every item to `url` at once (they are of different tickets, so no order
    holds between them); one resolution for the batch, over the target's kept
    connections (`connections`). Each POST gets `seconds_per_post` in all, from
    connecting to its answer's excerpt."""
    try:
        target = await pinned(url, allow_private=allow_private)
    except TargetRefused as refused:
        return [
            Outcome(item.delivery_id, None, f"refused: {refused}", None, None, None, {})
            for item in items
        ]
    # A task group: should one POST fail unexpectedly, the others are cancelled and
    # awaited before the client is given back, so none runs on after its release.
    async with client_for(target, tls) as client, asyncio.TaskGroup() as posts:
        sending = [
            posts.create_task(_send(client, target, secrets, item, seconds_per_post))
            for item in items
        ]
    return [task.result() for task in sending]


async def _send(
    client: httpx.AsyncClient,
    target: Pinned,
    secrets: Sequence[str],
    item: Outgoing,
    seconds: float,
) -> Outcome:
    # The wall clock, whatever clock schedules the retries: receivers reject a
    # timestamp more than a few minutes off theirs.
    now = datetime.now(UTC)
    # The delivery's id is the message id: the same on every retry and replay, so a
    # receiver that saw the message already can tell.
    headers = headers_for(secrets, str(item.delivery_id), now, item.body)
    sent = {name: value for name, value in headers.items() if name != "webhook-signature"}
    headers["host"] = target.host_header
    request = client.build_request(
        "POST",
        target.url,
        content=item.body,
        headers=headers,
        extensions=target.extensions,
        timeout=seconds,
    )
    started = time.perf_counter()
    # httpx's timeout bounds each step (connect, each read); the deadline bounds the
    # whole, so a receiver trickling its answer cannot hold a worker's slot longer.
    deadline = asyncio.timeout(seconds)
    try:
        async with deadline:
            response = await client.send(request, stream=True)
    except (httpx.TimeoutException, TimeoutError) as exc:
        if isinstance(exc, TimeoutError) and not deadline.expired():
            raise
        error = f"timed out after {seconds:g} s"
        return Outcome(item.delivery_id, None, error, _since(started), None, None, sent)
    except (httpx.HTTPError, OSError) as exc:
        # OSError: a TLS failure after the handshake (a corrupt record) reaches here as
        # the ssl module raised it, not as an httpx error.
        error = f"{type(exc).__name__}: {exc}"[:1000]
        return Outcome(item.delivery_id, None, error, _since(started), None, None, sent)
    # The status is in: the receiver has answered. Its body is only an excerpt for the
    # record, read within what is left of the deadline; a body cut short keeps the
    # answer (a 2xx that trickles its body still took the event).
    excerpt = bytearray()
    try:
        async with asyncio.timeout_at(deadline.when()):
            async for chunk in response.aiter_bytes():
                excerpt += chunk
                if len(excerpt) >= EXCERPT_BYTES:
                    break
    except (httpx.HTTPError, OSError):  # TimeoutError is an OSError
        pass
    finally:
        with contextlib.suppress(httpx.HTTPError, OSError):
            await response.aclose()
    text = bytes(excerpt[:EXCERPT_BYTES]).decode("utf-8", errors="replace").replace("\x00", "")
    return Outcome(
        item.delivery_id,
        response.status_code,
        None,
        _since(started),
        text,
        retry_after_seconds(response.headers.get("retry-after"), now),
        sent,
    )


def _since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)
