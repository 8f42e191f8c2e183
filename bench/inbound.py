"""The inbound scenario: signed email deliveries to channels, new tickets and threaded
replies, against our own create-ticket throughput in the same run.

The contract's target is a ratio of our own numbers (no ceiling app: the ceiling has no
channels): inbound accepted messages per second over plain creates per second, each
measured in alternating rounds on the same server. Both sides spread over the same
organizations — one channel each, the creates by a token of each — and are measured
once more within one organization, where every new ticket of either kind waits for the
organization's number. Every delivery is a distinct message signed the Standard
Webhooks way, prepared before its round (wrk cannot sign) and handed to
`wrk/scenario.lua` as a file: one line per request, `webhook-id`, `webhook-timestamp`,
`webhook-signature`, the channel's inbound path and the JSON envelope, tab-separated.
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
# Mail each channel received before the run (see `seed_history`).
HISTORY = 2000


@dataclass
class Channel:
    id: uuid.UUID
    secret: str
    path: str


@dataclass
class Thread:
    channel: Channel
    message_id: str
    sender: str


# The delivery `i` of a round (`run` names the round): the channel it goes to, its body.
Build = Callable[[str, int], tuple[Channel, bytes]]


async def create_channels(
    async_url: str, secret_key: str, organizations: list[uuid.UUID]
) -> list[Channel]:
    """An email channel of each organization, made by the product's own service."""
    from app.channels import service as channels
    from app.channels.schemas import ChannelCreate
    from app.config import Settings
    from app.db.database import Database
    from app.models.channel import ChannelType

    settings = Settings(database_url=async_url, secret_key=secret_key, _env_file=None)  # type: ignore[call-arg]
    database = Database(settings)
    made = []
    try:
        for organization in organizations:
            uow = database.tenant_unit(organization)
            try:
                created = await channels.create_channel(
                    uow.session,
                    ChannelCreate(type=ChannelType.EMAIL, name="Bench", address=ADDRESS),
                )
                path = f"/api/v1/inbound/email/{created.id}"
                made.append(Channel(created.id, created.secret, path))
                await uow.commit()
            finally:
                await uow.close()
        return made
    finally:
        await database.dispose()


async def seed_history(dsn: str, channels: list[Channel], per_channel: int = HISTORY) -> None:
    """Mail each channel received before the run — inbox rows that opened seeded
    tickets, from 500 senders, and their registered Message-IDs — then fresh statistics.
    Without it the inbox tables start empty, and the first plans PostgreSQL makes for
    the run's prepared statements (and for its foreign-key checks) are for empty tables:
    they scan, and keep scanning a growing table until autovacuum analyzes it."""
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        async with connection.transaction():
            await connection.execute(
                """
                WITH seeded AS (
                    SELECT organization_id, array_agg(id) AS ids
                    FROM tickets GROUP BY organization_id
                ), stored AS (
                    INSERT INTO inbound_messages (id, organization_id, channel_id, external_id,
                        message_id, content_type, raw_body, status, attempts, ticket_id,
                        thread_reason, sender_email, subject, processed_at, created_at,
                        updated_at)
                    SELECT gen_random_uuid(), c.organization_id, c.id,
                        'history-' || c.id || '-' || g || '@bench.example',
                        'history-' || c.id || '-' || g || '@bench.example',
                        'application/json', '\\x7b7d'::bytea, 'created', 1,
                        s.ids[1 + g % array_length(s.ids, 1)], 'new',
                        'past-' || (g % 500) || '@customers.example', 'Printer on fire',
                        now() - g * interval '1 minute', now() - g * interval '1 minute',
                        now() - g * interval '1 minute'
                    FROM channels c
                    JOIN seeded s ON s.organization_id = c.organization_id
                    CROSS JOIN generate_series(1, $2) AS g
                    WHERE c.id = ANY($1::uuid[])
                    RETURNING id, organization_id, message_id, ticket_id, created_at
                )
                INSERT INTO ticket_message_ids (id, organization_id, message_id, ticket_id,
                    inbound_message_id, direction, created_at)
                SELECT gen_random_uuid(), organization_id, message_id, ticket_id, id,
                    'inbound', created_at
                FROM stored
                """,
                [channel.id for channel in channels],
                per_channel,
            )
        await connection.execute("ANALYZE inbound_messages, ticket_message_ids, users")
    finally:
        await connection.close()


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


