"""SLA timers in one process: a due breach flagged once with its history row and event,
escalations at their percentages once each (notify, raise_priority, reassign), a
worker bound to one organization that cannot see or touch another's tickets, a failing
ticket that does not hold up the others, and the loop that keeps flagging with Redis
gone."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa
from arq.connections import ArqRedis

from app.config import Settings
from app.db.database import Database
from app.kit.jobs import ArqJobQueue, run_job
from app.models import Notification
from app.models.ticket import Ticket, TicketSLAEvent
from app.models.user import AvailabilityStatus, Role
from app.sla.clock import EventKind
from app.sla.repository import SLARepository
from app.sla.timers import Batch, TimerLoop, flag_due
from app.tickets.repository import TicketRepository
from tests.support.api import pages
from tests.support.identity import API, Tenant, add_user
from tests.support.sla import add_policy, age, kinds, sla_events
from tests.support.tickets import TICKETS, create, event_rows, get_ticket, history_rows, ts


async def flag(database: Database, tenant: Tenant) -> Batch:
    batch: Batch = await run_job(database, flag_due, tenant.org.id)
    return batch


def recorded(batch: Batch) -> list[tuple[str, str | None, int | None, str | None]]:
    return [
        (e.kind.value, e.target.value if e.target else None, e.at_percent, e.action)
        for _ticket, e in batch.recorded
    ]


async def test_a_due_breach_is_flagged_once_with_history_and_event(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    await add_policy(client, tenant_a, first_response_minutes=30, resolution_minutes=240)
    ticket = await create(client, tenant_a)
    assert (await flag(database, tenant_a)).claimed == 0  # nothing due yet
    await age(database, [ticket["id"]], minutes=31)

    batch = await flag(database, tenant_a)
    assert recorded(batch) == [("breach", "first_response", None, None)]
    assert (await flag(database, tenant_a)).recorded == []  # done: not pending any more

    flagged = await get_ticket(client, tenant_a["agent"], ticket["id"])
    assert (flagged["sla_breach"], flagged["sla_status"]) == (True, "breached")
    assert flagged["version"] == ticket["version"] + 1
    due = ts(ticket["first_response_due_at"]) - timedelta(minutes=31)
    breach = (await sla_events(client, tenant_a, ticket["id"]))[-1]
    assert (breach["kind"], breach["target"], ts(breach["at"])) == ("breach", "first_response", due)
    assert 60 <= breach["details"]["late_seconds"] < 120
    history = await history_rows(database, tenant_a, uuid.UUID(ticket["id"]))
    assert [(h.field, h.new_value, h.user_id) for h in history] == [
        ("sla_breach", "first_response", None)
    ]
    [event] = await event_rows(database, tenant_a, uuid.UUID(ticket["id"]), "ticket.sla_breached")
    assert event.payload["target"] == "first_response"
    assert ts(event.payload["due_at"]) == due
    assert 60 <= event.payload["late_seconds"] < 120
    # The resolution deadline is the next one the queue holds.
    row = await ticket_row(database, ticket["id"])
    assert row.sla_next_deadline == ts(ticket["resolution_due_at"]) - timedelta(minutes=31)


async def test_a_met_target_is_not_breached_and_a_late_reply_is(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    await add_policy(client, tenant_a, first_response_minutes=30)
    on_time = await create(client, tenant_a)
    late = await create(client, tenant_a)
    await reply(client, tenant_a, on_time["id"])
    await age(database, [on_time["id"], late["id"]], minutes=45)
    await reply(client, tenant_a, late["id"])  # 45 minutes in: 15 late
    batch = await flag(database, tenant_a)
    assert [(str(t), e.kind.value, e.target) for t, e in batch.recorded] == [
        (late["id"], "breach", "first_response")
    ]
    assert (await get_ticket(client, tenant_a["agent"], on_time["id"]))["sla_breach"] is False


async def test_escalations_fire_once_each_at_their_percentage(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    agent_id = tenant_a["agent"].user_id
    department = tenant_a.department_id
    manager = await add_user(database, tenant_a.org, Role.MANAGER, department_id=department)
    other_manager = await add_user(database, tenant_a.org, Role.MANAGER)
    helper = await add_user(
        database,
        tenant_a.org,
        Role.AGENT,
        department_id=department,
        skills=["billing", "de"],
        availability_status=AvailabilityStatus.ONLINE,
    )
    # Online in the department but without the skill, or away: not chosen.
    await add_user(
        database,
        tenant_a.org,
        Role.AGENT,
        department_id=department,
        availability_status=AvailabilityStatus.ONLINE,
    )
    await add_user(database, tenant_a.org, Role.AGENT, department_id=department, skills=["billing"])
    await add_policy(
        client,
        tenant_a,
        first_response_minutes=100,
        escalations=[
            {"target": "first_response", "at_percent": 50, "action": "notify"},
            {"target": "first_response", "at_percent": 60, "action": "raise_priority"},
            {
                "target": "first_response",
                "at_percent": 70,
                "action": "reassign",
                "skills": ["billing"],
            },
        ],
    )
    ticket = await create(
        client, tenant_a, assigned_agent_id=str(agent_id), department_id=str(department)
    )
    await age(database, [ticket["id"]], minutes=55)
    assert recorded(await flag(database, tenant_a)) == [
        ("escalate", "first_response", 50, "notify")
    ]
    await age(database, [ticket["id"]], minutes=20)  # 75 minutes in
    assert recorded(await flag(database, tenant_a)) == [
        ("escalate", "first_response", 60, "raise_priority"),
        ("escalate", "first_response", 70, "reassign"),
    ]
    assert (await flag(database, tenant_a)).recorded == []

    escalated = await get_ticket(client, tenant_a["agent"], ticket["id"])
    assert escalated["priority"] == "high"
    assert escalated["assigned_agent_id"] == str(helper.id)
    assert escalated["sla_breach"] is False
    history = await history_rows(database, tenant_a, uuid.UUID(ticket["id"]))
    assert {(h.field, h.old_value, h.new_value) for h in history} == {
        ("priority", "medium", "high"),
        ("assigned_agent_id", str(agent_id), str(helper.id)),
    }
    escalations = await event_rows(
        database, tenant_a, uuid.UUID(ticket["id"]), "ticket.sla_escalated"
    )
    assert [(e.payload["action"], e.payload["at_percent"]) for e in escalations] == [
        ("notify", 50),
        ("raise_priority", 60),
        ("reassign", 70),
    ]
    assert kinds(await sla_events(client, tenant_a, ticket["id"]))[-1] == ("recompute", None)

    # The assignee and the department's manager hear of it; a manager elsewhere does not.
    notified = await notification_rows(database, tenant_a)
    assert sorted(str(n.user_id) for n in notified) == sorted([str(agent_id), str(manager.id)])
    assert other_manager.id not in {n.user_id for n in notified}
    assert all(n.ticket_id == uuid.UUID(ticket["id"]) for n in notified)


async def test_notifications_are_listed_for_their_user_and_marked_read(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    await add_policy(
        client,
        tenant_a,
        first_response_minutes=10,
        escalations=[{"target": "first_response", "at_percent": 50, "action": "notify"}],
    )
    agent = tenant_a["agent"]
    tickets = [
        await create(client, tenant_a, assigned_agent_id=str(agent.user_id)) for _ in range(3)
    ]
    await age(database, [t["id"] for t in tickets], minutes=6)
    await flag(database, tenant_a)
    url = f"{API}/notifications"
    found = [n for page in await pages(client, url, agent.headers, limit=2) for n in page]
    assert [n["ticket_id"] for n in found] == [t["id"] for t in reversed(tickets)]
    assert {n["kind"] for n in found} == {"sla_escalation"}
    assert found[0]["title"].startswith(tickets[-1]["ticket_number"])
    assert found[0]["data"]["at_percent"] == 50

    # Nobody else reads or marks them: another user, another tenant's user.
    for headers in (tenant_a["admin"].headers, tenant_b["agent"].headers):
        assert (await client.get(url, headers=headers)).json()["items"] == []
        response = await client.post(f"{url}/{found[0]['id']}/read", headers=headers)
        assert response.status_code == 404, response.text
    response = await client.get(url, headers=tenant_a["api_key"].headers)
    assert response.status_code == 403

    first = await client.post(f"{url}/{found[0]['id']}/read", headers=agent.headers)
    assert first.status_code == 200 and first.json()["read_at"] is not None
    again = await client.post(f"{url}/{found[0]['id']}/read", headers=agent.headers)
    assert again.json()["read_at"] == first.json()["read_at"]
    unread = (await client.get(url, params={"unread": True}, headers=agent.headers)).json()
    assert [n["id"] for n in unread["items"]] == [n["id"] for n in found[1:]]
    marked = await client.post(f"{url}/read", headers=agent.headers)
    assert marked.json() == {"marked": 2}
    unread = (await client.get(url, params={"unread": True}, headers=agent.headers)).json()
    assert unread["items"] == []


async def test_a_worker_bound_to_one_organization_never_touches_another(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    ours, theirs = [], []
    for tenant, tickets in ((tenant_a, ours), (tenant_b, theirs)):
        await add_policy(client, tenant, first_response_minutes=5)
        tickets.append(await create(client, tenant))
    await age(database, [ours[0]["id"], theirs[0]["id"]], minutes=10)

    batch = await flag(database, tenant_a)
    assert [str(t) for t, _e in batch.recorded] == [ours[0]["id"]]
    unflagged = await get_ticket(client, tenant_b["agent"], theirs[0]["id"])
    assert unflagged["sla_breach"] is False
    # Row-level security under the worker's unit: the other tenant's ticket is not there
    # to claim or to write, whatever the statement asks.
    uow = database.tenant_unit(tenant_a.org.id)
    try:
        tickets = TicketRepository(uow.session)
        now = datetime.now(UTC)
        claimed = await tickets.claim_due(now + timedelta(days=1), 100)
        assert [str(t["id"]) for t in claimed] == [ours[0]["id"]]
        with pytest.raises(LookupError):
            await tickets.write(uuid.UUID(theirs[0]["id"]), 1, {"sla_breach": True})
    finally:
        await uow.close()


async def test_a_ticket_that_fails_is_retried_later_and_holds_up_nobody(
    client: httpx.AsyncClient, database: Database, settings: Settings, tenant_a: Tenant
) -> None:
    await add_policy(client, tenant_a, first_response_minutes=5)
    broken, fine = await create(client, tenant_a), await create(client, tenant_a)
    await age(database, [broken["id"], fine["id"]], minutes=10)
    await age(database, [broken["id"]], minutes=1)  # the earlier: claimed first
    # A log row that holds the breach's key without being the breach (data no code
    # writes): recording the breach violates the key's uniqueness.
    async with database.tenant_session(tenant_a.org.id) as session:
        session.add(
            TicketSLAEvent(
                ticket_id=uuid.UUID(broken["id"]),
                kind=EventKind.RECOMPUTE,
                at=datetime.now(UTC),
                done_key="breach:first_response:0",
            )
        )
        await session.commit()
    loop = TimerLoop(database)
    assert await loop.run_once() is True  # the failed one is put aside, go again
    await loop.run_once()
    assert (await get_ticket(client, tenant_a["agent"], fine["id"]))["sla_breach"] is True
    row = await ticket_row(database, broken["id"])
    assert row.sla_next_deadline is not None
    assert row.sla_next_deadline > datetime.now(UTC) + timedelta(seconds=30)


async def test_a_batch_writes_what_one_ticket_at_a_time_writes(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    # Twenty tickets: the batch's journal goes out by table (executemany), one ticket's
    # as one chained statement; the rows must be the same.
    await add_policy(client, tenant_a, first_response_minutes=5)
    tickets = [await create(client, tenant_a) for _ in range(21)]
    await age(database, [t["id"] for t in tickets], minutes=6)
    alone = await run_job(database, flag_due, tenant_a.org.id, limit=1)
    batch = await flag(database, tenant_a)
    assert (alone.claimed, batch.claimed) == (1, 20)
    for ticket in tickets:
        row = await ticket_row(database, ticket["id"])
        assert (row.sla_breach, row.sla_status, row.version) == (
            True,
            "breached",
            ticket["version"] + 1,
        )
        assert row.sla_next_deadline == ts(ticket["resolution_due_at"]) - timedelta(minutes=6)
        history = await history_rows(database, tenant_a, row.id)
        assert [(h.field, h.new_value) for h in history] == [("sla_breach", "first_response")]
        [event] = await event_rows(database, tenant_a, row.id, "ticket.sla_breached")
        assert event.payload["id"] == ticket["id"]
        events = kinds(await sla_events(client, tenant_a, ticket["id"]))
        assert events[-1] == ("breach", "first_response")


async def test_one_worker_at_a_time_visits_an_organization(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    await add_policy(client, tenant_a, first_response_minutes=5)
    ticket = await create(client, tenant_a)
    await age(database, [ticket["id"]], minutes=6)
    visiting = database.tenant_unit(tenant_a.org.id)
    try:
        assert await SLARepository(visiting.session).visit_timers() is True
        # Another worker moves on without claiming: nothing of the tenant is locked yet,
        # but both would claim the same due rows.
        assert (await flag(database, tenant_a)).claimed == 0
    finally:
        await visiting.close()
    assert (await flag(database, tenant_a)).claimed == 1


async def test_a_pass_visits_every_organization_with_work_due(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    due = []
    for tenant in (tenant_a, tenant_b):
        await add_policy(client, tenant, first_response_minutes=5)
        due += [await create(client, tenant) for _ in range(3)]
    await age(database, [t["id"] for t in due], minutes=6)
    loop = TimerLoop(database)
    assert loop.lanes > 1  # both tenants at once
    assert await loop.run_once() is False  # no batch came back full
    for ticket in due:
        assert (await ticket_row(database, ticket["id"])).sla_breach is True


async def test_the_loop_flags_breaches_with_redis_down(
    client: httpx.AsyncClient, database: Database, settings: Settings, tenant_a: Tenant
) -> None:
    await add_policy(client, tenant_a, first_response_minutes=5)
    ticket = await create(client, tenant_a)
    worker_db = Database(settings)
    # Nothing listens there: every enqueue after a commit fails (and is logged).
    worker_db.jobs = ArqJobQueue(ArqRedis.from_url("redis://127.0.0.1:9"), "arq:nowhere")
    loop = TimerLoop(worker_db, poll_seconds=0.1)
    loop.start()
    try:
        await age(database, [ticket["id"]], minutes=6)
        for _ in range(100):
            if (await ticket_row(database, ticket["id"])).sla_breach:
                break
            await asyncio.sleep(0.05)
    finally:
        await loop.close()
        await worker_db.dispose()
    assert (await ticket_row(database, ticket["id"])).sla_breach is True
    # The event is in the outbox, for the sweep that relays what an enqueue missed.
    assert await event_rows(database, tenant_a, uuid.UUID(ticket["id"]), "ticket.sla_breached")


# --- helpers -------------------------------------------------------------------------------


async def reply(client: httpx.AsyncClient, tenant: Tenant, ticket_id: str) -> None:
    response = await client.post(
        f"{TICKETS}/{ticket_id}/comments",
        json={"content": "On it."},
        headers=tenant["agent"].headers,
    )
    assert response.status_code == 201, response.text


async def ticket_row(database: Database, ticket_id: str) -> Ticket:
    async with database.system_session() as session:
        row = await session.get(Ticket, uuid.UUID(ticket_id))
        assert row is not None
        return row


async def notification_rows(database: Database, tenant: Tenant) -> list[Notification]:
    async with database.tenant_session(tenant.org.id) as session:
        return list(await session.scalars(sa.select(Notification).order_by(Notification.id)))
