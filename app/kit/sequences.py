"""Per-organization counters behind human-readable numbers (TK-000042)."""

from __future__ import annotations

from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import new_id
from app.kit.repository import Repository, scoped
from app.models.organization import SequenceCounter

COUNTER_ID = "counter_id"


class SequenceRepository(Repository[SequenceCounter]):
    model = SequenceCounter

    async def next_value(self, name: str) -> int:
        statement = self.prebuilt(("next_value", name), lambda: self.next_value_statement(name))
        return int(await self.scalar(statement, {COUNTER_ID: new_id()}))

    def next_value_statement(self, name: str) -> sa.Insert:
        """One upsert returning the next value: the counter row's lock serializes
        concurrent callers of the same organization until their transactions end, so
        numbers never collide. Its conflict target is (organization_id, name), so the
        row it updates is always the one this tenant's insert names. The id of a new
        counter row is bound as `counter_id`."""
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        table = cast(sa.Table, SequenceCounter.__table__)
        statement = (
            insert(table)
            .values(
                id=sa.bindparam(COUNTER_ID, type_=table.c.id.type),
                organization_id=self.organization_id,
                name=name,
                value=1,
            )
            .on_conflict_do_update(
                index_elements=["organization_id", "name"],
                set_={"value": table.c.value + 1},
            )
            .returning(table.c.value)
        )
        return scoped(statement)


async def next_value(session: AsyncSession, name: str) -> int:
    """Atomically take the next number of `name` in the session's organization."""
    return await SequenceRepository(session).next_value(name)
