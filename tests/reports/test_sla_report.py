"""GET /reports/sla: the population (live tickets of the organization an SLA policy
measures, created in the half-open range), each grouping with its keys, labels and
order, nearest-rank percentiles and compliance against hand-computed figures, the range
and parameter checks, and who may read it.

Tickets are opened through the API; the figures a report reads (creation instant, SLA
policy, breach, times to first response and resolution) are then written straight to
their rows, so every expected value is known."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.db.database import Database
from app.models.ticket import Ticket
from tests.support.api import field_locs, problem
from tests.support.identity import API, Actor, Tenant
from tests.support.sla import add_policy
from tests.support.tickets import TICKETS, create, user_of

REPORT = f"{API}/reports/sla"
BASE = datetime(2025, 3, 1, tzinfo=UTC)
DAY = {"from": "2025-03-01T00:00:00Z", "to": "2025-03-02T00:00:00Z"}
NOTHING = {"median": None, "p90": None}


# --- helpers ------------------------------------------------------------------------


async def stamp(database: Database, ticket_id: str, **values: Any) -> None:
    """Write a ticket's columns as the SLA engine would have left them."""
    async with database.system_session() as session:
        await session.execute(
            sa.update(Ticket).where(Ticket.id == uuid.UUID(ticket_id)).values(**values)
        )
        await session.commit()


async def measured(
    client: httpx.AsyncClient,
    database: Database,
    tenant: Tenant,
    policy: str | None,
    *,
    at: timedelta = timedelta(hours=1),
    first_response: int | None = None,
    resolution: int | None = None,
    breached: bool = False,
    **body: Any,
) -> str:
    """A ticket opened through the API, created `at` after BASE under `policy`."""
    ticket_id: str = (await create(client, tenant, **body))["id"]
    await stamp(
        database,
        ticket_id,
        created_at=BASE + at,
        sla_policy_id=None if policy is None else uuid.UUID(policy),
        sla_breach=breached,
        time_to_first_response=first_response,
        time_to_resolution=resolution,
    )
    return ticket_id


