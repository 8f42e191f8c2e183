"""The custom fields repository's definition statements on their own: each keeps to the
session's organization and live rows (the suite's statement proof checks each one it
runs), and another organization's definitions are as absent as missing ones."""

from __future__ import annotations

import uuid

import pytest

from app.custom_fields.repository import CustomFieldRepository
from app.db.database import Database
from app.kit.errors import Conflict, NotFound
from app.kit.pagination import PageParams
from app.models.custom_field import CustomField, EntityType, FieldType
from app.models.organization import Organization
from tests.support.statement_proof import PROVEN

PAGE = PageParams(limit=50, cursor=None)


async def add_field(
    database: Database, org: Organization, name: str, entity_type: EntityType, position: int = 0
) -> CustomField:
    async with database.tenant_session(org.id) as session:
        field = CustomField(
            name=name, field_type=FieldType.TEXT, entity_type=entity_type, position=position
        )
        session.add(field)
        await session.commit()
    return field


async def test_statements_keep_to_the_tenant(
    database: Database, org_a: Organization, org_b: Organization
) -> None:
    later = await add_field(database, org_a, "sku", EntityType.TICKET, position=2)
    first = await add_field(database, org_a, "region", EntityType.TICKET, position=1)
    await add_field(database, org_a, "sku", EntityType.CUSTOMER)
    foreign = await add_field(database, org_b, "serial", EntityType.TICKET)
    before = len(PROVEN)
    async with database.tenant_session(org_a.id) as session:
        fields = CustomFieldRepository(session)
        listed = await fields.list_page(PAGE, entity_type=EntityType.TICKET)
        assert [row["id"] for row in listed.rows] == [first.id, later.id]
        with pytest.raises(NotFound, match="No such custom field"):
            await fields.get_or_404(foreign.id, label="custom field")
        with pytest.raises(Conflict):
            await fields.check_name_free("sku", EntityType.TICKET)
        await fields.check_name_free("sku", EntityType.TICKET, exclude=later.id)
        await fields.check_name_free("sku", EntityType.USER)
        await fields.check_name_free("serial", EntityType.TICKET)  # org_b's name is free here
    assert len(PROVEN) - before >= 6


async def test_deleted_rows_only_when_asked(database: Database, org_a: Organization) -> None:
    gone = await add_field(database, org_a, f"gone_{uuid.uuid4().hex[:8]}", EntityType.TICKET)
    async with database.tenant_session(org_a.id) as session:
        fields = CustomFieldRepository(session)
        (await fields.get_or_404(gone.id)).soft_delete()
        await session.commit()
    async with database.tenant_session(org_a.id) as session:
        fields = CustomFieldRepository(session)
        assert gone.id not in [row["id"] for row in (await fields.list_page(PAGE)).rows]
        deleted = await fields.list_page(PAGE, include_deleted=True)
        assert gone.id in [row["id"] for row in deleted.rows]
        assert (await fields.get_or_404(gone.id, include_deleted=True)).is_deleted
        await fields.check_name_free(gone.name, EntityType.TICKET)  # reusable once deleted
