"""The demo organization `make run` serves keeps the rules the API enforces: no staff
member is over `max_concurrent_tickets`, and a first assignment succeeds."""

from __future__ import annotations

import uuid

import httpx
import sqlalchemy as sa

from app.config import API_PREFIX
from app.db.database import Database
from app.demo.service import DEMO_FREE_SLOTS, DEMO_PASSWORD, seed_demo_content
from app.models import Organization, Ticket, User
from app.models.user import STAFF_ROLES
from app.tickets.service import ACTIVE_STATUSES
from tests.conftest import make_organization


async def _seed(database: Database, org: Organization, tickets: int) -> None:
    """As `helpdesk demo` does: one tenant unit of work, committed."""
    uow = database.tenant_unit(org.id)
    try:
        summary = await seed_demo_content(uow, tickets=tickets)
        await uow.commit()
    finally:
        await uow.close()
    assert summary.tickets == tickets


async def _loads(database: Database, org: Organization) -> dict[str, tuple[int, int]]:
    """Each staff member's email -> (active tickets, max_concurrent_tickets)."""
    async with database.tenant_session(org.id) as session:
        staff = (await session.scalars(sa.select(User).where(User.role.in_(STAFF_ROLES)))).all()
        active = dict(
            (
                await session.execute(
                    sa.select(Ticket.assigned_agent_id, sa.func.count())
                    .where(Ticket.status.in_(ACTIVE_STATUSES))
                    .group_by(Ticket.assigned_agent_id)
                )
            ).all()
        )
    return {u.email: (active.get(u.id, 0), u.max_concurrent_tickets) for u in staff}


async def test_demo_agents_stay_within_their_ticket_limit(
    database: Database, org_a: Organization, client: httpx.AsyncClient
) -> None:
    await _seed(database, org_a, tickets=300)
    loads = await _loads(database, org_a)
    assert {"manager@demo.example.com", *(f"agent{i}@demo.example.com" for i in range(1, 6))} <= (
        loads.keys()
    )
    for email, (active, limit) in loads.items():
        assert active <= limit - DEMO_FREE_SLOTS, (email, active, limit)
    # 300 tickets fill every agent up to the mark; the rest wait in the queue.
    assert any(active == limit - DEMO_FREE_SLOTS for active, limit in loads.values())
    async with database.tenant_session(org_a.id) as session:
        queue = (
            await session.scalars(
                sa.select(Ticket.id)
                .where(Ticket.assigned_agent_id.is_(None), Ticket.status.in_(ACTIVE_STATUSES))
                .order_by(Ticket.ticket_number)
            )
        ).all()
        staff = dict(
            (
                await session.execute(
                    sa.select(User.email, User.id).where(User.role.in_(STAFF_ROLES))
                )
            ).all()
        )
    assert len(queue) >= len(staff)

    # A newcomer signs in as the demo manager and assigns a ticket to each colleague
    # (and to themselves) without `force_assignment`: every plain assignment succeeds.
    token = await client.post(
        f"{API_PREFIX}/auth/token",
        data={
            "username": "manager@demo.example.com",
            "password": DEMO_PASSWORD,
            "client_id": org_a.slug,
        },
    )
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    for ticket_id, (email, user_id) in zip(queue, sorted(staff.items()), strict=False):
        assigned = await client.patch(
            f"{API_PREFIX}/tickets/{ticket_id}",
            json={"assigned_agent_id": str(user_id)},
            headers=headers,
        )
        assert assigned.status_code == 200, (email, assigned.text)
        assert assigned.json()["assigned_agent_id"] == str(user_id)
    created = await client.post(
        f"{API_PREFIX}/tickets",
        json={
            "subject": "First ticket of a newcomer",
            "customer_id": await _a_customer(database, org_a),
            "assigned_agent_id": str(staff["agent1@demo.example.com"]),
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    after = await _loads(database, org_a)
    assert after["agent1@demo.example.com"][0] == loads["agent1@demo.example.com"][0] + 2
    assert all(active <= limit for active, limit in after.values())


async def _a_customer(database: Database, org: Organization) -> str:
    async with database.tenant_session(org.id) as session:
        customer_id = await session.scalar(
            sa.select(User.id).where(User.email == "customer1@example.org")
        )
    assert isinstance(customer_id, uuid.UUID)
    return str(customer_id)


async def test_demo_content_is_reproducible(database: Database) -> None:
    """The same seed gives the same tickets, assignees and statuses in every org."""

    async def content(org: Organization) -> list[tuple[str, str, str, str | None]]:
        async with database.tenant_session(org.id) as session:
            rows = await session.execute(
                sa.select(Ticket.ticket_number, Ticket.subject, Ticket.status, User.email)
                .outerjoin(User, User.id == Ticket.assigned_agent_id)
                .order_by(Ticket.ticket_number)
            )
            return [(n, s, str(st), e) for n, s, st, e in rows.all()]

    orgs = [await make_organization(database, "Demo"), await make_organization(database, "Demo")]
    for org in orgs:
        await _seed(database, org, tickets=60)
    one, two = [await content(org) for org in orgs]
    assert one == two and len(one) == 60
    assert any(email is not None for *_, email in one)
    assert any(email is None for *_, email in one)
