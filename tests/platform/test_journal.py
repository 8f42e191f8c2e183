"""A journal's UPDATE rows (`Journal.update`): written with the change — chained into one
statement on PostgreSQL, by executemany for a batch — stamping `updated_at`, and only
ever on the journal's own organization's rows."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.db.database import Database
from app.kit.journal import CHAINED_ROWS, Journal
from app.models import Organization, User
from tests.factories import make_user


async def _users(database: Database, org: Organization, count: int) -> list[User]:
    async with database.tenant_session(org.id) as session:
        users = [await make_user(session, first_name="Before") for _ in range(count)]
        await session.commit()
        return users


@pytest.mark.parametrize("count", [1, CHAINED_ROWS + 1], ids=["chained", "executemany"])
async def test_update_settles_the_tenants_rows_and_stamps_them(
    database: Database, org_a: Organization, org_b: Organization, count: int
) -> None:
    ours = await _users(database, org_a, count)
    [theirs] = await _users(database, org_b, 1)
    uow = database.tenant_unit(org_a.id)
    try:
        journal = Journal(uow)
        for user in [*ours, theirs]:
            journal.update(User, user.id, first_name="Settled")
        await journal.write()
        await uow.commit()
    finally:
        await uow.close()

    async with database.system_session() as session:
        rows = {
            row.id: row
            for row in await session.execute(
                sa.select(User.id, User.first_name, User.updated_at).where(
                    User.id.in_([user.id for user in [*ours, theirs]])
                )
            )
        }
    for user in ours:
        assert rows[user.id].first_name == "Settled"
        assert rows[user.id].updated_at > user.updated_at
    assert rows[theirs.id].first_name == "Before"
    assert rows[theirs.id].updated_at == theirs.updated_at