async def report(client: httpx.AsyncClient, actor: Actor, **params: str) -> dict[str, Any]:
    response = await client.get(REPORT, params={**DAY, **params}, headers=actor.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def figures(
    tickets: int,
    breached: int,
    compliance: float | None,
    first_response: tuple[int, int] | None,
    resolution: tuple[int, int] | None,
) -> dict[str, Any]:
    def durations(pair: tuple[int, int] | None) -> dict[str, int | None]:
        return NOTHING if pair is None else {"median": pair[0], "p90": pair[1]}

    return {
        "tickets": tickets,
        "breached": breached,
        "compliance_percent": compliance,
        "first_response_seconds": durations(first_response),
        "resolution_seconds": durations(resolution),
    }


def strip(group: dict[str, Any]) -> dict[str, Any]:
    """A group's figures without its key and label."""
    return {k: v for k, v in group.items() if k not in {"key", "label"}}


# --- percentiles and compliance -------------------------------------------------------


async def test_percentiles_are_nearest_rank_and_ignore_missing_values(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    policy = await add_policy(client, tenant_a)
    # Times to first response 1..10 in no particular order, two tickets unanswered;
    # three resolved. Three of the twelve breached.
    answered = [7, 3, 10, 1, 5, 9, 2, 8, 4, 6, None, None]
    resolved = [300, None, 100, None, None, 200, None, None, None, None, None, None]
    for n, (first, resolution) in enumerate(zip(answered, resolved, strict=True)):
        await measured(
            client,
            database,
            tenant_a,
            policy,
            at=timedelta(minutes=n),
            first_response=first,
            resolution=resolution,
            breached=n % 4 == 0,
        )

    body = await report(client, tenant_a["manager"])

    expected = figures(12, 3, 75.0, (5, 9), (200, 300))
    assert body["group_by"] == "policy"
    [group] = body["groups"]
    assert group["key"] == policy and group["label"].startswith("Policy ")
    assert strip(group) == expected
    assert body["total"] == expected


async def test_small_groups_and_rounding(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    """One value is its own median and p90; of two, the median is the lower. Two of
    three met is 66.67 %, one of three 33.33 %."""
    one = await add_policy(client, tenant_a)
    two = await add_policy(client, tenant_a)
    three = await add_policy(client, tenant_a)
    await measured(client, database, tenant_a, one, first_response=42, resolution=420)
    for first, breached in ((20, True), (10, False), (None, False)):
        await measured(client, database, tenant_a, two, first_response=first, breached=breached)
    for n in range(4):
        await measured(client, database, tenant_a, three, breached=n > 0)

    body = await report(client, tenant_a["admin"])

    assert [(group["key"], group["tickets"]) for group in body["groups"]] == [
        (three, 4),
        (two, 3),
        (one, 1),
    ]
    by_key = {group["key"]: strip(group) for group in body["groups"]}
    assert by_key[one] == figures(1, 0, 100.0, (42, 42), (420, 420))
    assert by_key[two] == figures(3, 1, 66.67, (10, 20), None)
    assert by_key[three] == figures(4, 3, 25.0, None, None)
    # Over all eight: first responses 10, 20, 42; four of eight met.
    assert body["total"] == figures(8, 4, 50.0, (20, 42), (420, 420))


async def test_compliance_rounds_half_up_to_two_decimals(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    policy = await add_policy(client, tenant_a)
    for n in range(3):
        await measured(client, database, tenant_a, policy, breached=n > 0)
    body = await report(client, tenant_a["manager"])
    assert body["total"]["compliance_percent"] == 33.33


async def test_an_empty_range_answers_a_total_of_nothing(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    body = await report(client, tenant_a["manager"], group_by="agent")
    assert body == {"group_by": "agent", "groups": [], "total": figures(0, 0, None, None, None)}


# --- groupings --------------------------------------------------------------------------


@pytest.fixture
async def spread(client: httpx.AsyncClient, database: Database, tenant_a: Tenant) -> dict[str, str]:
    """Four tickets over two policies, three priorities, three channels, two agents (one
    named, one by email) and unassigned, two departments and none. The second ticket
    breached; first responses 100, 200, 300, 400 s; the first and last resolved."""
    gold = await add_policy(client, tenant_a, name="Gold")
    basic = await add_policy(client, tenant_a, name="Basic")
    admin = tenant_a["admin"].headers
    named = await client.patch(
        f"{API}/users/{user_of(tenant_a, 'agent')}",
        json={"first_name": "Ada", "last_name": "Lovelace"},
        headers=admin,
    )
    assert named.status_code == 200, named.text
    billing = await client.post(f"{API}/departments", json={"name": "Billing"}, headers=admin)
    assert billing.status_code == 201, billing.text
    ids = {
        "gold": gold,
        "basic": basic,
        "agent": user_of(tenant_a, "agent"),
        "manager": user_of(tenant_a, "manager"),
        "support": str(tenant_a.department_id),
        "billing": billing.json()["id"],
    }
    tickets = [
        (gold, "high", "email", ids["agent"], ids["support"], 100, 1000, False),
        (gold, "high", "web", None, None, 200, None, True),
        (basic, "low", "web", ids["manager"], ids["billing"], 300, None, False),
        (gold, "urgent", "phone", ids["agent"], ids["support"], 400, 4000, False),
    ]
    for n, (policy, priority, channel, agent, department, first, resolution, breached) in enumerate(
        tickets
    ):
        await measured(
            client,
            database,
            tenant_a,
            policy,
            at=timedelta(minutes=n),
            first_response=first,
            resolution=resolution,
            breached=breached,
            priority=priority,
            channel=channel,
            assigned_agent_id=agent,
            department_id=department,
        )
    return ids


TOTAL = figures(4, 1, 75.0, (200, 400), (1000, 4000))


@pytest.mark.parametrize(
    ("group_by", "expected"),
    [
        ("policy", [("gold", "Gold", 3), ("basic", "Basic", 1)]),
        ("priority", [("high", "high", 2), ("low", "low", 1), ("urgent", "urgent", 1)]),
        ("channel", [("web", "web", 2), ("email", "email", 1), ("phone", "phone", 1)]),
        ("agent", [("agent", "Ada Lovelace", 2), ("manager", "@", 1), (None, None, 1)]),
        ("department", [("support", "Support", 2), ("billing", "Billing", 1), (None, None, 1)]),
    ],
)
async def test_each_grouping_keys_labels_and_orders_its_groups(
    client: httpx.AsyncClient,
    tenant_a: Tenant,
    spread: dict[str, str],
    group_by: str,
    expected: list[tuple[str | None, str | None, int]],
) -> None:
    """Most tickets first, ties by key, the null key last; an agent without a name is
    labelled by email."""
    body = await report(client, tenant_a["manager"], group_by=group_by)

    assert body["group_by"] == group_by
    got = [(group["key"], group["label"], group["tickets"]) for group in body["groups"]]
    email = tenant_a["manager"].email
    want = [
        (None if key is None else spread.get(key, key), email if label == "@" else label, n)
        for key, label, n in expected
    ]
    assert got == want
    assert body["total"] == TOTAL
    assert sum(group["breached"] for group in body["groups"]) == 1


async def test_a_groups_figures_are_its_own_tickets(
    client: httpx.AsyncClient, tenant_a: Tenant, spread: dict[str, str]
) -> None:
    by_policy = {g["key"]: strip(g) for g in (await report(client, tenant_a["admin"]))["groups"]}
    assert by_policy[spread["gold"]] == figures(3, 1, 66.67, (200, 400), (1000, 4000))
    assert by_policy[spread["basic"]] == figures(1, 0, 100.0, (300, 300), None)
    agents = await report(client, tenant_a["admin"], group_by="agent")
    by_agent = {g["key"]: strip(g) for g in agents["groups"]}
    assert by_agent[spread["agent"]] == figures(2, 0, 100.0, (100, 400), (1000, 4000))
    assert by_agent[None] == figures(1, 1, 0.0, (200, 200), None)


async def test_a_policy_deleted_since_keeps_its_tickets_without_a_name(
    client: httpx.AsyncClient, tenant_a: Tenant, spread: dict[str, str]
) -> None:
    deleted = await client.delete(
        f"{API}/sla-policies/{spread['basic']}", headers=tenant_a["admin"].headers
    )
    assert deleted.status_code == 204
    body = await report(client, tenant_a["manager"])
    assert [(g["key"], g["label"]) for g in body["groups"]] == [
        (spread["gold"], "Gold"),
        (spread["basic"], None),
    ]


# --- the population ---------------------------------------------------------------------


async def test_only_live_measured_tickets_created_in_the_range_count(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    policy = await add_policy(client, tenant_a)
    # At `from` and just before `to`.
    await measured(client, database, tenant_a, policy, at=timedelta(0), first_response=1)
    await measured(client, database, tenant_a, policy, at=timedelta(days=1, microseconds=-1))
    # Just before `from`, exactly at `to`, measured by no policy, deleted.
    await measured(client, database, tenant_a, policy, at=timedelta(microseconds=-1))
    await measured(client, database, tenant_a, policy, at=timedelta(days=1))
    await measured(client, database, tenant_a, None)
    gone = await measured(client, database, tenant_a, policy, breached=True)
    deleted = await client.delete(f"{TICKETS}/{gone}", headers=tenant_a["manager"].headers)
    assert deleted.status_code == 204
    # Another organization's ticket in the same range.
    theirs = await add_policy(client, tenant_b)
    await measured(client, database, tenant_b, theirs, breached=True, first_response=99)

    ours = await report(client, tenant_a["manager"])
    assert ours["total"] == figures(2, 0, 100.0, (1, 1), None)
    assert [(g["key"], g["tickets"]) for g in ours["groups"]] == [(policy, 2)]

    other = await report(client, tenant_b["manager"], group_by="agent")
    assert other["total"] == figures(1, 1, 0.0, (99, 99), None)


async def test_the_range_may_span_up_to_400_days(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    policy = await add_policy(client, tenant_a)
    await measured(client, database, tenant_a, policy, at=timedelta(days=399))
    body = await report(client, tenant_a["manager"], to=(BASE + timedelta(days=400)).isoformat())
    assert body["total"]["tickets"] == 1


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"to": DAY["from"]}, ["query", "to"]),
        ({"from": DAY["to"], "to": DAY["from"]}, ["query", "to"]),
        ({"to": "2026-04-05T00:00:01Z"}, ["query", "to"]),
        ({"group_by": "customer"}, ["query", "group_by"]),
        ({"from": "2025-03-01T00:00:00"}, ["query", "from"]),
        ({"from": "1740787200"}, ["query", "from"]),
        ({"from": None}, ["query", "from"]),
        ({"to": None}, ["query", "to"]),
    ],
    ids=[
        "empty",
        "reversed",
        "over-400-days",
        "unknown-group",
        "no-offset",
        "a-number",
        "no-from",
        "no-to",
    ],
)
async def test_a_bad_range_or_grouping_is_a_422(
    client: httpx.AsyncClient, tenant_a: Tenant, params: dict[str, str | None], loc: list[str]
) -> None:
    query = {k: v for k, v in {**DAY, **params}.items() if v is not None}
    response = await client.get(REPORT, params=query, headers=tenant_a["manager"].headers)
    body = problem(response, 422)
    assert loc in field_locs(body)


@pytest.mark.parametrize("role", ["agent", "customer"])
async def test_agents_and_customers_may_not_read_reports(
    client: httpx.AsyncClient, tenant_a: Tenant, role: str
) -> None:
    response = await client.get(REPORT, params=DAY, headers=tenant_a[role].headers)
    body = problem(response, 403)
    assert "reports:read" in body["detail"]


@pytest.mark.parametrize("role", ["manager", "admin", "api_key"])
async def test_managers_admins_and_their_keys_may(
    client: httpx.AsyncClient, tenant_a: Tenant, role: str
) -> None:
    response = await client.get(REPORT, params=DAY, headers=tenant_a[role].headers)
    assert response.status_code == 200, response.text
