"""/tickets against the contract: creation rules and defaults, numbers under concurrency,
assignment capacity, the status machine, optimistic concurrency, customer visibility,
tenant isolation, soft delete, list filters, sorts and keyset paging, history rows and
outbox events. Every refusal is read back from the database to prove nothing changed."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from app.db.database import Database
from app.models import OutboxEvent
from app.models.ticket import Ticket, TicketHistory
from app.models.user import Role
from tests.support.api import field_locs, problem
from tests.support.identity import Actor, Tenant, add_user, make_tenant
from tests.support.tickets import (
    NUMBER,
    STATUSES,
    TICKET_FIELDS,
    TICKETS,
    all_ticket_rows,
    api_history,
    create,
    customer_of,
    events,
    get_ticket,
    iso,
    list_all,
    patch,
    patched,
    post_ticket,
    snapshot,
    ticket_in,
    ticket_row,
    ts,
    uid,
    user_of,
    walk,
)

# The contract's "Status moves", verbatim.
CONTRACT_MOVES: dict[str, frozenset[str]] = {
    "new": frozenset({"open", "pending", "resolved", "cancelled"}),
    "open": frozenset({"pending", "resolved", "cancelled"}),
    "pending": frozenset({"open", "resolved", "cancelled"}),
    "resolved": frozenset({"open", "closed"}),
    "closed": frozenset(),
    "cancelled": frozenset(),
}

HistoryRow = tuple[str, str | None, str | None, str | None]


# --- helpers ------------------------------------------------------------------------


async def history_rows(database: Database, tenant: Tenant, ticket_id: str) -> list[HistoryRow]:
    """Every history row, the creation's included, as comparable tuples (unlike
    tests.support.tickets.history_rows, which returns the rows after creation)."""
    async with database.tenant_session(tenant.org.id) as session:
        rows = await session.scalars(
            sa.select(TicketHistory)
            .where(TicketHistory.ticket_id == uuid.UUID(ticket_id))
            .order_by(TicketHistory.id)
        )
        return [(r.field, r.old_value, r.new_value, uid(r.user_id)) for r in rows]


# --- create --------------------------------------------------------------------------


@pytest.mark.parametrize("creator", ["admin", "manager", "agent", "api_key"])
async def test_staff_create_for_a_customer_with_the_contract_defaults(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, creator: str
) -> None:
    actor = tenant_a[creator]
    before = datetime.now(UTC)
    response = await post_ticket(
        client, actor, {"subject": "Printer on fire", "customer_id": customer_of(tenant_a)}
    )
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == '"1"'
    body = response.json()
    assert body.keys() >= TICKET_FIELDS
    assert {k: body[k] for k in sorted(TICKET_FIELDS - {"id", "created_at", "updated_at"})} == {
        "ticket_number": "TK-000001",
        "subject": "Printer on fire",
        "description": "",
        "status": "new",
        "priority": "medium",
        "channel": "web",
        "customer_id": customer_of(tenant_a),
        "assigned_agent_id": None,
        "created_by_id": uid(actor.user_id),  # an API key is no person: null
        "department_id": None,
        "sla_policy_id": None,
        "tags": [],
        "custom_fields": {},
        "sla_breach": False,
        "sla_status": None,
        "first_response_due_at": None,
        "next_reply_due_at": None,
        "resolution_due_at": None,
        "first_response_at": None,
        "resolved_at": None,
        "closed_at": None,
        "time_to_first_response": None,
        "time_to_resolution": None,
        "version": 1,
    }
    assert body["deleted_at"] is None
    uuid.UUID(body["id"])
    assert before - timedelta(seconds=5) <= ts(body["created_at"]) <= datetime.now(UTC)

    row = await ticket_row(database, tenant_a, body["id"])
    assert row is not None
    assert row.organization_id == tenant_a.org.id
    assert (row.ticket_number, row.version, row.created_by_id) == ("TK-000001", 1, actor.user_id)
    assert await get_ticket(client, actor, body["id"]) == body


async def test_create_with_every_optional_field(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    body = await create(
        client,
        tenant_a,
        subject="VPN",
        description="Drops every hour",
        priority="urgent",
        channel="phone",
        assigned_agent_id=user_of(tenant_a, "agent"),
        department_id=str(tenant_a.department_id),
        tags=["network"],
    )
    assert (body["description"], body["priority"], body["channel"]) == (
        "Drops every hour",
        "urgent",
        "phone",
    )
    assert body["assigned_agent_id"] == user_of(tenant_a, "agent")
    assert body["department_id"] == str(tenant_a.department_id)
    assert body["tags"] == ["network"]


async def test_ticket_numbers_count_per_organization(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    numbers_a = [(await create(client, tenant_a))["ticket_number"] for _ in range(3)]
    numbers_b = [(await create(client, tenant_b))["ticket_number"] for _ in range(2)]
    assert numbers_a == ["TK-000001", "TK-000002", "TK-000003"]
    assert numbers_b == ["TK-000001", "TK-000002"]


@pytest.mark.parametrize(
    ("subject", "stored"),
    [
        ("  Printer jam  ", "Printer jam"),
        ("\tTabbed\n", "Tabbed"),
        ("x", "x"),
        ("x" * 255, "x" * 255),
        ("   " + "y" * 255 + "   ", "y" * 255),
    ],
    ids=["trimmed", "tabs-newlines", "one-char", "255", "255-after-trim"],
)
async def test_subject_is_trimmed(
    client: httpx.AsyncClient, tenant_a: Tenant, subject: str, stored: str
) -> None:
    body = await create(client, tenant_a, subject=subject)
    assert body["subject"] == stored


@pytest.mark.parametrize(
    "subject",
    ["", "   ", "\t\n ", "x" * 256, "  " + "x" * 256, None, 42],
    ids=["empty", "blank", "whitespace", "256", "256-after-trim", "null", "number"],
)
async def test_invalid_subject_is_422_and_writes_nothing(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, subject: object
) -> None:
    before = await snapshot(database, tenant_a)
    response = await post_ticket(
        client, tenant_a["agent"], {"subject": subject, "customer_id": customer_of(tenant_a)}
    )
    assert field_locs(problem(response, 422)) == [["body", "subject"]]
    assert await snapshot(database, tenant_a) == before


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"subject": "   "}, ["body", "subject"]),
        ({"subject": "x" * 256}, ["body", "subject"]),
        ({"subject": None}, ["body", "subject"]),
        ({"priority": None}, ["body", "priority"]),
        ({"priority": "critical"}, ["body", "priority"]),
        ({"status": None}, ["body", "status"]),
        ({"tags": None}, ["body", "tags"]),
        ({"custom_fields": None}, ["body", "custom_fields"]),
        ({"assigned_agent_id": "not-a-uuid"}, ["body", "assigned_agent_id"]),
    ],
)
async def test_invalid_patch_bodies_are_422_and_change_nothing(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    body: dict[str, Any],
    loc: list[Any],
) -> None:
    ticket = await create(client, tenant_a)
    before = await snapshot(database, tenant_a)
    response = await patch(client, tenant_a["agent"], ticket["id"], body)
    assert field_locs(problem(response, 422)) == [loc]
    assert await snapshot(database, tenant_a) == before


async def test_patch_subject_is_trimmed(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    ticket = await create(client, tenant_a)
    updated = await patched(client, tenant_a["agent"], ticket["id"], {"subject": "  New  "})
    assert (updated["subject"], updated["version"]) == ("New", 2)


async def test_subject_is_required(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    response = await post_ticket(client, tenant_a["agent"], {"customer_id": customer_of(tenant_a)})
    assert field_locs(problem(response, 422)) == [["body", "subject"]]


@pytest.mark.parametrize("creator", ["admin", "manager", "agent", "api_key"])
async def test_staff_must_name_the_customer(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, creator: str
) -> None:
    before = await snapshot(database, tenant_a)
    response = await post_ticket(client, tenant_a[creator], {"subject": "Who is it for?"})
    assert field_locs(problem(response, 422)) == [["body", "customer_id"]]
    assert await snapshot(database, tenant_a) == before


@pytest.mark.parametrize(
    "who", ["agent", "manager", "admin", "other-org-customer", "random", "deleted-customer"]
)
async def test_customer_id_must_be_a_customer_user_of_the_organization(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    tenant_b: Tenant,
    who: str,
) -> None:
    target: str
    if who in {"agent", "manager", "admin"}:
        target = user_of(tenant_a, who)
    elif who == "other-org-customer":
        target = customer_of(tenant_b)
    elif who == "random":
        target = str(uuid.uuid4())
    else:
        gone = await add_user(database, tenant_a.org, Role.CUSTOMER, deleted_at=datetime.now(UTC))
        target = str(gone.id)
    before = await snapshot(database, tenant_a)
    response = await post_ticket(
        client, tenant_a["agent"], {"subject": "For someone", "customer_id": target}
    )
    assert field_locs(problem(response, 422)) == [["body", "customer_id"]]
    assert await snapshot(database, tenant_a) == before


@pytest.mark.parametrize("role", ["admin", "manager", "agent"])
async def test_assignee_may_be_any_staff_role(
    client: httpx.AsyncClient, tenant_a: Tenant, role: str
) -> None:
    body = await create(client, tenant_a, assigned_agent_id=user_of(tenant_a, role))
    assert body["assigned_agent_id"] == user_of(tenant_a, role)


@pytest.mark.parametrize("who", ["customer", "other-org-agent", "random", "deleted-agent"])
async def test_assignee_must_be_staff_of_the_organization(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    tenant_b: Tenant,
    who: str,
) -> None:
    if who == "customer":
        target = customer_of(tenant_a)
    elif who == "other-org-agent":
        target = user_of(tenant_b, "agent")
    elif who == "random":
        target = str(uuid.uuid4())
    else:
        gone = await add_user(database, tenant_a.org, Role.AGENT, deleted_at=datetime.now(UTC))
        target = str(gone.id)
    before = await snapshot(database, tenant_a)
    response = await post_ticket(
        client,
        tenant_a["manager"],
        {"subject": "Assign me", "customer_id": customer_of(tenant_a), "assigned_agent_id": target},
    )
    assert field_locs(problem(response, 422)) == [["body", "assigned_agent_id"]]
    assert await snapshot(database, tenant_a) == before

    ticket = await create(client, tenant_a)
    response = await patch(client, tenant_a["manager"], ticket["id"], {"assigned_agent_id": target})
    assert field_locs(problem(response, 422)) == [["body", "assigned_agent_id"]]
    row = await ticket_row(database, tenant_a, ticket["id"])
    assert row is not None
    assert (row.assigned_agent_id, row.version) == (None, 1)


async def test_department_must_be_of_the_organization(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    before = await snapshot(database, tenant_a)
    for department in (str(tenant_b.department_id), str(uuid.uuid4())):
        response = await post_ticket(
            client,
            tenant_a["agent"],
            {"subject": "Dept", "customer_id": customer_of(tenant_a), "department_id": department},
        )
        assert field_locs(problem(response, 422)) == [["body", "department_id"]]
    assert await snapshot(database, tenant_a) == before


async def test_customers_open_tickets_for_themselves(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    me = customer_of(tenant_a)
    implicit = await create(client, tenant_a, "customer", subject="My printer")
    explicit = await create(client, tenant_a, "customer", subject="Again", customer_id=me)
    for body in (implicit, explicit):
        assert (body["customer_id"], body["created_by_id"]) == (me, me)
        assert (body["status"], body["assigned_agent_id"]) == ("new", None)

    other = await add_user(database, tenant_a.org, Role.CUSTOMER)
    cases: list[dict[str, Any]] = [
        {"customer_id": str(other.id)},
        {"assigned_agent_id": user_of(tenant_a, "agent")},
        {"customer_id": me, "assigned_agent_id": user_of(tenant_a, "agent")},
    ]
    before = await snapshot(database, tenant_a)
    for extra in cases:
        response = await post_ticket(client, tenant_a["customer"], {"subject": "No", **extra})
        problem(response, 403)
    assert await snapshot(database, tenant_a) == before


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("status", "closed"),
        ("version", 7),
        ("organization_id", "00000000-0000-0000-0000-000000000001"),
        ("ticket_number", "TK-999999"),
        ("id", "00000000-0000-0000-0000-000000000002"),
        ("created_by_id", "00000000-0000-0000-0000-000000000003"),
        ("sla_breach", True),
        ("resolved_at", "2024-01-01T00:00:00Z"),
        ("created_at", "2024-01-01T00:00:00Z"),
        ("bogus", 1),
    ],
)
async def test_unknown_fields_are_422_on_create_and_update(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, name: str, value: object
) -> None:
    ticket = await create(client, tenant_a)
    before = await snapshot(database, tenant_a)
    response = await post_ticket(
        client,
        tenant_a["admin"],
        {"subject": "Mass", "customer_id": customer_of(tenant_a), name: value},
    )
    assert field_locs(problem(response, 422)) == [["body", name]]
    if name != "status":  # status is a PATCH field, not a create one
        response = await patch(client, tenant_a["admin"], ticket["id"], {name: value})
        assert field_locs(problem(response, 422)) == [["body", name]]
    assert await snapshot(database, tenant_a) == before


@pytest.mark.parametrize(
    ("tags", "stored"),
    [
        ([" VIP ", "vip", "Billing", "billing ", "a-tag", "VIP"], ["a-tag", "billing", "vip"]),
        (["zeta", "Alpha", "mid"], ["alpha", "mid", "zeta"]),
        ([], []),
    ],
    ids=["messy", "unsorted", "empty"],
)
async def test_tags_are_normalised(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    tags: list[str],
    stored: list[str],
) -> None:
    created = await create(client, tenant_a, tags=tags)
    assert created["tags"] == stored
    other = await create(client, tenant_a)
    updated = await patched(client, tenant_a["agent"], other["id"], {"tags": tags})
    assert updated["tags"] == stored
    for ticket_id in (created["id"], other["id"]):
        row = await ticket_row(database, tenant_a, ticket_id)
        assert row is not None
        assert row.tags == stored


@pytest.mark.parametrize("tags", [[" "], [""], ["x" * 51], "vip", [1]])
async def test_invalid_tags_are_422(
    client: httpx.AsyncClient, tenant_a: Tenant, tags: object
) -> None:
    response = await post_ticket(
        client,
        tenant_a["agent"],
        {"subject": "Tags", "customer_id": customer_of(tenant_a), "tags": tags},
    )
    assert all(loc[:2] == ["body", "tags"] for loc in field_locs(problem(response, 422)))


# --- numbers under concurrency -------------------------------------------------------


async def test_200_concurrent_creates_get_200_distinct_numbers(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    body = {"customer_id": customer_of(tenant_a)}
    actors = [tenant_a["agent"], tenant_a["manager"], tenant_a["admin"], tenant_a["api_key"]]
    responses = await asyncio.gather(
        *(
            post_ticket(client, actors[i % len(actors)], {"subject": f"Load {i}", **body})
            for i in range(200)
        )
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 200}, [r.text for r in responses if r.status_code != 201][:3]
    numbers = [r.json()["ticket_number"] for r in responses]
    assert all(NUMBER.match(n) for n in numbers)
    assert len(set(numbers)) == 200
    rows = await all_ticket_rows(database, tenant_a)
    assert len(rows) == 200
    assert {r.ticket_number for r in rows} == set(numbers)


# --- assignment capacity ---------------------------------------------------------------


@pytest.fixture
async def busy_agent(database: Database, tenant_a: Tenant) -> str:
    """An agent with room for one active ticket."""
    user = await add_user(database, tenant_a.org, Role.AGENT, max_concurrent_tickets=1)
    return str(user.id)


async def test_assignment_past_capacity_is_409_unless_a_manager_forces_it(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, busy_agent: str
) -> None:
    first = await create(client, tenant_a, assigned_agent_id=busy_agent)
    assert first["assigned_agent_id"] == busy_agent
    spare = await create(client, tenant_a)
    new_body = {"subject": "One too many", "customer_id": customer_of(tenant_a)}
    new_body["assigned_agent_id"] = busy_agent

    before = await snapshot(database, tenant_a)
    for actor in ("agent", "manager", "admin"):
        response = await post_ticket(client, tenant_a[actor], new_body)
        assert "force_assignment" in problem(response, 409)["detail"]
        response = await patch(
            client, tenant_a[actor], spare["id"], {"assigned_agent_id": busy_agent}
        )
        problem(response, 409)
        # An agent may not force, whatever else the request would do.
        if actor == "agent":
            forced = {"force_assignment": "true"}
            problem(await post_ticket(client, tenant_a[actor], new_body, params=forced), 403)
            response = await patch(
                client,
                tenant_a[actor],
                spare["id"],
                {"assigned_agent_id": busy_agent},
                params=forced,
            )
            problem(response, 403)
    assert await snapshot(database, tenant_a) == before

    # Keeping the assignment while editing something else is no new assignment.
    kept = await patched(
        client,
        tenant_a["agent"],
        first["id"],
        {"assigned_agent_id": busy_agent, "priority": "high"},
    )
    assert (kept["assigned_agent_id"], kept["priority"]) == (busy_agent, "high")

    forced = {"force_assignment": "true"}
    response = await post_ticket(client, tenant_a["manager"], new_body, params=forced)
    assert response.status_code == 201, response.text
    assert response.json()["assigned_agent_id"] == busy_agent
    response = await patch(
        client, tenant_a["manager"], spare["id"], {"assigned_agent_id": busy_agent}, params=forced
    )
    assert response.status_code == 200, response.text
    assert response.json()["assigned_agent_id"] == busy_agent


async def test_force_assignment_false_is_the_default(
    client: httpx.AsyncClient, tenant_a: Tenant, busy_agent: str
) -> None:
    await create(client, tenant_a, assigned_agent_id=busy_agent)
    body = {"subject": "x", "customer_id": customer_of(tenant_a), "assigned_agent_id": busy_agent}
    response = await post_ticket(
        client, tenant_a["agent"], body, params={"force_assignment": "false"}
    )
    problem(response, 409)


async def test_concurrent_assignments_cannot_both_take_the_last_slot(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, busy_agent: str
) -> None:
    spare = await create(client, tenant_a)
    body = {
        "subject": "Race",
        "customer_id": customer_of(tenant_a),
        "assigned_agent_id": busy_agent,
    }
    responses = await asyncio.gather(
        post_ticket(client, tenant_a["agent"], body),
        post_ticket(client, tenant_a["manager"], body),
        patch(client, tenant_a["admin"], spare["id"], {"assigned_agent_id": busy_agent}),
    )
    codes = Counter(r.status_code for r in responses)
    assert codes[409] == 2 and codes[200] + codes[201] == 1, [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            problem(response, 409)
    rows = await all_ticket_rows(database, tenant_a)
    assert sum(str(r.assigned_agent_id) == busy_agent for r in rows) == 1


@pytest.mark.parametrize("finished", ["resolved", "closed", "cancelled"])
async def test_finished_tickets_do_not_count_against_capacity(
    client: httpx.AsyncClient, tenant_a: Tenant, busy_agent: str, finished: str
) -> None:
    await ticket_in(client, tenant_a, finished, assigned_agent_id=busy_agent)
    second = await create(client, tenant_a, assigned_agent_id=busy_agent)
    assert second["assigned_agent_id"] == busy_agent


async def test_deleted_tickets_do_not_count_against_capacity(
    client: httpx.AsyncClient, tenant_a: Tenant, busy_agent: str
) -> None:
    held = await create(client, tenant_a, assigned_agent_id=busy_agent)
    response = await client.delete(f"{TICKETS}/{held['id']}", headers=tenant_a["admin"].headers)
    assert response.status_code == 204
    second = await create(client, tenant_a, assigned_agent_id=busy_agent)
    assert second["assigned_agent_id"] == busy_agent


@pytest.mark.parametrize("active", ["new", "open", "pending"])
async def test_active_tickets_count_against_capacity(
    client: httpx.AsyncClient, tenant_a: Tenant, busy_agent: str, active: str
) -> None:
    await ticket_in(client, tenant_a, active, assigned_agent_id=busy_agent)
    body = {"subject": "x", "customer_id": customer_of(tenant_a), "assigned_agent_id": busy_agent}
    problem(await post_ticket(client, tenant_a["agent"], body), 409)


# --- status machine ------------------------------------------------------------------

MOVES = [(a, b) for a in STATUSES for b in STATUSES if a != b]


@pytest.mark.parametrize(("source", "target"), MOVES, ids=[f"{a}->{b}" for a, b in MOVES])
async def test_status_moves(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    source: str,
    target: str,
) -> None:
    ticket = await ticket_in(client, tenant_a, source)
    before = await snapshot(database, tenant_a)
    response = await patch(client, tenant_a["agent"], ticket["id"], {"status": target})
    if target in CONTRACT_MOVES[source]:
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["status"], body["version"]) == (target, ticket["version"] + 1)
        assert response.headers["etag"] == f'"{ticket["version"] + 1}"'
        assert (await get_ticket(client, tenant_a["agent"], ticket["id"]))["status"] == target
    else:
        body = problem(response, 409)
        assert source in body["detail"] and target in body["detail"]
        assert await snapshot(database, tenant_a) == before
        current = await get_ticket(client, tenant_a["agent"], ticket["id"])
        assert (current["status"], current["version"]) == (source, ticket["version"])


@pytest.mark.parametrize("status", STATUSES)
async def test_setting_the_current_status_is_a_no_op(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, status: str
) -> None:
    """Not a move: a PATCH that repeats the status changes nothing (no version bump, no
    history, no event), final statuses included."""
    ticket = await ticket_in(client, tenant_a, status)
    before = await snapshot(database, tenant_a)
    response = await patch(client, tenant_a["agent"], ticket["id"], {"status": status})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == ticket["version"]
    assert await snapshot(database, tenant_a) == before


async def test_resolve_stamps_and_reopen_clears(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket = await ticket_in(client, tenant_a, "open")
    start = datetime.now(UTC)
    resolved = await patched(client, tenant_a["agent"], ticket["id"], {"status": "resolved"})
    assert start <= ts(resolved["resolved_at"]) <= datetime.now(UTC)
    expected = int((ts(resolved["resolved_at"]) - ts(ticket["created_at"])).total_seconds())
    assert resolved["time_to_resolution"] == expected
    assert resolved["closed_at"] is None

    reopened = await patched(client, tenant_a["agent"], ticket["id"], {"status": "open"})
    assert (reopened["resolved_at"], reopened["time_to_resolution"]) == (None, None)
    row = await ticket_row(database, tenant_a, ticket["id"])
    assert row is not None
    assert (row.resolved_at, row.time_to_resolution, row.closed_at) == (None, None, None)

    again = await patched(client, tenant_a["agent"], ticket["id"], {"status": "resolved"})
    assert ts(again["resolved_at"]) > ts(resolved["resolved_at"])
    assert again["time_to_resolution"] is not None


async def test_close_stamps_closed_at_and_keeps_the_resolution(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    resolved = await ticket_in(client, tenant_a, "resolved")
    start = datetime.now(UTC)
    closed = await patched(client, tenant_a["agent"], resolved["id"], {"status": "closed"})
    assert start <= ts(closed["closed_at"]) <= datetime.now(UTC)
    assert closed["resolved_at"] == resolved["resolved_at"]
    assert closed["time_to_resolution"] == resolved["time_to_resolution"]
    row = await ticket_row(database, tenant_a, resolved["id"])
    assert row is not None
    assert row.closed_at == ts(closed["closed_at"])


@pytest.mark.parametrize("status", ["open", "pending", "cancelled"])
async def test_moves_without_resolution_leave_the_stamps_empty(
    client: httpx.AsyncClient, tenant_a: Tenant, status: str
) -> None:
    ticket = await ticket_in(client, tenant_a, status)
    assert (ticket["resolved_at"], ticket["closed_at"], ticket["time_to_resolution"]) == (
        None,
        None,
        None,
    )


async def test_a_refused_move_in_a_mixed_patch_changes_nothing(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket = await create(client, tenant_a)
    before = await snapshot(database, tenant_a)
    response = await patch(
        client,
        tenant_a["agent"],
        ticket["id"],
        {"priority": "urgent", "tags": ["x"], "status": "closed"},
    )
    problem(response, 409)
    assert await snapshot(database, tenant_a) == before


async def test_invalid_status_value_is_422(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    ticket = await create(client, tenant_a)
    for value in ("done", None, ""):
        response = await patch(client, tenant_a["agent"], ticket["id"], {"status": value})
        assert field_locs(problem(response, 422)) == [["body", "status"]]


# --- optimistic concurrency ------------------------------------------------------------


@pytest.mark.parametrize(
    "if_match",
    ['"1"', "1", 'W/"1"', ' "1" ', "*"],
    ids=["quoted", "bare", "weak", "spaced", "star"],
)
async def test_if_match_with_the_current_version_applies(
    client: httpx.AsyncClient, tenant_a: Tenant, if_match: str
) -> None:
    ticket = await create(client, tenant_a)
    response = await client.get(f"{TICKETS}/{ticket['id']}", headers=tenant_a["agent"].headers)
    assert response.headers["etag"] == '"1"'
    response = await patch(
        client,
        tenant_a["agent"],
        ticket["id"],
        {"priority": "high"},
        headers={"If-Match": if_match},
    )
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert response.headers["etag"] == '"2"'
    assert (await get_ticket(client, tenant_a["agent"], ticket["id"]))["priority"] == "high"


@pytest.mark.parametrize("if_match", ['"1"', "1", 'W/"1"', '"3"', '"0"'])
async def test_stale_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, if_match: str
) -> None:
    ticket = await create(client, tenant_a)
    await patched(client, tenant_a["agent"], ticket["id"], {"priority": "low"})
    before = await snapshot(database, tenant_a)
    response = await patch(
        client,
        tenant_a["agent"],
        ticket["id"],
        {"priority": "high"},
        headers={"If-Match": if_match},
    )
    problem(response, 412)
    assert await snapshot(database, tenant_a) == before
    current = await get_ticket(client, tenant_a["agent"], ticket["id"])
    assert (current["priority"], current["version"]) == ("low", 2)


@pytest.mark.parametrize("if_match", ['"abc"', "abc", '""', 'W/"x"', '"1.0"', '"-1"'])
async def test_malformed_if_match_is_400(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, if_match: str
) -> None:
    ticket = await create(client, tenant_a)
    before = await snapshot(database, tenant_a)
    response = await patch(
        client,
        tenant_a["agent"],
        ticket["id"],
        {"priority": "high"},
        headers={"If-Match": if_match},
    )
    problem(response, 400)
    assert await snapshot(database, tenant_a) == before


async def test_if_match_with_a_non_ascii_digit_is_400(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    ticket = await create(client, tenant_a)
    response = await client.patch(
        f"{TICKETS}/{ticket['id']}",
        json={"priority": "high"},
        headers={
            b"Authorization": tenant_a["agent"].headers["Authorization"].encode(),
            b"If-Match": '"\xb2"'.encode("latin-1"),
        },
    )
    problem(response, 400)


async def test_two_patches_racing_on_one_version_one_wins(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket = await create(client, tenant_a)
    etag = (
        await client.get(f"{TICKETS}/{ticket['id']}", headers=tenant_a["agent"].headers)
    ).headers["etag"]
    responses = await asyncio.gather(
        patch(
            client,
            tenant_a["agent"],
            ticket["id"],
            {"priority": "high"},
            headers={"If-Match": etag},
        ),
        patch(
            client,
            tenant_a["manager"],
            ticket["id"],
            {"priority": "low"},
            headers={"If-Match": etag},
        ),
    )
    assert sorted(r.status_code for r in responses) == [200, 412], [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 200).json()
    problem(next(r for r in responses if r.status_code == 412), 412)
    current = await get_ticket(client, tenant_a["agent"], ticket["id"])
    assert (current["priority"], current["version"]) == (winner["priority"], 2)
    priority_rows = [
        h for h in await history_rows(database, tenant_a, ticket["id"]) if h[0] == "priority"
    ]
    assert len(priority_rows) == 1


async def test_concurrent_moves_are_serialised_by_the_row_lock(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    """resolved -> closed and resolved -> open at once: whichever runs second starts from
    the other's result, where its move is not allowed."""
    ticket = await ticket_in(client, tenant_a, "resolved")
    responses = await asyncio.gather(
        patch(client, tenant_a["agent"], ticket["id"], {"status": "closed"}),
        patch(client, tenant_a["manager"], ticket["id"], {"status": "open"}),
    )
    assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 200).json()
    current = await get_ticket(client, tenant_a["agent"], ticket["id"])
    assert (current["status"], current["version"]) == (winner["status"], ticket["version"] + 1)
    statuses = [h for h in await history_rows(database, tenant_a, ticket["id"]) if h[0] == "status"]
    assert statuses[-1][1:3] == ("resolved", winner["status"])


