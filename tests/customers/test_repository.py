"""The customers repository on its own: each statement keeps to the session's
organization and live rows (the suite's statement proof checks each one it runs), and
another organization's accounts are as absent as missing ones."""

from __future__ import annotations

import uuid

import pytest

from app.customers.repository import CustomerRepository
from app.db.database import Database
from app.kit.errors import Conflict, NotFound
from app.kit.pagination import PageParams
from app.models.organization import Organization
from app.models.user import Customer, CustomerTier
from tests.support.statement_proof import PROVEN

PAGE = PageParams(limit=50, cursor=None)


async def add_customer(database: Database, org: Organization, **fields: object) -> Customer:
    async with database.tenant_session(org.id) as session:
        customer = Customer(**fields)
        session.add(customer)
        await session.commit()
    return customer


async def test_statements_keep_to_the_tenant(
    database: Database, org_a: Organization, org_b: Organization
) -> None:
    tag = uuid.uuid4().hex[:8]
    own = await add_customer(
        database, org_a, name=f"Acme {tag}", external_id=tag, customer_tier=CustomerTier.PREMIUM
    )
    await add_customer(database, org_a, name=f"Acme basic {tag}")
    foreign = await add_customer(
        database,
        org_b,
        name=f"Acme {tag}",
        external_id=f"b-{tag}",
        customer_tier=CustomerTier.PREMIUM,
    )
    before = len(PROVEN)
    async with database.tenant_session(org_a.id) as session:
        customers = CustomerRepository(session)
        listed = await customers.list_page(
            PAGE, q=f"acme {tag}", customer_tier=CustomerTier.PREMIUM
        )
        assert [row["id"] for row in listed.rows] == [own.id]
        with pytest.raises(NotFound, match="No such customer account"):
            await customers.get_or_404(foreign.id, label="customer account")
        with pytest.raises(Conflict):
            await customers.check_name_free(f"ACME {tag}")
        with pytest.raises(Conflict):
            await customers.check_external_id_free(tag)
        await customers.check_name_free(f"Acme {tag}", exclude=own.id)
        await customers.check_external_id_free(f"b-{tag}")  # org_b's id is free here
    assert len(PROVEN) - before >= 6


async def test_deleted_rows_only_when_asked(database: Database, org_a: Organization) -> None:
    tag = uuid.uuid4().hex[:8]
    gone = await add_customer(database, org_a, name=f"Gone {tag}", external_id=tag)
    async with database.tenant_session(org_a.id) as session:
        customers = CustomerRepository(session)
        (await customers.get_or_404(gone.id)).soft_delete()
        await session.commit()
    async with database.tenant_session(org_a.id) as session:
        customers = CustomerRepository(session)
        assert (await customers.list_page(PAGE, q=tag)).rows == []
        deleted = await customers.list_page(PAGE, q=tag, include_deleted=True)
        assert [row["id"] for row in deleted.rows] == [gone.id]
        assert (await customers.get_or_404(gone.id, include_deleted=True)).is_deleted
        await customers.check_name_free(f"Gone {tag}")  # a deleted row's values are reusable
        await customers.check_external_id_free(tag)
