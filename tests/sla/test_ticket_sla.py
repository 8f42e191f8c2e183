"""A ticket's SLA through the API: the matched policy, due fields derived from the clock's
log, what fulfils and what does not, pauses that push the resolution due time by exactly
their length, a priority change that matches another policy, the next-reply cycle, and
`GET /tickets/{id}/sla-events` explaining each due time."""

from __future__ import annotations

from datetime import timedelta

import httpx

from tests.support.identity import Tenant
from tests.support.sla import add_policy, comment, kinds, sla_events
from tests.support.tickets import TICKETS, create, get_ticket, patched, ts


async def test_a_ticket_without_a_matching_policy_has_no_due_times(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await add_policy(client, tenant_a, conditions={"priorities": ["urgent"]})
    ticket = await create(client, tenant_a, priority="low")
    assert ticket["sla_policy_id"] is None
    assert ticket["sla_status"] is None
    assert ticket["first_response_due_at"] is ticket["resolution_due_at"] is None
    # The clocks run all the same: a policy matched later measures the same log.
    assert kinds(await sla_events(client, tenant_a, ticket["id"])) == [
        ("start", "first_response"),
        ("start", "resolution"),
    ]


async def test_the_first_matching_policy_by_position_sets_the_due_times(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await add_policy(client, tenant_a, position=20, first_response_minutes=5)
    chosen = await add_policy(client, tenant_a, position=10, conditions={"priorities": ["high"]})
    await add_policy(client, tenant_a, position=5, is_active=False)
    ticket = await create(client, tenant_a, priority="high")
    created = ts(ticket["created_at"])
    assert ticket["sla_policy_id"] == chosen
    assert ts(ticket["first_response_due_at"]) == created + timedelta(minutes=60)
    assert ts(ticket["resolution_due_at"]) == created + timedelta(minutes=240)
    assert ticket["next_reply_due_at"] is None
    assert ticket["sla_status"] == "first_response_due"
    assert ticket["sla_breach"] is False
    starts = await sla_events(client, tenant_a, ticket["id"])
    assert {ts(e["at"]) for e in starts} == {created}


async def test_only_a_public_staff_reply_fulfils_the_first_response(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await add_policy(client, tenant_a)
    ticket = await create(client, tenant_a, "customer")
    await comment(client, tenant_a, "agent", ticket["id"], "internal")
    await comment(client, tenant_a, "customer", ticket["id"])
    unchanged = await get_ticket(client, tenant_a["agent"], ticket["id"])
    assert unchanged["sla_status"] == "first_response_due"
    assert unchanged["first_response_at"] is None

    await comment(client, tenant_a, "agent", ticket["id"])
    answered = await get_ticket(client, tenant_a["agent"], ticket["id"])
    assert answered["sla_status"] == "resolution_due"
    assert answered["first_response_at"] is not None
    # The due time stays what it was: a report compares the reply with it.
    assert answered["first_response_due_at"] == ticket["first_response_due_at"]
    assert kinds(await sla_events(client, tenant_a, ticket["id"]))[-1] == (
        "fulfil",
        "first_response",
    )


async def test_pending_pauses_resolution_and_the_pause_is_added_back(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await add_policy(client, tenant_a)
    ticket = await create(client, tenant_a)
    await comment(client, tenant_a, "agent", ticket["id"])
    due = ts(ticket["resolution_due_at"])
    pending = await patched(client, tenant_a["agent"], ticket["id"], {"status": "pending"})
    assert pending["sla_status"] == "paused"
    assert pending["resolution_due_at"] is None
    reopened = await patched(client, tenant_a["agent"], ticket["id"], {"status": "open"})
    events = await sla_events(client, tenant_a, ticket["id"])
    assert kinds(events)[-2:] == [("pause", "resolution"), ("resume", "resolution")]
    paused_for = ts(events[-1]["at"]) - ts(events[-2]["at"])
    assert ts(reopened["resolution_due_at"]) == due + paused_for
    assert reopened["sla_status"] == "resolution_due"


async def test_resolving_meets_the_resolution_target_until_reopened(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await add_policy(client, tenant_a)
    ticket = await create(client, tenant_a)
    await comment(client, tenant_a, "agent", ticket["id"])
    resolved = await patched(client, tenant_a["agent"], ticket["id"], {"status": "resolved"})
    assert resolved["sla_status"] == "fulfilled"
    assert resolved["resolution_due_at"] == ticket["resolution_due_at"]
    reopened = await patched(client, tenant_a["agent"], ticket["id"], {"status": "open"})
    assert reopened["sla_status"] == "resolution_due"
    assert ts(reopened["resolution_due_at"]) > ts(ticket["resolution_due_at"])


async def test_a_priority_change_matches_the_policy_again(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await add_policy(client, tenant_a, position=1, conditions={"priorities": ["medium"]})
    urgent = await add_policy(
        client,
        tenant_a,
        position=2,
        conditions={"priorities": ["urgent"]},
        first_response_minutes=15,
        resolution_minutes=120,
    )
    ticket = await create(client, tenant_a)
    raised = await patched(client, tenant_a["agent"], ticket["id"], {"priority": "urgent"})
    created = ts(ticket["created_at"])
    assert raised["sla_policy_id"] == urgent
    # Measured from the ticket's start, as if the policy had applied from the beginning.
    assert ts(raised["first_response_due_at"]) == created + timedelta(minutes=15)
    assert ts(raised["resolution_due_at"]) == created + timedelta(minutes=120)
    events = await sla_events(client, tenant_a, ticket["id"])
    assert events[-1]["kind"] == "recompute"
    assert events[-1]["details"] == {"reason": "priority_changed"}
    history = await client.get(
        f"{TICKETS}/{ticket['id']}/history", headers=tenant_a["agent"].headers
    )
    fields = {h["field"] for h in history.json()["items"]}
    assert {"priority", "sla_policy_id"} <= fields


async def test_an_unanswered_customer_comment_starts_the_next_reply_clock(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    await add_policy(client, tenant_a, next_reply_minutes=30)
    ticket = await create(client, tenant_a, "customer")
    await comment(client, tenant_a, "agent", ticket["id"])
    await comment(client, tenant_a, "customer", ticket["id"])
    waiting = await get_ticket(client, tenant_a["agent"], ticket["id"])
    events = await sla_events(client, tenant_a, ticket["id"])
    [start] = [e for e in events if e["target"] == "next_reply"]
    assert ts(waiting["next_reply_due_at"]) == ts(start["at"]) + timedelta(minutes=30)
    # A second customer comment does not restart it.
    await comment(client, tenant_a, "customer", ticket["id"])
    assert (await get_ticket(client, tenant_a["agent"], ticket["id"]))[
        "next_reply_due_at"
    ] == waiting["next_reply_due_at"]
    await comment(client, tenant_a, "agent", ticket["id"])
    answered = await get_ticket(client, tenant_a["agent"], ticket["id"])
    assert answered["next_reply_due_at"] is None
    assert kinds(await sla_events(client, tenant_a, ticket["id"]))[-1] == ("fulfil", "next_reply")


async def test_cancelling_stops_every_clock(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    await add_policy(client, tenant_a)
    ticket = await create(client, tenant_a)
    cancelled = await patched(client, tenant_a["agent"], ticket["id"], {"status": "cancelled"})
    assert cancelled["sla_status"] is None
    assert cancelled["first_response_due_at"] is cancelled["resolution_due_at"] is None
    stops = [e for e in await sla_events(client, tenant_a, ticket["id"]) if e["kind"] == "stop"]
    assert {e["target"] for e in stops} == {"first_response", "resolution"}


async def test_customers_do_not_read_the_clock(client: httpx.AsyncClient, tenant_a: Tenant) -> None:
    ticket = await create(client, tenant_a, "customer")
    response = await client.get(
        f"{TICKETS}/{ticket['id']}/sla-events", headers=tenant_a["customer"].headers
    )
    assert response.status_code == 403
