"""Append-only rows: written after the objects they refer to, before any query of their
own unit of work, in bounded statements, and never outliving a unit of work that did
not commit."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.appends import APPENDS, ROWS_PER_STATEMENT, append
from app.db.base import new_id
from app.db.scoped import ScopedQuery, fetch_one_or_none, scope
from app.db.session import CrossTenantWrite, Database, TenantContextMissing, commit
from app.models import Department, Organization, Ticket, TicketHistory, User
from app.models.user import Role


async def _pending_ticket(session: AsyncSession) -> Ticket:
    """A ticket added to `session` but not flushed (its customer is)."""
    customer = User(id=new_id(), email=f"{uuid.uuid4().hex}@example.com", role=Role.CUSTOMER)
    session.add(customer)
    await session.flush()
    ticket = Ticket(
        id=new_id(),
        ticket_number=f"TK-{uuid.uuid4().hex[:6]}",
        subject="s",
        customer_id=customer.id,
    )
    session.add(ticket)
    return ticket


async def _history_count(database: Database, org: Organization, ticket_id: uuid.UUID) -> int:
    async with database.tenant_session(org.id) as session:
        count = await session.scalar(
            sa.select(sa.func.count()).where(TicketHistory.ticket_id == ticket_id)
        )
    return int(count or 0)


async def test_rows_follow_the_pending_objects_they_refer_to(
    database: Database, org_a: Organization
) -> None:
    async with database.tenant_session(org_a.id) as session:
        ticket = await _pending_ticket(session)
        append(session, TicketHistory, ticket_id=ticket.id, field="ticket", new_value="x")
        # A query writes the queue first — after the ticket it references.
        assert await session.scalar(sa.select(TicketHistory.field)) == "ticket"
        await commit(session)
    assert await _history_count(database, org_a, ticket.id) == 1


async def test_large_queues_are_written_in_bounded_statements(
    database: Database, org_a: Organization
) -> None:
    rows = ROWS_PER_STATEMENT * 2 + 7
    async with database.tenant_session(org_a.id) as session:
        ticket = await _pending_ticket(session)
        for n in range(rows):
            append(session, TicketHistory, ticket_id=ticket.id, field=f"f{n}", new_value=str(n))
        await commit(session)
    assert await _history_count(database, org_a, ticket.id) == rows


async def test_a_unit_of_work_that_does_not_commit_writes_nothing(
    database: Database, org_a: Organization
) -> None:
    async with database.tenant_session(org_a.id) as session:
        ticket = await _pending_ticket(session)
        await commit(session)
    session = database.tenant_session(org_a.id)
    append(session, TicketHistory, ticket_id=ticket.id, field="closed", new_value="x")
    await session.close()
    assert APPENDS not in session.info
    await commit(session)  # a later unit of work on the same session object
    append(session, TicketHistory, ticket_id=ticket.id, field="rolled-back", new_value="x")
    await session.rollback()
    await commit(session)
    await session.close()
    assert await _history_count(database, org_a, ticket.id) == 0


async def test_rows_are_stamped_and_refused_like_orm_rows(
    database: Database, org_a: Organization, org_b: Organization
) -> None:
    async with database.tenant_session(org_a.id) as session:
        with pytest.raises(CrossTenantWrite):
            append(session, TicketHistory, organization_id=org_b.id, ticket_id=new_id(), field="x")
    async with database.unbound_session() as session:
        with pytest.raises(TenantContextMissing):
            append(session, TicketHistory, ticket_id=new_id(), field="x")


async def test_scoped_reads_see_their_own_unit_of_work(
    database: Database, org_a: Organization
) -> None:
    department = Department(id=new_id(), name=f"Dept {uuid.uuid4().hex[:6]}")
    query = ScopedQuery(
        sa.select(Department.id).where(*scope(Department), Department.id == sa.bindparam("d"))
    )
    async with database.tenant_session(org_a.id) as session:
        session.add(department)  # pending: Core reads bypass autoflush, scoped ones flush
        assert await fetch_one_or_none(session, query, d=department.id) is not None
        await session.rollback()
