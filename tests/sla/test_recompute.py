"""A changed measure reaches the open tickets: a policy's new target or a calendar's new
hours move their due times (the log says why), batch after batch; a change of a name
does not, and closed tickets keep what they showed."""

from __future__ import annotations

from datetime import timedelta

import httpx
from fastapi import FastAPI

from app.db.database import Database
from app.kit.jobs import InProcessJobQueue
from app.tickets.service import RECOMPUTE_BATCH, open_ticket
from tests.support.identity import API, Tenant
from tests.support.sla import POLICIES, add_policy, sla_events
from tests.support.tickets import TICKETS, create, get_ticket, ticket_in, ts

HOURS = f"{API}/business-hours"


async def drain(app: FastAPI) -> None:
    jobs = app.state.database.jobs
    assert isinstance(jobs, InProcessJobQueue)
    await jobs.drain()


async def edit(client: httpx.AsyncClient, tenant: Tenant, url: str, **fields: object) -> None:
    response = await client.patch(url, json=fields, headers=tenant["admin"].headers)
    assert response.status_code == 200, response.text


async def test_a_new_target_moves_the_due_times_of_open_tickets_only(
    app: FastAPI, client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    policy = await add_policy(client, tenant_a, first_response_minutes=60)
    open_one = await create(client, tenant_a)
    closed = await ticket_in(client, tenant_a, "closed")
    closed_before = await get_ticket(client, tenant_a["agent"], closed["id"])

    await edit(client, tenant_a, f"{POLICIES}/{policy}", name="Renamed")
    await drain(app)
    assert (await sla_events(client, tenant_a, open_one["id"]))[-1]["kind"] == "start"

    await edit(client, tenant_a, f"{POLICIES}/{policy}", first_response_minutes=15)
    await drain(app)
    moved = await get_ticket(client, tenant_a["agent"], open_one["id"])
    assert ts(moved["first_response_due_at"]) == ts(open_one["created_at"]) + timedelta(minutes=15)
    last = (await sla_events(client, tenant_a, open_one["id"]))[-1]
    assert (last["kind"], last["details"]) == ("recompute", {"reason": "policy_changed"})
    assert await get_ticket(client, tenant_a["agent"], closed["id"]) == closed_before


async def test_new_hours_move_the_tickets_of_every_policy_on_the_calendar(
    app: FastAPI, client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    # Every day from 00:00 to 12:00 UTC, then only Mondays 00:00 to 01:00.
    every_morning = [{"weekday": d, "start": "00:00", "end": "12:00"} for d in range(7)]
    response = await client.post(
        HOURS,
        json={"name": "Mornings", "timezone": "UTC", "intervals": every_morning},
        headers=tenant_a["admin"].headers,
    )
    assert response.status_code == 201, response.text
    hours_id = response.json()["id"]
    await add_policy(client, tenant_a, business_hours_id=hours_id, first_response_minutes=30)
    ticket = await create(client, tenant_a)
    before = ts(ticket["first_response_due_at"])

    mondays = [{"weekday": 0, "start": "00:00", "end": "01:00"}]
    await edit(client, tenant_a, f"{HOURS}/{hours_id}", intervals=mondays)
    await drain(app)
    after = await get_ticket(client, tenant_a["agent"], ticket["id"])
    due = ts(after["first_response_due_at"])
    assert due != before
    assert due.weekday() == 0 and due.hour in (0, 1)
    last = (await sla_events(client, tenant_a, ticket["id"]))[-1]
    assert last["details"] == {"reason": "calendar_changed"}

    # Deleted, the calendar no longer counts: the policy measures 24/7.
    response = await client.delete(f"{HOURS}/{hours_id}", headers=tenant_a["admin"].headers)
    assert response.status_code == 204
    await drain(app)
    around_the_clock = await get_ticket(client, tenant_a["agent"], ticket["id"])
    assert ts(around_the_clock["first_response_due_at"]) == ts(ticket["created_at"]) + timedelta(
        minutes=30
    )


async def test_every_open_ticket_is_recomputed_batch_after_batch(
    app: FastAPI, client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    policy = await add_policy(client, tenant_a, first_response_minutes=60)
    customer_id = tenant_a["customer"].user_id
    assert customer_id is not None
    uow = database.tenant_unit(tenant_a.org.id)
    try:
        for i in range(RECOMPUTE_BATCH + 30):
            await open_ticket(uow, subject=f"Many {i}", customer_id=customer_id, created_by_id=None)
        await uow.commit()
    finally:
        await uow.close()

    await edit(client, tenant_a, f"{POLICIES}/{policy}", first_response_minutes=5)
    await drain(app)
    response = await client.get(TICKETS, params={"limit": 200}, headers=tenant_a["agent"].headers)
    listed = response.json()["items"]
    response = await client.get(
        TICKETS,
        params={"limit": 200, "cursor": response.json()["next_cursor"]},
        headers=tenant_a["agent"].headers,
    )
    listed += response.json()["items"]
    assert len(listed) == RECOMPUTE_BATCH + 30
    assert all(
        ts(t["first_response_due_at"]) == ts(t["created_at"]) + timedelta(minutes=5) for t in listed
    )
