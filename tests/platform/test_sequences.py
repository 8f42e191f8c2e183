"""Per-organization numbers stay distinct under concurrency."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from app.db.database import Database
from app.kit.sequences import next_value
from app.models import Organization
from app.models.organization import SequenceCounter
from app.tickets.repository import TICKET_SEQUENCE, format_ticket_number
from app.tickets.service import open_ticket
from tests.support.identity import Tenant


async def test_concurrent_numbers_are_distinct_and_per_organization(
    database: Database, org_a: Organization, org_b: Organization
) -> None:
    async def take(org: Organization) -> int:
        async with database.tenant_session(org.id) as session:
            value = await next_value(session, "ticket")
            await session.commit()
            return value

    values = await asyncio.gather(*(take(org_a) for _ in range(40)), take(org_b))
    assert sorted(values[:40]) == list(range(1, 41))
    assert values[40] == 1


async def test_ticket_numbers_taken_in_the_insert_read_as_python_formats_them(
    database: Database, tenant_a: Tenant
) -> None:
    """PostgreSQL formats the number inside the INSERT that takes it: the same text as
    `format_ticket_number`, past six digits too."""
    customer = tenant_a["customer"].user_id
    assert customer is not None
    numbers = []
    for counter in (None, 41, 1_234_566):
        async with database.tenant_session(tenant_a.org.id) as session:
            if counter is not None:  # the first ticket makes the counter's row
                await session.execute(
                    sa.update(SequenceCounter)
                    .where(SequenceCounter.name == TICKET_SEQUENCE)
                    .values(value=counter)
                )
            ticket = await open_ticket(
                database.unit_of_work(session),
                subject="n",
                customer_id=customer,
                created_by_id=None,
            )
            await session.commit()
        numbers.append(ticket["ticket_number"])
    assert numbers == [format_ticket_number(n) for n in (1, 42, 1_234_567)]
    assert numbers == ["TK-000001", "TK-000042", "TK-1234567"]
