"""Realistic data, fast: PostgreSQL COPY (binary, through asyncpg) with a progress bar.

Per organization: 1 admin, 2 managers, 10 agents, 50 customers, 2 departments; each
ticket gets 2 comments (one internal), a history row and a change-feed row, as the API
would have written them. Runs as the database owner (a superuser in the bench), which
row-level security does not restrict."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from uuid_utils.compat import uuid7

SUBJECTS = [
    "Printer jammed on floor {n}",
    "VPN drops every hour",
    "Invoice {n} shows the wrong amount",
    "Cannot log in after password reset",
    "Boiler makes a loud noise",
    "Refund for duplicate charge {n}",
    "Wi-Fi router keeps rebooting",
    "Technician did not arrive",
]
STATUSES = ["new", "open", "pending", "resolved", "closed"]
PRIORITIES = ["low", "medium", "high", "urgent"]
CHANNELS = ["web", "email", "chat", "phone", "api"]
TAGS = ["billing", "login", "hardware", "vip", "mobile", "network"]


@dataclass
class SeededOrg:
    id: uuid.UUID
    slug: str
    agents: list[uuid.UUID] = field(default_factory=list)
    customers: list[uuid.UUID] = field(default_factory=list)
    ticket_ids: list[uuid.UUID] = field(default_factory=list)
    open_ticket_ids: list[uuid.UUID] = field(default_factory=list)


async def seed(
    dsn: str,
    *,
    organizations: int,
    tickets_per_org: int,
    password_hash: str,
    progress: Callable[[str, int], None],
    keep_ids_for: int = 0,
    seed_value: int = 7,
) -> list[SeededOrg]:
    """Returns the organizations; ticket ids are kept for the first `keep_ids_for`."""
    rng = random.Random(seed_value)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET synchronous_commit = off")
        orgs = await _organizations(conn, organizations, password_hash)
        progress("organizations", organizations)
        now = datetime.now(UTC)
        for index, org in enumerate(orgs):
            await _tickets(conn, org, tickets_per_org, now, rng, keep=index < keep_ids_for)
            progress("tickets", tickets_per_org)
        await conn.execute("ANALYZE")
        return orgs
    finally:
        await conn.close()


async def _organizations(
    conn: asyncpg.Connection, count: int, password_hash: str
) -> list[SeededOrg]:
    orgs = [SeededOrg(id=uuid7(), slug=f"bench-{n:04d}") for n in range(count)]
    await conn.copy_records_to_table(
        "organizations",
        records=[(o.id, f"Bench {o.slug}", o.slug, "{}") for o in orgs],
        columns=["id", "name", "slug", "settings"],
    )
    users: list[tuple[Any, ...]] = []
    departments: list[tuple[Any, ...]] = []
    for org in orgs:
        departments += [(uuid7(), org.id, "Support"), (uuid7(), org.id, "Field Service")]
        for role, how_many in (("admin", 1), ("manager", 2), ("agent", 10), ("customer", 50)):
            for n in range(how_many):
                user_id = uuid7()
                users.append(
                    (user_id, org.id, f"{role}{n}@{org.slug}.example.com", password_hash, role)
                )
                if role == "agent":
                    org.agents.append(user_id)
                elif role == "customer":
                    org.customers.append(user_id)
    await conn.copy_records_to_table(
        "departments", records=departments, columns=["id", "organization_id", "name"]
    )
    await conn.copy_records_to_table(
        "users",
        records=users,
        columns=["id", "organization_id", "email", "password_hash", "role"],
    )
    return orgs


def _ticket_rows(
    org: SeededOrg, count: int, now: datetime, rng: random.Random, keep: bool
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]], tuple[Any, ...], tuple[Any, ...]]]:
    for n in range(1, count + 1):
        ticket_id = uuid7()
        created = now - timedelta(minutes=count - n)
        status = rng.choice(STATUSES)
        agent = rng.choice([*org.agents, None])
        customer = rng.choice(org.customers)
        if keep:
            org.ticket_ids.append(ticket_id)
            if status == "open":
                org.open_ticket_ids.append(ticket_id)
        resolved = created + timedelta(hours=2) if status in ("resolved", "closed") else None
        ticket = (
            ticket_id,
            org.id,
            f"TK-{n:06d}",
            rng.choice(SUBJECTS).format(n=n),
            "Reported by the customer through the portal. Details follow in the thread.",
            status,
            rng.choice(PRIORITIES),
            rng.choice(CHANNELS),
            customer,
            agent,
            json.dumps(sorted(rng.sample(TAGS, k=rng.randint(0, 2)))),
            rng.random() < 0.05,
            resolved,
            created + timedelta(hours=3) if status == "closed" else None,
            created,
            created,
        )
        comments = [
            (uuid7(), org.id, ticket_id, customer, "Any news on this?", "public", created),
            (
                uuid7(),
                org.id,
                ticket_id,
                agent or org.agents[0],
                "Looking into it.",
                "internal",
                created,
            ),
        ]
        history = (uuid7(), org.id, ticket_id, None, "ticket", None, f"TK-{n:06d}", created)
        change = (uuid7(), org.id, ticket_id, "created", 1, created)
        yield ticket, comments, history, change


async def _tickets(
    conn: asyncpg.Connection,
    org: SeededOrg,
    count: int,
    now: datetime,
    rng: random.Random,
    *,
    keep: bool,
) -> None:
    tickets, comments, history, changes = [], [], [], []
    for ticket, ticket_comments, history_row, change in _ticket_rows(org, count, now, rng, keep):
        tickets.append(ticket)
        comments += ticket_comments
        history.append(history_row)
        changes.append(change)
    await conn.copy_records_to_table(
        "tickets",
        records=tickets,
        columns=[
            "id",
            "organization_id",
            "ticket_number",
            "subject",
            "description",
            "status",
            "priority",
            "channel",
            "customer_id",
            "assigned_agent_id",
            "tags",
            "sla_breach",
            "resolved_at",
            "closed_at",
            "created_at",
            "updated_at",
        ],
    )
    await conn.copy_records_to_table(
        "ticket_comments",
        records=comments,
        columns=[
            "id",
            "organization_id",
            "ticket_id",
            "author_id",
            "content",
            "comment_type",
            "created_at",
        ],
    )
    await conn.copy_records_to_table(
        "ticket_history",
        records=history,
        columns=[
            "id",
            "organization_id",
            "ticket_id",
            "user_id",
            "field",
            "old_value",
            "new_value",
            "created_at",
        ],
    )
    await conn.copy_records_to_table(
        "ticket_changes",
        records=changes,
        columns=["id", "organization_id", "ticket_id", "change", "xact_id", "created_at"],
    )
    await conn.execute(
        "INSERT INTO sequence_counters (id, organization_id, name, value) "
        "VALUES ($1, $2, 'ticket', $3)",
        uuid7(),
        org.id,
        count,
    )