async def test_concurrent_patches_without_if_match_lose_no_update(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    ticket = await create(client, tenant_a)
    responses = await asyncio.gather(
        patch(client, tenant_a["agent"], ticket["id"], {"priority": "urgent"}),
        patch(client, tenant_a["manager"], ticket["id"], {"tags": ["late"]}),
        patch(client, tenant_a["admin"], ticket["id"], {"description": "more"}),
    )
    assert [r.status_code for r in responses] == [200, 200, 200], [r.text for r in responses]
    assert sorted(r.json()["version"] for r in responses) == [2, 3, 4]
    current = await get_ticket(client, tenant_a["agent"], ticket["id"])
    assert (current["priority"], current["tags"], current["description"]) == (
        "urgent",
        ["late"],
        "more",
    )
    assert current["version"] == 4


# --- customers -----------------------------------------------------------------------


async def test_customers_see_only_their_own_tickets(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    other = await add_user(database, tenant_a.org, Role.CUSTOMER)
    mine = [await create(client, tenant_a, "customer"), await create(client, tenant_a)]
    theirs = await create(client, tenant_a, customer_id=str(other.id))
    me = tenant_a["customer"]

    listed = await list_all(client, me)
    assert sorted(t["id"] for t in listed) == sorted(t["id"] for t in mine)
    assert await list_all(client, me, customer_id=str(other.id)) == []
    assert {t["id"] for t in await list_all(client, tenant_a["agent"])} == {
        *(t["id"] for t in mine),
        theirs["id"],
    }
    assert (await get_ticket(client, me, mine[1]["id"]))["id"] == mine[1]["id"]

    missing = await client.get(f"{TICKETS}/{uuid.uuid4()}", headers=me.headers)
    for path in ("", "/comments"):
        response = await client.get(f"{TICKETS}/{theirs['id']}{path}", headers=me.headers)
        assert problem(response, 404) == problem(missing, 404)
    response = await client.post(
        f"{TICKETS}/{theirs['id']}/comments", json={"content": "hi"}, headers=me.headers
    )
    assert problem(response, 404) == problem(missing, 404)


async def test_customers_cannot_change_delete_restore_or_audit(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    own = await create(client, tenant_a, "customer")
    me = tenant_a["customer"]
    before = await snapshot(database, tenant_a)
    problem(await patch(client, me, own["id"], {"subject": "Changed"}), 403)
    problem(await patch(client, me, own["id"], {"status": "cancelled"}), 403)
    problem(await client.delete(f"{TICKETS}/{own['id']}", headers=me.headers), 403)
    problem(await client.post(f"{TICKETS}/{own['id']}/restore", headers=me.headers), 403)
    problem(await client.get(f"{TICKETS}/{own['id']}/history", headers=me.headers), 403)
    problem(await client.get(TICKETS, params={"include_deleted": "true"}, headers=me.headers), 403)
    assert await snapshot(database, tenant_a) == before


# --- tenancy ---------------------------------------------------------------------------

# A multipart body with one small file, for the upload route.
UPLOAD: dict[str, Any] = {"__upload__": True}

# (method, path under /tickets/{id}, body): every route that takes a ticket id.
TICKET_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "", None),
    ("PATCH", "", {"priority": "urgent"}),
    ("DELETE", "", None),
    ("POST", "/restore", None),
    ("GET", "/comments", None),
    ("POST", "/comments", {"content": "Sneaky"}),
    ("GET", "/history", None),
    ("GET", "/sla-events", None),
    ("GET", "/attachments", None),
    ("POST", "/attachments", UPLOAD),
]


def test_the_tenancy_table_covers_every_ticket_route(app: FastAPI) -> None:
    prefix = f"{TICKETS}/{{ticket_id}}"
    routes = {
        (method.upper(), path.removeprefix(prefix))
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(prefix)
        for method in operations
    }
    assert routes == {(method, path) for method, path, _ in TICKET_ROUTES}


@pytest.mark.parametrize(
    ("method", "path", "body"), TICKET_ROUTES, ids=[f"{m} {p or '/'}" for m, p, _ in TICKET_ROUTES]
)
@pytest.mark.parametrize("actor", ["admin", "manager"])
async def test_another_organizations_ticket_is_404(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    tenant_b: Tenant,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    actor: str,
) -> None:
    foreign = await create(client, tenant_b)
    if path == "/restore":  # the most tempting target: a deleted one
        response = await client.delete(
            f"{TICKETS}/{foreign['id']}", headers=tenant_b["admin"].headers
        )
        assert response.status_code == 204
    before = await snapshot(database, tenant_b)

    async def attempt(ticket_id: str) -> httpx.Response:
        url = f"{TICKETS}/{ticket_id}{path}"
        if body is UPLOAD:
            files = {"file": ("a.txt", b"hello", "text/plain")}
            return await client.request(method, url, files=files, headers=tenant_a[actor].headers)
        return await client.request(method, url, json=body, headers=tenant_a[actor].headers)

    missing = problem(await attempt(str(uuid.uuid4())), 404)
    assert problem(await attempt(foreign["id"]), 404) == missing
    assert await snapshot(database, tenant_b) == before


@pytest.mark.parametrize("if_match", ['"1"', '"7"'], ids=["current", "stale"])
async def test_if_match_on_another_organizations_ticket_is_still_404(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant, if_match: str
) -> None:
    """No version oracle: the precondition is never evaluated on a ticket you cannot see."""
    foreign = await create(client, tenant_b)
    before = await snapshot(database, tenant_b)
    response = await patch(
        client,
        tenant_a["admin"],
        foreign["id"],
        {"priority": "low"},
        headers={"If-Match": if_match},
    )
    problem(response, 404)
    assert await snapshot(database, tenant_b) == before


async def test_lists_never_show_another_organizations_tickets(
    client: httpx.AsyncClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    foreign = await create(client, tenant_b, tags=["shared"])
    own = await create(client, tenant_a, tags=["shared"])
    for params in (
        {},
        {"tag": "shared"},
        {"customer_id": customer_of(tenant_b)},
        {"include_deleted": "true"},
    ):
        ids = {t["id"] for t in await list_all(client, tenant_a["admin"], **params)}
        assert foreign["id"] not in ids
    assert {t["id"] for t in await list_all(client, tenant_a["admin"])} == {own["id"]}


# --- delete and restore ----------------------------------------------------------------


async def test_delete_hides_and_restore_brings_back(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket = await create(client, tenant_a)
    kept = await create(client, tenant_a)
    admin, manager, agent = tenant_a["admin"], tenant_a["manager"], tenant_a["agent"]

    problem(await client.delete(f"{TICKETS}/{ticket['id']}", headers=agent.headers), 403)
    response = await client.delete(f"{TICKETS}/{ticket['id']}", headers=manager.headers)
    assert response.status_code == 204
    assert response.content == b""
    row = await ticket_row(database, tenant_a, ticket["id"])
    assert row is not None and row.deleted_at is not None

    missing = problem(await client.get(f"{TICKETS}/{uuid.uuid4()}", headers=admin.headers), 404)
    for actor in (admin, manager, agent):
        response = await client.get(f"{TICKETS}/{ticket['id']}", headers=actor.headers)
        assert problem(response, 404) == missing
        assert {t["id"] for t in await list_all(client, actor)} == {kept["id"]}
    problem(await patch(client, admin, ticket["id"], {"priority": "high"}), 404)
    problem(await client.delete(f"{TICKETS}/{ticket['id']}", headers=admin.headers), 404)

    shown = {t["id"]: t for t in await list_all(client, admin, include_deleted="true")}
    assert set(shown) == {ticket["id"], kept["id"]}
    assert ts(shown[ticket["id"]]["deleted_at"]) == row.deleted_at
    assert shown[kept["id"]]["deleted_at"] is None
    for actor in (manager, agent):
        response = await client.get(
            TICKETS, params={"include_deleted": "true"}, headers=actor.headers
        )
        problem(response, 403)

    problem(await client.post(f"{TICKETS}/{ticket['id']}/restore", headers=agent.headers), 403)
    response = await client.post(f"{TICKETS}/{ticket['id']}/restore", headers=manager.headers)
    assert response.status_code == 200, response.text
    restored = response.json()
    assert restored["deleted_at"] is None
    assert response.headers["etag"] == f'"{restored["version"]}"'
    assert (await get_ticket(client, agent, ticket["id"]))["deleted_at"] is None
    assert {t["id"] for t in await list_all(client, agent)} == {ticket["id"], kept["id"]}

    # Restoring a live ticket is a no-op.
    again = await client.post(f"{TICKETS}/{ticket['id']}/restore", headers=admin.headers)
    assert again.status_code == 200
    assert again.json()["version"] == restored["version"]


async def test_restore_of_an_unknown_ticket_is_404(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    response = await client.post(
        f"{TICKETS}/{uuid.uuid4()}/restore", headers=tenant_a["admin"].headers
    )
    problem(response, 404)


# --- lists: filters, sorts, paging ------------------------------------------------------


@dataclass
class Catalog:
    """One organization with a ticket of every kind, shared by the read-only list tests."""

    tenant: Tenant
    other_customer: str
    ids: dict[str, str] = field(default_factory=dict)
    created: dict[str, datetime] = field(default_factory=dict)

    def names(self, rows: list[dict[str, Any]]) -> list[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id[row["id"]] for row in rows]


@pytest.fixture(scope="module")
async def catalog(client: httpx.AsyncClient, database: Database) -> Catalog:
    tenant = await make_tenant(database, "Catalog")
    other = await add_user(database, tenant.org, Role.CUSTOMER)
    cat = Catalog(tenant=tenant, other_customer=str(other.id))
    c1, c2 = customer_of(tenant), str(other.id)
    agent, manager = user_of(tenant, "agent"), user_of(tenant, "manager")
    dept = str(tenant.department_id)
    specs: list[tuple[str, str, dict[str, Any]]] = [
        ("t0", "new", {"subject": "Printer on fire", "description": "Third floor",
                       "priority": "urgent", "channel": "email", "customer_id": c1,
                       "assigned_agent_id": agent, "department_id": dept,
                       "tags": ["hardware", "VIP"]}),
        ("t1", "open", {"subject": "Password reset", "description": "Cannot LOG IN",
                        "priority": "low", "channel": "web", "customer_id": c1,
                        "tags": ["account"]}),
        ("t2", "pending", {"subject": "Invoice 100% wrong", "description": "billing",
                           "priority": "high", "channel": "phone", "customer_id": c2,
                           "assigned_agent_id": manager, "tags": ["billing", "vip"]}),
        ("t3", "resolved", {"subject": "Refund_request", "priority": "medium",
                            "channel": "chat", "customer_id": c2, "department_id": dept}),
        ("t4", "cancelled", {"subject": "VPN drops", "description": "every hour",
                             "priority": "medium", "channel": "api", "customer_id": c1,
                             "assigned_agent_id": agent}),
        ("t5", "closed", {"subject": "Laptop", "priority": "high", "channel": "web",
                          "customer_id": c2, "assigned_agent_id": agent,
                          "tags": ["hardware"]}),
        ("gone", "new", {"subject": "Printer deleted", "priority": "urgent",
                         "channel": "email", "customer_id": c1, "assigned_agent_id": agent,
                         "department_id": dept, "tags": ["vip", "hardware"]}),
    ]  # fmt: skip
    for name, status, body in specs:
        ticket = await ticket_in(client, tenant, status, **body)
        cat.ids[name] = ticket["id"]
    # What no API sets yet: SLA breach and due times (ties and NULLs included). One
    # transaction, so t0-t4 share an updated_at: ties for the keyset to break by id.
    now = datetime.now(UTC).replace(microsecond=0)
    due = {"t0": now + timedelta(hours=3), "t1": now + timedelta(hours=1),
           "t2": now + timedelta(hours=1), "t3": now + timedelta(hours=2),
           "gone": now}  # fmt: skip
    async with database.tenant_session(tenant.org.id) as session:
        for name, when in due.items():
            await session.execute(
                sa.update(Ticket)
                .where(Ticket.id == uuid.UUID(cat.ids[name]))
                .values(resolution_due_at=when)
                .execution_options(include_deleted=True)
            )
        await session.execute(
            sa.update(Ticket)
            .where(Ticket.id.in_([uuid.UUID(cat.ids["t4"]), uuid.UUID(cat.ids["gone"])]))
            .values(sla_breach=True)
            .execution_options(include_deleted=True)
        )
        await session.commit()
    # Touch some in another order, so updated_at order differs from created_at order
    # (t3, t0 and t1 leave the tie; t5 is closed, which takes no more changes).
    touched = {"t3": "touched t3", "t0": "touched t0", "t1": "Cannot LOG IN (touched)"}
    for name, description in touched.items():
        await patched(client, tenant["admin"], cat.ids[name], {"description": description})
    response = await client.delete(f"{TICKETS}/{cat.ids['gone']}", headers=tenant["admin"].headers)
    assert response.status_code == 204
    updated: dict[str, datetime] = {}
    for row in await all_ticket_rows(database, tenant):
        name = cat.names([{"id": str(row.id)}])[0]
        cat.created[name], updated[name] = row.created_at, row.updated_at
    assert updated["t2"] == updated["t4"] < updated["t3"]
    return cat


def _between(cat: Catalog, a: str, b: str) -> str:
    return (cat.created[a] + (cat.created[b] - cat.created[a]) / 2).isoformat()


LIVE = ["t0", "t1", "t2", "t3", "t4", "t5"]
FILTERS: list[tuple[str, dict[str, Any], set[str]]] = [
    ("none", {}, set(LIVE)),
    ("status", {"status": "open"}, {"t1"}),
    ("status-repeated", {"status": ["open", "pending"]}, {"t1", "t2"}),
    ("status-final", {"status": ["closed", "cancelled"]}, {"t4", "t5"}),
    ("priority", {"priority": "high"}, {"t2", "t5"}),
    ("priority-repeated", {"priority": ["low", "urgent"]}, {"t0", "t1"}),
    ("channel", {"channel": "email"}, {"t0"}),
    ("channel-web", {"channel": "web"}, {"t1", "t5"}),
    ("assigned-agent", {"assigned_agent_id": "@agent"}, {"t0", "t4", "t5"}),
    ("assigned-manager", {"assigned_agent_id": "@manager"}, {"t2"}),
    ("unassigned", {"unassigned": "true"}, {"t1", "t3"}),
    ("customer", {"customer_id": "@other"}, {"t2", "t3", "t5"}),
    ("customer-unknown", {"customer_id": "@random"}, set()),
    ("department", {"department_id": "@dept"}, {"t0", "t3"}),
    ("tag", {"tag": "vip"}, {"t0", "t2"}),
    ("tag-normalised", {"tag": " VIP "}, {"t0", "t2"}),
    ("tag-hardware", {"tag": "hardware"}, {"t0", "t5"}),
    ("tag-partial-is-no-match", {"tag": "hard"}, set()),
    ("sla-breach", {"sla_breach": "true"}, {"t4"}),
    ("sla-ok", {"sla_breach": "false"}, {"t0", "t1", "t2", "t3", "t5"}),
    ("created-after", {"created_after": "@t2|t3"}, {"t3", "t4", "t5"}),
    ("created-before", {"created_before": "@t2|t3"}, {"t0", "t1", "t2"}),
    ("created-window", {"created_after": "@t0|t1", "created_before": "@t3|t4"},
     {"t1", "t2", "t3"}),
    ("q-subject", {"q": "printer"}, {"t0"}),
    ("q-subject-upper", {"q": "PASSWORD"}, {"t1"}),
    ("q-description", {"q": "log in"}, {"t1"}),
    ("q-description-mixed", {"q": "EvErY HoUr"}, {"t4"}),
    ("q-percent-literal", {"q": "100%"}, {"t2"}),
    ("q-percent-alone", {"q": "%"}, {"t2"}),
    ("q-underscore-literal", {"q": "_"}, {"t3"}),
    ("q-no-match", {"q": "zebra"}, set()),
    ("combined", {"status": ["new", "closed"], "priority": "high"}, {"t5"}),
    ("combined-2", {"assigned_agent_id": "@agent", "tag": "hardware", "channel": "web"}, {"t5"}),
]  # fmt: skip


def _resolve(cat: Catalog, value: Any) -> Any:
    if isinstance(value, list):
        return [_resolve(cat, v) for v in value]
    if not (isinstance(value, str) and value.startswith("@")):
        return value
    token = value[1:]
    if "|" in token:
        a, b = token.split("|")
        return _between(cat, a, b)
    return {
        "agent": user_of(cat.tenant, "agent"),
        "manager": user_of(cat.tenant, "manager"),
        "other": cat.other_customer,
        "random": str(uuid.uuid4()),
        "dept": str(cat.tenant.department_id),
    }[token]


@pytest.mark.parametrize(("case", "params", "expected"), FILTERS, ids=[c for c, _, _ in FILTERS])
async def test_list_filters(
    client: httpx.AsyncClient,
    catalog: Catalog,
    case: str,
    params: dict[str, Any],
    expected: set[str],
) -> None:
    query = {k: _resolve(catalog, v) for k, v in params.items()}
    rows = await list_all(client, catalog.tenant["agent"], **query)
    names = catalog.names(rows)
    assert len(names) == len(set(names))
    assert set(names) == expected, case
    # The admin's view with deleted rows adds the deleted one wherever it matches.
    with_deleted = catalog.names(
        await list_all(client, catalog.tenant["admin"], include_deleted="true", **query)
    )
    assert set(with_deleted) - {"gone"} == expected


async def test_deleted_rows_match_filters_for_admins_only(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    query = {"tag": "vip", "priority": "urgent", "sla_breach": "true", "q": "printer"}
    admin = catalog.tenant["admin"]
    assert catalog.names(await list_all(client, admin, include_deleted="true", **query)) == ["gone"]
    assert await list_all(client, admin, **query) == []


async def test_customer_list_is_scoped_before_filters(
    client: httpx.AsyncClient, catalog: Catalog
) -> None:
    me = catalog.tenant["customer"]
    assert set(catalog.names(await list_all(client, me))) == {"t0", "t1", "t4"}
    assert set(catalog.names(await list_all(client, me, tag="vip"))) == {"t0"}
    assert await list_all(client, me, customer_id=catalog.other_customer) == []


async def _comment(client: httpx.AsyncClient, actor: Actor, ticket_id: str, **body: Any) -> None:
    response = await client.post(
        f"{TICKETS}/{ticket_id}/comments", json=body, headers=actor.headers
    )
    assert response.status_code == 201, response.text


async def test_q_also_searches_comments(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    target = await create(client, tenant_a, subject="Login trouble")
    await create(client, tenant_a, subject="Other")
    await _comment(client, tenant_a["agent"], target["id"], content="Kerberos ticket expired")
    found = await list_all(client, tenant_a["agent"], q="kerberos")
    assert [t["id"] for t in found] == [target["id"]]


async def test_customers_do_not_find_tickets_by_internal_notes(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    own = await create(client, tenant_a, "customer", subject="Login trouble")
    await _comment(
        client, tenant_a["agent"], own["id"], content="Zanzibar escalation", comment_type="internal"
    )
    assert await list_all(client, tenant_a["customer"], q="zanzibar") == []


def _expected_order(rows: list[Ticket], sort: str) -> list[uuid.UUID]:
    rank = {"low": 1, "medium": 2, "high": 3, "urgent": 4}
    if sort == "resolution_due_at":
        due = sorted(
            (r for r in rows if r.resolution_due_at), key=lambda r: (r.resolution_due_at, r.id)
        )
        return [r.id for r in due] + sorted(r.id for r in rows if r.resolution_due_at is None)
    column = sort.lstrip("-")

    def key(r: Ticket) -> tuple[Any, uuid.UUID]:
        value = rank[r.priority.value] if column == "priority" else getattr(r, column)
        return (value, r.id)

    return [r.id for r in sorted(rows, key=key, reverse=sort.startswith("-"))]


SORTS = [
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
    "priority",
    "-priority",
    "resolution_due_at",
]


# `None` is the default sort (-created_at).
WALKS = [None, *SORTS]


async def _expected_ids(database: Database, catalog: Catalog, sort: str) -> list[str]:
    rows = [r for r in await all_ticket_rows(database, catalog.tenant) if r.deleted_at is None]
    return [str(i) for i in _expected_order(rows, sort)]


@pytest.mark.parametrize("sort", SORTS)
async def test_sorts_order_rows(
    client: httpx.AsyncClient, database: Database, catalog: Catalog, sort: str
) -> None:
    expected = await _expected_ids(database, catalog, sort)
    listed = [t["id"] for t in await list_all(client, catalog.tenant["agent"], sort=sort)]
    assert listed == expected


async def test_default_sort_is_newest_first(client: httpx.AsyncClient, catalog: Catalog) -> None:
    agent = catalog.tenant["agent"]
    assert [t["id"] for t in await list_all(client, agent)] == [
        t["id"] for t in await list_all(client, agent, sort="-created_at")
    ]


@pytest.mark.parametrize("sort", WALKS)
async def test_cursor_walk_serves_every_row_once(
    client: httpx.AsyncClient, database: Database, catalog: Catalog, sort: str | None
) -> None:
    expected = await _expected_ids(database, catalog, sort or "-created_at")
    agent = catalog.tenant["agent"]
    params = {} if sort is None else {"sort": sort}
    pages = await walk(client, agent, 2, **params)
    assert [len(p) for p in pages] == [2, 2, 2]
    assert [t["id"] for page in pages for t in page] == expected
    # A filtered walk pages over the filtered rows only, each once.
    filtered = await walk(client, agent, 1, status=["new", "open", "pending"], **params)
    subset = {catalog.ids[n] for n in ("t0", "t1", "t2")}
    assert [t["id"] for page in filtered for t in page] == [i for i in expected if i in subset]


@pytest.mark.parametrize("sort", WALKS)
async def test_cursor_walk_with_deleted_rows_for_admins(
    client: httpx.AsyncClient, catalog: Catalog, sort: str | None
) -> None:
    admin = catalog.tenant["admin"]
    params = {"include_deleted": "true"} | ({} if sort is None else {"sort": sort})
    full = [t["id"] for t in await list_all(client, admin, **params)]
    assert sorted(full) == sorted(catalog.ids.values())
    pages = await walk(client, admin, 2, **params)
    assert [t["id"] for page in pages for t in page] == full


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"sort": "subject"}, ["query", "sort"]),
        ({"sort": "+created_at"}, ["query", "sort"]),
        ({"status": "done"}, ["query", "status", 0]),
        ({"status": ["open", "done"]}, ["query", "status", 1]),
        ({"priority": "critical"}, ["query", "priority", 0]),
        ({"channel": "fax"}, ["query", "channel"]),
        ({"assigned_agent_id": "not-a-uuid"}, ["query", "assigned_agent_id"]),
        ({"created_after": "yesterday"}, ["query", "created_after"]),
        ({"limit": 0}, ["query", "limit"]),
        ({"limit": 201}, ["query", "limit"]),
        ({"cursor": "garbage!"}, ["query", "cursor"]),
    ],
)
async def test_invalid_list_parameters_are_422(
    client: httpx.AsyncClient, tenant_a: Tenant, params: dict[str, Any], loc: list[Any]
) -> None:
    await create(client, tenant_a)
    response = await client.get(TICKETS, params=params, headers=tenant_a["agent"].headers)
    assert field_locs(problem(response, 422)) == [loc]


# --- history -------------------------------------------------------------------------


@dataclass
class Ctx:
    client: httpx.AsyncClient
    database: Database
    tenant: Tenant
    ticket: dict[str, Any]

    def who(self, actor: str) -> str | None:
        return uid(self.tenant[actor].user_id)

    async def row(self) -> Ticket:
        found = await ticket_row(self.database, self.tenant, self.ticket["id"])
        assert found is not None
        return found

    async def patch(self, body: dict[str, Any], actor: str = "agent") -> dict[str, Any]:
        return await patched(self.client, self.tenant[actor], self.ticket["id"], body)

    async def comment(self, actor: str, comment_type: str) -> str:
        response = await self.client.post(
            f"{TICKETS}/{self.ticket['id']}/comments",
            json={"content": "Hello", "comment_type": comment_type},
            headers=self.tenant[actor].headers,
        )
        assert response.status_code == 201, response.text
        comment_id: str = response.json()["id"]
        return comment_id


async def _priority(c: Ctx) -> list[HistoryRow]:
    await c.patch({"priority": "high"})
    return [("priority", "medium", "high", c.who("agent"))]


async def _priority_by_key(c: Ctx) -> list[HistoryRow]:
    await c.patch({"priority": "low"}, actor="api_key")
    return [("priority", "medium", "low", None)]


async def _subject_and_description(c: Ctx) -> list[HistoryRow]:
    old = c.ticket["subject"]
    await c.patch({"subject": "  Renamed  ", "description": "More words"}, actor="manager")
    return [
        ("subject", old, "Renamed", c.who("manager")),
        ("description", "", "More words", c.who("manager")),
    ]


async def _open(c: Ctx) -> list[HistoryRow]:
    await c.patch({"status": "open"})
    return [("status", "new", "open", c.who("agent"))]


async def _resolve_ticket(c: Ctx) -> list[HistoryRow]:
    body = await c.patch({"status": "resolved"})
    row = await c.row()
    assert body["time_to_resolution"] == row.time_to_resolution
    return [
        ("status", "new", "resolved", c.who("agent")),
        ("resolved_at", None, iso(row.resolved_at), c.who("agent")),
        ("time_to_resolution", None, str(row.time_to_resolution), c.who("agent")),
    ]


async def _reopen(c: Ctx) -> list[HistoryRow]:
    await c.patch({"status": "resolved"})
    resolved = await c.row()
    await c.patch({"status": "open"}, actor="manager")
    return [
        ("status", "resolved", "open", c.who("manager")),
        ("resolved_at", iso(resolved.resolved_at), None, c.who("manager")),
        ("time_to_resolution", str(resolved.time_to_resolution), None, c.who("manager")),
    ]


async def _close(c: Ctx) -> list[HistoryRow]:
    await c.patch({"status": "resolved"})
    await c.patch({"status": "closed"}, actor="admin")
    row = await c.row()
    return [
        ("status", "resolved", "closed", c.who("admin")),
        ("closed_at", None, iso(row.closed_at), c.who("admin")),
    ]


async def _cancel(c: Ctx) -> list[HistoryRow]:
    await c.patch({"status": "cancelled"})
    return [("status", "new", "cancelled", c.who("agent"))]


async def _assign(c: Ctx) -> list[HistoryRow]:
    await c.patch({"assigned_agent_id": c.who("agent")}, actor="manager")
    return [("assigned_agent_id", None, c.who("agent"), c.who("manager"))]


async def _reassign(c: Ctx) -> list[HistoryRow]:
    await c.patch({"assigned_agent_id": c.who("agent")})
    await c.patch({"assigned_agent_id": c.who("manager")})
    return [("assigned_agent_id", c.who("agent"), c.who("manager"), c.who("agent"))]


async def _unassign(c: Ctx) -> list[HistoryRow]:
    await c.patch({"assigned_agent_id": c.who("agent")})
    await c.patch({"assigned_agent_id": None})
    return [("assigned_agent_id", c.who("agent"), None, c.who("agent"))]


async def _department(c: Ctx) -> list[HistoryRow]:
    dept = str(c.tenant.department_id)
    await c.patch({"department_id": dept})
    return [("department_id", None, dept, c.who("agent"))]


async def _tags(c: Ctx) -> list[HistoryRow]:
    await c.patch({"tags": ["B", "a", "b"]})
    return [("tags", "[]", '["a", "b"]', c.who("agent"))]


async def _two_fields(c: Ctx) -> list[HistoryRow]:
    await c.patch({"priority": "urgent", "tags": ["x"], "subject": c.ticket["subject"]})
    return [
        ("priority", "medium", "urgent", c.who("agent")),
        ("tags", "[]", '["x"]', c.who("agent")),
    ]


async def _delete(c: Ctx) -> list[HistoryRow]:
    response = await c.client.delete(
        f"{TICKETS}/{c.ticket['id']}", headers=c.tenant["manager"].headers
    )
    assert response.status_code == 204
    row = await c.row()
    return [("deleted_at", None, iso(row.deleted_at), c.who("manager"))]


async def _restore(c: Ctx) -> list[HistoryRow]:
    response = await c.client.delete(
        f"{TICKETS}/{c.ticket['id']}", headers=c.tenant["admin"].headers
    )
    assert response.status_code == 204
    deleted_at = (await c.row()).deleted_at
    response = await c.client.post(
        f"{TICKETS}/{c.ticket['id']}/restore", headers=c.tenant["admin"].headers
    )
    assert response.status_code == 200
    return [("deleted_at", iso(deleted_at), None, c.who("admin"))]


async def _internal_note(c: Ctx) -> list[HistoryRow]:
    comment_id = await c.comment("agent", "internal")
    return [("comment", None, comment_id, c.who("agent"))]


async def _customer_reply(c: Ctx) -> list[HistoryRow]:
    comment_id = await c.comment("customer", "public")
    return [("comment", None, comment_id, c.who("customer"))]


async def _first_public_reply(c: Ctx) -> list[HistoryRow]:
    comment_id = await c.comment("agent", "public")
    row = await c.row()
    second = await c.comment("manager", "public")  # not the first: no more stamps
    return [
        ("comment", None, comment_id, c.who("agent")),
        ("first_response_at", None, iso(row.first_response_at), c.who("agent")),
        ("time_to_first_response", None, str(row.time_to_first_response), c.who("agent")),
        ("comment", None, second, c.who("manager")),
    ]


async def _no_op_patch(c: Ctx) -> list[HistoryRow]:
    body = await c.patch(
        {"priority": "medium", "tags": [], "status": "new", "subject": c.ticket["subject"]}
    )
    assert body["version"] == c.ticket["version"]
    return []


async def _refused_move(c: Ctx) -> list[HistoryRow]:
    response = await patch(c.client, c.tenant["agent"], c.ticket["id"], {"status": "closed"})
    problem(response, 409)
    return []


HISTORY_CASES = {
    "priority": _priority,
    "priority-by-api-key": _priority_by_key,
    "subject-and-description": _subject_and_description,
    "status-open": _open,
    "status-resolve": _resolve_ticket,
    "status-reopen": _reopen,
    "status-close": _close,
    "status-cancel": _cancel,
    "assign": _assign,
    "reassign": _reassign,
    "unassign": _unassign,
    "department": _department,
    "tags": _tags,
    "two-fields": _two_fields,
    "delete": _delete,
    "restore": _restore,
    "internal-note": _internal_note,
    "customer-reply": _customer_reply,
    "first-public-reply": _first_public_reply,
    "no-op-patch": _no_op_patch,
    "refused-move": _refused_move,
}


@pytest.mark.parametrize("case", list(HISTORY_CASES))
async def test_history_rows_per_action(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, case: str
) -> None:
    ticket = await create(client, tenant_a, "agent")
    ctx = Ctx(client, database, tenant_a, ticket)
    created: HistoryRow = ("ticket", None, ticket["ticket_number"], ctx.who("agent"))
    assert await history_rows(database, tenant_a, ticket["id"]) == [created]

    expected = await HISTORY_CASES[case](ctx)
    # Only the action under test, after set-up steps, counts: compare the tail.
    rows = await history_rows(database, tenant_a, ticket["id"])
    assert rows[0] == created
    assert Counter(rows[len(rows) - len(expected) :]) == Counter(expected)
    if not expected:
        assert rows == [created]

    if case == "delete":  # a deleted ticket is gone from every route, history included
        response = await client.get(
            f"{TICKETS}/{ticket['id']}/history", headers=tenant_a["agent"].headers
        )
        problem(response, 404)
        return
    api = await api_history(client, tenant_a["agent"], ticket["id"])
    assert [(h["field"], h["old_value"], h["new_value"], h["user_id"]) for h in api] == rows
    assert all(h["ticket_id"] == ticket["id"] for h in api)
    stamps = [ts(h["created_at"]) for h in api]
    assert stamps == sorted(stamps)


async def test_history_of_an_api_key_ticket_has_no_person(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket = await create(client, tenant_a, "api_key")
    assert await history_rows(database, tenant_a, ticket["id"]) == [
        ("ticket", None, ticket["ticket_number"], None)
    ]


@pytest.mark.parametrize(
    ("actor", "status"),
    [("admin", 200), ("manager", 200), ("agent", 200), ("api_key", 200), ("customer", 403)],
)
async def test_who_may_read_history(
    client: httpx.AsyncClient, tenant_a: Tenant, actor: str, status: int
) -> None:
    ticket = await create(client, tenant_a, "customer")
    response = await client.get(
        f"{TICKETS}/{ticket['id']}/history", headers=tenant_a[actor].headers
    )
    if status == 200:
        assert response.status_code == 200, response.text
        assert [h["field"] for h in response.json()["items"]] == ["ticket"]
    else:
        problem(response, status)


# --- outbox events ---------------------------------------------------------------------


async def test_create_update_and_comment_write_events_in_their_transaction(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket = await create(client, tenant_a)
    tid = ticket["id"]

    async def new_events(since: int) -> list[OutboxEvent]:
        return (await events(database, tenant_a))[since:]

    [created] = await new_events(0)
    assert (created.event_type, str(created.aggregate_id)) == ("ticket.created", tid)
    assert created.payload == {"id": tid, "ticket_number": ticket["ticket_number"]}
    # Same transaction: PostgreSQL's now() is the transaction's start, and it stamps the
    # history row and the event alike.
    async with database.tenant_session(tenant_a.org.id) as session:
        written = await session.scalar(
            sa.select(TicketHistory.created_at).where(TicketHistory.ticket_id == uuid.UUID(tid))
        )
    assert created.created_at == written

    steps: list[tuple[dict[str, Any], set[str]]] = [
        ({"priority": "high", "tags": ["a"]}, {"priority", "tags"}),
        ({"status": "resolved"}, {"status", "resolved_at", "time_to_resolution"}),
        ({"status": "open"}, {"status", "resolved_at", "time_to_resolution"}),
        (
            {"assigned_agent_id": user_of(tenant_a, "agent"), "priority": "high"},
            {"assigned_agent_id"},
        ),
    ]
    seen = 1
    for body, changed in steps:
        updated = await patched(client, tenant_a["agent"], tid, body)
        [event] = await new_events(seen)
        seen += 1
        assert event.event_type == "ticket.updated"
        assert event.payload["id"] == tid
        assert set(event.payload["changes"]) == changed
        for name in changed & {"priority", "status"}:
            assert event.payload["changes"][name]["new"] == updated[name]
        history = await history_rows(database, tenant_a, tid)
        assert {h[0] for h in history[-len(changed) :]} == changed
        assert event.created_at == ts(updated["updated_at"])

    response = await client.post(
        f"{TICKETS}/{tid}/comments",
        json={"content": "On it", "comment_type": "internal"},
        headers=tenant_a["agent"].headers,
    )
    assert response.status_code == 201, response.text
    [event] = await new_events(seen)
    assert event.event_type == "ticket.comment_added"
    assert event.payload == {
        "id": tid,
        "comment_id": response.json()["id"],
        "comment_type": "internal",
    }
    assert event.created_at == ts(response.json()["created_at"])


async def test_delete_and_restore_write_one_event_each(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket = await create(client, tenant_a)
    admin = tenant_a["admin"]
    response = await client.delete(f"{TICKETS}/{ticket['id']}", headers=admin.headers)
    assert response.status_code == 204
    [_, deleted] = await events(database, tenant_a)
    assert str(deleted.aggregate_id) == ticket["id"]
    response = await client.post(f"{TICKETS}/{ticket['id']}/restore", headers=admin.headers)
    assert response.status_code == 200
    [_, _, restored] = await events(database, tenant_a)
    assert restored.event_type == "ticket.updated"
    assert set(restored.payload["changes"]) == {"deleted_at"}
    assert restored.payload["changes"]["deleted_at"]["new"] is None


async def test_refused_and_empty_requests_write_no_events(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, busy_agent: str
) -> None:
    ticket = await create(client, tenant_a)
    await create(client, tenant_a, assigned_agent_id=busy_agent)
    tid = ticket["id"]
    agent = tenant_a["agent"]
    before = await snapshot(database, tenant_a)
    not_a_customer = {"subject": "x", "customer_id": user_of(tenant_a, "agent")}
    over_capacity = {"subject": "x", "customer_id": customer_of(tenant_a)}
    over_capacity["assigned_agent_id"] = busy_agent
    stale = {"If-Match": '"9"'}
    attempts: list[tuple[httpx.Response, int]] = [
        (await patch(client, agent, tid, {"status": "closed"}), 409),
        (await patch(client, agent, tid, {"assigned_agent_id": busy_agent}), 409),
        (await patch(client, agent, tid, {"assigned_agent_id": customer_of(tenant_a)}), 422),
        (await patch(client, agent, tid, {"priority": "high"}, headers=stale), 412),
        (await patch(client, agent, tid, {"priority": "nope"}), 422),
        (await post_ticket(client, agent, not_a_customer), 422),
        (await post_ticket(client, agent, over_capacity), 409),
        (
            await post_ticket(
                client, agent, {"subject": " ", "customer_id": customer_of(tenant_a)}
            ),
            422,
        ),
        (
            await client.post(
                f"{TICKETS}/{tid}/comments", json={"content": ""}, headers=agent.headers
            ),
            422,
        ),
    ]
    for response, status in attempts:
        problem(response, status)
    # A PATCH that changes nothing is 200 and silent.
    response = await patch(client, agent, tid, {"priority": "medium", "tags": []})
    assert response.status_code == 200
    assert await snapshot(database, tenant_a) == before
