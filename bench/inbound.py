"""The inbound scenario: signed email deliveries to a channel, new tickets and threaded
replies, against our own create-ticket throughput in the same run.

The contract's target is a ratio of our own numbers (no ceiling app: the ceiling has no
channels): inbound accepted messages per second over plain creates per second, each
measured in alternating rounds on the same server. Every delivery is a distinct message
signed the Standard Webhooks way, prepared before its round (wrk cannot sign) and
handed to `wrk/scenario.lua` as a file: one line per request, `webhook-id`,
`webhook-timestamp`, `webhook-signature` and the JSON envelope, tab-separated.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from standardwebhooks import Webhook

ADDRESS = "support@bench.example"
# Distinct senders of new messages: each writes a handful per run, well inside the
# channel's default limit of new tickets per sender and hour.
SENDERS = 5000
# Tickets the reply rounds answer, round-robin (replies to one ticket queue on its row).
THREADS = 64
# Requests prepared per round, more than a round sends at any rate seen here.
PER_ROUND = 20_000


@dataclass
class Channel:
    id: uuid.UUID
    secret: str
    path: str


@dataclass
class Thread:
    message_id: str
    sender: str


async def create_channel(async_url: str, secret_key: str, organization: uuid.UUID) -> Channel:
    """An email channel of `organization`, made by the product's own service."""
    from app.channels import service as channels
    from app.channels.schemas import ChannelCreate
    from app.config import Settings
    from app.db.database import Database
    from app.models.channel import ChannelType

    settings = Settings(database_url=async_url, secret_key=secret_key, _env_file=None)  # type: ignore[call-arg]
    database = Database(settings)
    try:
        uow = database.tenant_unit(organization)
        try:
            created = await channels.create_channel(
                uow.session,
                ChannelCreate(type=ChannelType.EMAIL, name="Bench", address=ADDRESS),
            )
            channel = Channel(created.id, created.secret, f"/api/v1/inbound/email/{created.id}")
            await uow.commit()
        finally:
            await uow.close()
        return channel
    finally:
        await database.dispose()


def envelope(message_id: str, sender: str, **fields: Any) -> bytes:
    body = {
        "message_id": message_id,
        "from": sender,
        "to": ADDRESS,
        "subject": "Printer on fire",
        "text": "Smoke is coming out of tray 2. " * 8,
        **fields,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def new_message(run: str, i: int) -> bytes:
    return envelope(f"<{run}-{i}@bench.example>", f"sender-{i % SENDERS}@customers.example")


def reply_to(threads: list[Thread]) -> Callable[[str, int], bytes]:
    def build(run: str, i: int) -> bytes:
        thread = threads[i % len(threads)]
        return envelope(
            f"<{run}-{i}@bench.example>",
            thread.sender,
            subject="Re: Printer on fire",
            text="Still smoking. " * 8,
            in_reply_to=thread.message_id,
        )

    return build


def write_requests(path: Path, channel: Channel, build: Callable[[str, int], bytes]) -> None:
    """`PER_ROUND` deliveries of messages nobody sent before, signed now."""
    signer = Webhook(channel.secret)
    now = datetime.now(UTC)
    run = uuid.uuid4().hex
    with path.open("w") as lines:
        for i in range(PER_ROUND):
            body = build(run, i)
            webhook_id = f"msg_{run}_{i}"
            signature = signer.sign(webhook_id, now, body)
            lines.write(f"{webhook_id}\t{int(now.timestamp())}\t{signature}\t{body.decode()}\n")


def open_threads(base_url: str, channel: Channel) -> list[Thread]:
    """`THREADS` tickets opened through the channel, for the reply rounds to answer."""
    signer = Webhook(channel.secret)
    threads = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for i in range(THREADS):
            message_id = f"<thread-{uuid.uuid4().hex}@bench.example>"
            thread = Thread(message_id, f"thread-{i}@bench.example")
            body = envelope(thread.message_id, thread.sender)
            webhook_id = f"msg_{uuid.uuid4().hex}"
            response = client.post(
                channel.path,
                content=body,
                headers={
                    "webhook-id": webhook_id,
                    "webhook-timestamp": str(int(datetime.now(UTC).timestamp())),
                    "webhook-signature": signer.sign(webhook_id, datetime.now(UTC), body),
                    "content-type": "application/json",
                },
            )
            if response.status_code != 200 or response.json()["status"] != "created":
                raise SystemExit(f"opening a thread failed: {response.status_code} {response.text}")
            threads.append(thread)
    return threads


async def outcomes(dsn: str, channel: Channel, settle_seconds: float = 10.0) -> dict[str, int]:
    """How the stored deliveries ended: every one should be `created` or `threaded`.
    wrk's last round ends with requests in flight (stored, not yet placed): they are
    given `settle_seconds` to finish."""
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + settle_seconds
        while True:
            rows = await connection.fetch(
                "SELECT status, count(*) AS n FROM inbound_messages WHERE channel_id = $1 "
                "GROUP BY status",
                channel.id,
            )
            statuses: dict[str, int] = {row["status"]: row["n"] for row in rows}
            if "received" not in statuses or time.monotonic() > deadline:
                return statuses
            await asyncio.sleep(0.5)
    finally:
        await connection.close()


def report(rows: dict[str, dict[str, Any]], statuses: dict[str, int]) -> str:
    create = rows["create"]["requests_per_second"]
    lines = [
        "### Inbound channels",
        "",
        "Signed JSON email deliveries to one channel (new tickets from 5,000 senders; "
        f"replies threaded into {THREADS} tickets by In-Reply-To) against our own create, "
        "alternating rounds on the same server; target >= 0.5.",
        "",
        "| scenario | req/s | p50 ms | p99 ms | errors | / create |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in rows.items():
        ratio = m["requests_per_second"] / create if create else 0.0
        lines.append(
            f"| {name} | {m['requests_per_second']:,.0f} | {m['p50_ms']:.1f} | "
            f"{m['p99_ms']:.1f} | {m['errors']} | {ratio:.2f} |"
        )
    stored = ", ".join(f"{status} {n:,}" for status, n in sorted(statuses.items()))
    lines += ["", f"Stored deliveries: {stored}."]
    return "\n".join(lines) + "\n"
