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


# The journal rows a ticket's creation writes, as both seeders copy them.
HISTORY_COLUMNS = [
    "id",
    "organization_id",
    "ticket_id",
    "user_id",
    "field",
    "old_value",
    "new_value",
    "created_at",
]
CHANGE_COLUMNS = ["id", "organization_id", "ticket_id", "change", "xact_id", "created_at"]


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
        columns=HISTORY_COLUMNS,
    )
    await conn.copy_records_to_table(
        "ticket_changes",
        records=changes,
        columns=CHANGE_COLUMNS,
    )
    await conn.execute(
        "INSERT INTO sequence_counters (id, organization_id, name, value) "
        "VALUES ($1, $2, 'ticket', $3)",
        uuid7(),
        org.id,
        count,
    )


# --- SLA timers (`bench.sla_timers`) -------------------------------------------------------


@dataclass
class SLAOrg:
    """An organization of the SLA timer scenario: its customers and its one policy."""

    id: uuid.UUID
    customers: list[uuid.UUID]
    policy_id: uuid.UUID


async def seed_sla_organizations(
    conn: asyncpg.Connection,
    count: int,
    *,
    password_hash: str,
    first_response_minutes: int,
    resolution_minutes: int,
) -> list[SLAOrg]:
    """`count` organizations (users as `seed` makes them) with one active 24/7 policy
    each (no calendar, no conditions, no escalations): every ticket matches it."""
    orgs = await _organizations(conn, count, password_hash)
    now = datetime.now(UTC)
    policies = [
        (
            uuid7(),
            org.id,
            "Bench 24/7",
            0,
            True,
            first_response_minutes,
            resolution_minutes,
            "[]",
            now,
            now,
        )
        for org in orgs
    ]
    await conn.copy_records_to_table(
        "sla_policies",
        records=policies,
        columns=[
            "id",
            "organization_id",
            "name",
            "position",
            "is_active",
            "first_response_minutes",
            "resolution_minutes",
            "escalations",
            "created_at",
            "updated_at",
        ],
    )
    return [
        SLAOrg(org.id, org.customers, policy[0]) for org, policy in zip(orgs, policies, strict=True)
    ]


async def seed_sla_tickets(
    conn: asyncpg.Connection,
    orgs: list[SLAOrg],
    due: list[datetime],
    *,
    first_response_minutes: int,
    resolution_minutes: int,
    subject: str,
    rng: random.Random,
    chunk: int = 20_000,
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """One open ticket per instant of `due` (its first-response breach), organization
    by organization in turn, as `app.tickets.service.open_ticket` writes a ticket that a
    customer opened on the portal `first_response_minutes` before it: the row with its
    SLA fields, the two clock starts of its log, its history row, its change-feed row
    and its `ticket.created` event (relayed long ago). The numbers continue each
    organization's counter. Returns (organization, ticket) per ticket, in `due` order."""
    counters = dict(
        await conn.fetch(
            "SELECT organization_id, value FROM sequence_counters WHERE name = 'ticket'"
        )
    )
    numbers = {org.id: int(counters.get(org.id, 0)) for org in orgs}
    first_response = timedelta(minutes=first_response_minutes)
    resolution = timedelta(minutes=resolution_minutes)
    made: list[tuple[uuid.UUID, uuid.UUID]] = []
    for begin in range(0, len(due), chunk):
        tickets, events, history, changes, outbox = [], [], [], [], []
        for i in range(begin, min(begin + chunk, len(due))):
            org = orgs[i % len(orgs)]
            numbers[org.id] += 1
            number = f"TK-{numbers[org.id]:06d}"
            ticket_id = uuid7()
            created = due[i] - first_response
            customer = rng.choice(org.customers)
            made.append((org.id, ticket_id))
            tickets.append(
                (
                    ticket_id,
                    org.id,
                    number,
                    f"{subject} {i}",
                    "Reported by the customer through the portal.",
                    "new",
                    "medium",
                    "web",
                    customer,
                    customer,
                    "[]",
                    "{}",
                    org.policy_id,
                    "first_response_due",
                    False,
                    due[i],
                    created + resolution,
                    due[i],
                    created,
                    created,
                )
            )
            events += [
                (uuid7(), org.id, ticket_id, "start", target, 0, created, created)
                for target in ("first_response", "resolution")
            ]
            history.append((uuid7(), org.id, ticket_id, customer, "ticket", None, number, created))
            changes.append((uuid7(), org.id, ticket_id, "created", 1, created))
            outbox.append(
                (
                    uuid7(),
                    org.id,
                    "ticket.created",
                    "ticket",
                    ticket_id,
                    json.dumps({"id": str(ticket_id), "ticket_number": number}),
                    created + timedelta(seconds=1),
                    created,
                )
            )
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
                "created_by_id",
                "tags",
                "custom_fields",
                "sla_policy_id",
                "sla_status",
                "sla_breach",
                "first_response_due_at",
                "resolution_due_at",
                "sla_next_deadline",
                "created_at",
                "updated_at",
            ],
        )
        await conn.copy_records_to_table(
            "ticket_sla_events",
            records=events,
            columns=[
                "id",
                "organization_id",
                "ticket_id",
                "kind",
                "target",
                "cycle",
                "at",
                "created_at",
            ],
        )
        await conn.copy_records_to_table(
            "ticket_history",
            records=history,
            columns=HISTORY_COLUMNS,
        )
        await conn.copy_records_to_table(
            "ticket_changes",
            records=changes,
            columns=CHANGE_COLUMNS,
        )
        await conn.copy_records_to_table(
            "outbox_events",
            records=outbox,
            columns=[
                "id",
                "organization_id",
                "event_type",
                "aggregate_type",
                "aggregate_id",
                "payload",
                "dispatched_at",
                "created_at",
            ],
        )
    await conn.executemany(
        "INSERT INTO sequence_counters (id, organization_id, name, value) "
        "VALUES ($1, $2, 'ticket', $3) "
        "ON CONFLICT (organization_id, name) DO UPDATE SET value = excluded.value",
        [(uuid7(), org_id, value) for org_id, value in numbers.items()],
    )
    return made