def new_messages(channels: list[Channel]) -> Build:
    """New tickets, each from one of `SENDERS` senders, to the channels in turn."""

    def build(run: str, i: int) -> tuple[Channel, bytes]:
        sender = f"sender-{i % SENDERS}@customers.example"
        return channels[i % len(channels)], envelope(f"<{run}-{i}@bench.example>", sender)

    return build


def reply_to(threads: list[Thread]) -> Build:
    def build(run: str, i: int) -> tuple[Channel, bytes]:
        thread = threads[i % len(threads)]
        return thread.channel, envelope(
            f"<{run}-{i}@bench.example>",
            thread.sender,
            subject="Re: Printer on fire",
            text="Still smoking. " * 8,
            in_reply_to=thread.message_id,
        )

    return build


def write_requests(path: Path, build: Build) -> None:
    """`PER_ROUND` deliveries of messages nobody sent before, signed now."""
    signers: dict[uuid.UUID, Webhook] = {}
    now = datetime.now(UTC)
    run = uuid.uuid4().hex
    with path.open("w") as lines:
        for i in range(PER_ROUND):
            channel, body = build(run, i)
            signer = signers.setdefault(channel.id, Webhook(channel.secret))
            webhook_id = f"msg_{run}_{i}"
            signature = signer.sign(webhook_id, now, body)
            lines.write(
                f"{webhook_id}\t{int(now.timestamp())}\t{signature}\t{channel.path}\t"
                f"{body.decode()}\n"
            )


def open_threads(base_url: str, channels: list[Channel]) -> list[Thread]:
    """`THREADS` tickets opened through the channels in turn, for the reply rounds to
    answer."""
    threads = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for i in range(THREADS):
            channel = channels[i % len(channels)]
            signer = Webhook(channel.secret)
            message_id = f"<thread-{uuid.uuid4().hex}@bench.example>"
            thread = Thread(channel, message_id, f"thread-{i}@bench.example")
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


async def outcomes(
    dsn: str, channels: list[Channel], settle_seconds: float = 10.0
) -> dict[str, int]:
    """How the stored deliveries ended: every one should be `created` or `threaded`.
    wrk's last round ends with requests in flight (stored, not yet placed): they are
    given `settle_seconds` to finish."""
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + settle_seconds
        while True:
            rows = await connection.fetch(
                "SELECT status, count(*) AS n FROM inbound_messages "
                "WHERE channel_id = ANY($1::uuid[]) AND external_id NOT LIKE 'history-%' "
                "GROUP BY status",
                [channel.id for channel in channels],
            )
            statuses: dict[str, int] = {row["status"]: row["n"] for row in rows}
            if "received" not in statuses or time.monotonic() > deadline:
                return statuses
            await asyncio.sleep(0.5)
    finally:
        await connection.close()


# Each row's baseline: the create measured over the same organizations.
BASELINES = {
    "create": "create",
    "inbound_new": "create",
    "inbound_reply": "create",
    "create_one_org": "create_one_org",
    "inbound_new_one_org": "create_one_org",
}
LABELS = {
    "create": "create",
    "inbound_new": "inbound, new tickets",
    "inbound_reply": "inbound, threaded replies",
    "create_one_org": "create, one organization",
    "inbound_new_one_org": "inbound, new tickets, one organization",
}


def ratios(rows: dict[str, dict[str, Any]]) -> dict[str, float]:
    found = {}
    for name, row in rows.items():
        baseline = rows[BASELINES[name]]["requests_per_second"]
        found[name] = row["requests_per_second"] / baseline if baseline else 0.0
    return found


def report(rows: dict[str, dict[str, Any]], statuses: dict[str, int], organizations: int) -> str:
    of = ratios(rows)
    lines = [
        "### Inbound channels",
        "",
        f"Signed JSON email deliveries to a channel in each of {organizations} organizations "
        f"(new tickets from {SENDERS:,} senders; replies threaded into {THREADS} tickets by "
        "In-Reply-To) against our own create in the same organizations, alternating rounds "
        "on the same server; then new tickets and creates within one organization, where "
        "each waits for the organization's number. Target >= 0.5.",
        "",
        "| scenario | req/s | p50 ms | p99 ms | errors | / create |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in rows.items():
        lines.append(
            f"| {LABELS[name]} | {m['requests_per_second']:,.0f} | {m['p50_ms']:.1f} | "
            f"{m['p99_ms']:.1f} | {m['errors']} | {of[name]:.2f} |"
        )
    stored = ", ".join(f"{status} {n:,}" for status, n in sorted(statuses.items()))
    lines += ["", f"Stored deliveries: {stored}."]
    return "\n".join(lines) + "\n"
