"""Per-organization numbers stay distinct under concurrency."""

from __future__ import annotations

import asyncio

from app.db.database import Database
from app.kit.sequences import next_value
from app.models import Organization


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
