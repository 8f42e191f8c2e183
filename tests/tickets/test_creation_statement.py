"""A ticket's creation as one statement on PostgreSQL (`TicketRepository.insert_numbered`):
a column whose default is Python's is not applied in a statement carrying other INSERTs
as CTEs, so the creation must name it, and a creation that does not is refused before
anything is written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from app.db.database import Database
from app.kit.journal import Journal
from app.tickets.repository import PYTHON_DEFAULTS, TicketRepository
from tests.support.identity import Tenant


def test_the_python_side_defaults_are_the_ones_creation_names() -> None:
    expected = {"id", "description", "status", "priority", "channel", "tags"}
    assert {"custom_fields", "sla_breach", "version"} | expected == PYTHON_DEFAULTS


async def test_a_creation_leaving_out_a_python_default_is_refused(
    database: Database, tenant_a: Tenant
) -> None:
    uow = database.tenant_unit(tenant_a.org.id)
    try:
        tickets = TicketRepository(uow.session)
        number = await tickets.next_number()
        values = {
            "id": uuid.uuid4(),
            "created_at": datetime.now(UTC),
            "subject": "Left out",
            "customer_id": tenant_a["customer"].user_id,
        }
        with pytest.raises(ValueError, match="sla_breach"):
            await tickets.insert_numbered(values, number, Journal(uow))
    finally:
        await uow.rollback()
        await uow.close()
