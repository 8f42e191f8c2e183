"""The business-hours repository on its own: each statement keeps to the session's
organization and live rows (the suite's statement proof checks each one it runs), and
another organization's rows are as absent as missing ones."""

from __future__ import annotations

import uuid

import pytest

from app.business_hours.repository import BusinessHoursRepository
from app.db.database import Database
from app.kit.errors import Conflict, NotFound
from app.kit.pagination import PageParams
from app.models.organization import Organization
from app.models.sla import BusinessHours
from tests.support.statement_proof import PROVEN

PAGE = PageParams(limit=50, cursor=None)


async def add_calendar(database: Database, org: Organization, name: str) -> BusinessHours:
    async with database.tenant_session(org.id) as session:
        hours = BusinessHours(
            name=name, intervals=[{"weekday": 0, "start": "09:00", "end": "17:00"}]
        )
        session.add(hours)
        await session.commit()
    return hours


async def test_statements_keep_to_the_tenant(
    database: Database, org_a: Organization, org_b: Organization
) -> None:
    name = f"Office {uuid.uuid4().hex[:8]}"
    own = await add_calendar(database, org_a, name)
    foreign = await add_calendar(database, org_b, f"Other {name}")
    before = len(PROVEN)
    async with database.tenant_session(org_a.id) as session:
        calendars = BusinessHoursRepository(session)
        listed = await calendars.list_page(PAGE, q="OFFICE")
        assert [row["id"] for row in listed.rows] == [own.id]
        assert listed.rows[0]["intervals"] == [{"weekday": 0, "start": "09:00", "end": "17:00"}]
        assert (await calendars.get(own.id)).name == name
        with pytest.raises(NotFound, match="No such business hours calendar"):
            await calendars.get(foreign.id)
        with pytest.raises(Conflict, match=name.upper()):
            await calendars.check_name_free(name.upper())
        await calendars.check_name_free(name, exclude=own.id)
        await calendars.check_name_free(f"Other {name}")  # org_b's name is free here
    assert len(PROVEN) - before >= 5


async def test_deleted_rows_only_when_asked(database: Database, org_a: Organization) -> None:
    name = f"Gone {uuid.uuid4().hex[:8]}"
    gone = await add_calendar(database, org_a, name)
    async with database.tenant_session(org_a.id) as session:
        calendars = BusinessHoursRepository(session)
        (await calendars.get(gone.id)).soft_delete()
        await session.commit()
    async with database.tenant_session(org_a.id) as session:
        calendars = BusinessHoursRepository(session)
        assert (await calendars.list_page(PAGE, q=name)).rows == []
        deleted = await calendars.list_page(PAGE, q=name, include_deleted=True)
        assert [row["id"] for row in deleted.rows] == [gone.id]
        with pytest.raises(NotFound):
            await calendars.get(gone.id)
        assert (await calendars.get(gone.id, include_deleted=True)).is_deleted
        await calendars.check_name_free(name)  # a deleted row's name is reusable
