"""Per-organization counters behind human-readable numbers (TK-000042)."""

from __future__ import annotations

from functools import lru_cache
from typing import cast

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import new_id
from app.db.driver import compile_for_driver, driver_fetch
from app.db.session import session_organization
from app.models.organization import SequenceCounter


async def next_value(session: AsyncSession, name: str) -> int:
    """Atomically take the next number of `name` in the session's organization.

    One upsert statement: the row lock it takes serializes concurrent callers of the
    same organization until their transactions end, so numbers never collide."""
    org = session_organization(session.sync_session)
    if org is None:
        raise RuntimeError("sequence numbers need a tenant session")
    params = {"id": new_id(), "organization_id": org, "name": name}
    dialect = session.sync_session.get_bind().dialect
    if dialect.driver == "asyncpg":
        [row] = await driver_fetch(
            session, compile_for_driver(_upsert(dialect.name), dialect), params
        )
        return int(row["value"])
    connection = await session.connection()
    result = await connection.execute(_upsert(dialect.name), params)
    return int(result.scalar_one())


@lru_cache(maxsize=2)
def _upsert(dialect: str) -> sa.Insert:
    """Built once per dialect (every ticket creation runs it)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = cast(sa.Table, SequenceCounter.__table__)
    return (
        insert(table)
        .values(
            id=sa.bindparam("id"),
            organization_id=sa.bindparam("organization_id"),
            name=sa.bindparam("name"),
            value=1,
        )
        .on_conflict_do_update(
            index_elements=["organization_id", "name"],
            set_={"value": table.c.value + 1},
        )
        .returning(table.c.value)
    )
