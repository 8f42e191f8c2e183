"""The departments repository on its own: each statement keeps to the session's
organization and live rows (the suite's statement proof checks each one it runs), and
another organization's rows are as absent as missing ones."""

from __future__ import annotations

import uuid

import pytest

from app.db.database import Database
from app.departments.repository import DepartmentRepository
from app.kit.errors import Conflict, NotFound
from app.kit.pagination import PageParams
from app.models.organization import Organization
from app.models.user import Department, Role
from tests.support.identity import add_user
from tests.support.statement_proof import PROVEN

PAGE = PageParams(limit=50, cursor=None)


async def add_department(database: Database, org: Organization, name: str) -> Department:
    async with database.tenant_session(org.id) as session:
        department = Department(name=name)
        session.add(department)
        await session.commit()
    return department


async def test_statements_keep_to_the_tenant(
    database: Database, org_a: Organization, org_b: Organization
) -> None:
    name = f"Support {uuid.uuid4().hex[:8]}"
    own = await add_department(database, org_a, name)
    foreign = await add_department(database, org_b, f"Other {name}")
    staff = await add_user(database, org_a, Role.AGENT)
    foreign_staff = await add_user(database, org_b, Role.MANAGER)
    customer = await add_user(database, org_a, Role.CUSTOMER)
    before = len(PROVEN)
    async with database.tenant_session(org_a.id) as session:
        departments = DepartmentRepository(session)
        listed = await departments.list_page(PAGE, q="SUPPORT")
        assert [row["id"] for row in listed.rows] == [own.id]
        assert await departments.is_staff(staff.id)
        assert not await departments.is_staff(foreign_staff.id)
        assert not await departments.is_staff(customer.id)
        with pytest.raises(NotFound):
            await departments.get_or_404(foreign.id)
        with pytest.raises(Conflict):
            await departments.check_name_free(name.upper())
        await departments.check_name_free(name, exclude=own.id)
        await departments.check_name_free(f"Other {name}")  # org_b's name is free here
    assert len(PROVEN) - before >= 7


async def test_deleted_rows_only_when_asked(database: Database, org_a: Organization) -> None:
    name = f"Gone {uuid.uuid4().hex[:8]}"
    gone = await add_department(database, org_a, name)
    async with database.tenant_session(org_a.id) as session:
        departments = DepartmentRepository(session)
        (await departments.get_or_404(gone.id)).soft_delete()
        await session.commit()
    async with database.tenant_session(org_a.id) as session:
        departments = DepartmentRepository(session)
        assert (await departments.list_page(PAGE, q=name)).rows == []
        deleted = await departments.list_page(PAGE, q=name, include_deleted=True)
        assert [row["id"] for row in deleted.rows] == [gone.id]
        with pytest.raises(NotFound):
            await departments.get_or_404(gone.id)
        assert (await departments.get_or_404(gone.id, include_deleted=True)).is_deleted
        await departments.check_name_free(name)  # a deleted row's name is reusable
