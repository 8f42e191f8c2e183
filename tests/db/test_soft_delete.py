"""One soft-delete pattern: hidden everywhere, restorable, unique values reusable."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from app.db.base import Base
from app.db.database import Database
from app.db.tenancy import SoftDeleteMixin
from app.models import Department, Organization, Ticket, TicketComment, User
from tests.factories import seed_every_model

SOFT_DELETABLE = sorted(
    (m.class_ for m in Base.registry.mappers if issubclass(m.class_, SoftDeleteMixin)),
    key=lambda cls: cls.__name__,
)


def test_soft_delete_replaces_is_active_soft_delete() -> None:
    # Organization and User used `is_active` as deletion in the seed: now `deleted_at`.
    assert Organization in SOFT_DELETABLE and User in SOFT_DELETABLE
    assert "is_active" not in Organization.__table__.c
    assert "is_active" not in User.__table__.c


@pytest.mark.parametrize(
    "model", [m for m in SOFT_DELETABLE if m is not Organization], ids=lambda m: m.__name__
)
async def test_deleted_row_hidden_from_every_path_and_restorable(
    model: type[Base], database: Database, org_a: Organization
) -> None:
    async with database.tenant_session(org_a.id) as session:
        rows = await seed_every_model(session)
        row = rows[model]
        assert isinstance(row, SoftDeleteMixin)
        row.soft_delete()
        await session.commit()
    async with database.tenant_session(org_a.id) as session:
        assert await session.get(model, row.id) is None
        visible = set(await session.scalars(sa.select(model.id)))
        assert row.id not in visible
        count = await session.scalar(sa.select(sa.func.count()).select_from(model))
        assert count == len(visible)
        found = await session.scalar(
            sa.select(model).where(model.id == row.id).execution_options(include_deleted=True)
        )
        assert found is not None and found.is_deleted  # type: ignore[attr-defined]
        found.restore()  # type: ignore[attr-defined]
        await session.commit()
    async with database.tenant_session(org_a.id) as session:
        assert await session.get(model, row.id) is not None


async def test_deleted_ticket_vanishes_from_joins_but_children_stay(
    database: Database, org_a: Organization
) -> None:
    async with database.tenant_session(org_a.id) as session:
        rows = await seed_every_model(session)
        rows[Ticket].soft_delete()  # type: ignore[attr-defined]
        await session.commit()
    async with database.tenant_session(org_a.id) as session:
        joined = await session.scalars(
            sa.select(TicketComment).join(Ticket, Ticket.id == TicketComment.ticket_id)
        )
        assert joined.all() == []
        # Soft deletion never cascades: the comment row is intact for a restore.
        assert await session.get(TicketComment, rows[TicketComment].id) is not None


async def test_relationship_load_hides_deleted_children(
    database: Database, org_a: Organization
) -> None:
    async with database.tenant_session(org_a.id) as session:
        rows = await seed_every_model(session)
        customer = rows[User]
        await session.commit()
    async with database.tenant_session(org_a.id) as session:
        customer_row = await session.get(User, customer.id)
        assert customer_row is not None
        customer_row.soft_delete()
        await session.commit()
    async with database.tenant_session(org_a.id) as session:
        ticket = await session.scalar(sa.select(Ticket).options(selectinload(Ticket.customer)))
        assert ticket is not None and ticket.customer is None


async def test_deleted_unique_value_can_be_reused(database: Database, org_a: Organization) -> None:
    async with database.tenant_session(org_a.id) as session:
        first = Department(name="Billing")
        session.add(first)
        await session.flush()
        session.add(Department(name="billing"))  # case-insensitive duplicate
        with pytest.raises(IntegrityError):
            await session.flush()
    async with database.tenant_session(org_a.id) as session:
        first = Department(name="Billing")
        session.add(first)
        await session.flush()
        first.soft_delete()
        session.add(Department(name="Billing"))
        await session.flush()
        await session.commit()
        names = await session.scalars(
            sa.select(Department.name).execution_options(include_deleted=True)
        )
        assert names.all().count("Billing") == 2


async def test_deleted_organization_invisible_even_to_itself(
    database: Database, org_a: Organization
) -> None:
    async with database.system_session() as session:
        org = await session.get(Organization, org_a.id)
        assert org is not None
        org.soft_delete()
        await session.commit()
    async with database.system_session() as session:
        assert await session.get(Organization, org_a.id) is None
        org = await session.scalar(
            sa.select(Organization)
            .where(Organization.id == org_a.id)
            .execution_options(include_deleted=True)
        )
        assert org is not None
