"""Two organizations with the same data: every query path in A touches only A's rows."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import aliased, selectinload

from app.db.base import Base
from app.db.database import Database
from app.db.session import CrossTenantWrite, TenantContextMissing
from app.db.tenancy import TenantMixin
from app.models import Organization, Ticket, TicketComment, User
from tests.factories import make_user, seed_every_model

TENANT_MODELS = sorted(
    (m.class_ for m in Base.registry.mappers if issubclass(m.class_, TenantMixin)),
    key=lambda cls: cls.__name__,
)


@pytest.fixture
async def two_tenants(
    database: Database, org_a: Organization, org_b: Organization
) -> dict[uuid.UUID, dict[type[Base], Base]]:
    seeded = {}
    for org in (org_a, org_b):
        async with database.tenant_session(org.id) as session:
            seeded[org.id] = await seed_every_model(session)
            await session.commit()
    return seeded


def test_factories_cover_every_tenant_model() -> None:
    # A new model without a factory row would silently escape the isolation tests.
    assert len(TENANT_MODELS) >= 27


async def test_every_model_covered_by_seed(two_tenants: dict, org_a: Organization) -> None:
    assert set(two_tenants[org_a.id]) == set(TENANT_MODELS)


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m.__name__)
async def test_default_select_sees_only_own_rows(
    model: type[Base],
    two_tenants: dict,
    database: Database,
    org_a: Organization,
    org_b: Organization,
) -> None:
    async with database.tenant_session(org_a.id) as session:
        rows = (await session.scalars(sa.select(model))).all()
        assert rows, f"{model.__name__}: org A sees none of its own rows"
        assert {r.organization_id for r in rows} == {org_a.id}  # type: ignore[attr-defined]
        b_row = two_tenants[org_b.id][model]
        assert await session.get(model, b_row.id) is None
        count = await session.scalar(sa.select(sa.func.count()).select_from(model))
        assert count == len(rows)


async def test_joins_and_aliases_are_filtered(
    two_tenants: dict, database: Database, org_a: Organization
) -> None:
    author = aliased(User)
    async with database.tenant_session(org_a.id) as session:
        stmt = (
            sa.select(Ticket.organization_id, TicketComment.organization_id, author.organization_id)
            .join(TicketComment, TicketComment.ticket_id == Ticket.id)
            .join(author, author.id == TicketComment.author_id)
        )
        rows = (await session.execute(stmt)).all()
        assert rows and all(set(row) == {org_a.id} for row in rows)
        # A join written without the ticket condition still cannot reach B's comments.
        cross = (
            await session.execute(
                sa.select(Ticket.id, TicketComment.id).join(TicketComment, sa.true())
            )
        ).all()
        assert len(cross) == len(rows)


async def test_relationship_loads_are_filtered(
    two_tenants: dict, database: Database, org_a: Organization, org_b: Organization
) -> None:
    b_ticket = two_tenants[org_b.id][Ticket]
    async with database.tenant_session(org_a.id) as session:
        tickets = (
            await session.scalars(
                sa.select(Ticket).options(
                    selectinload(Ticket.comments), selectinload(Ticket.customer)
                )
            )
        ).all()
        for ticket in tickets:
            assert all(c.organization_id == org_a.id for c in ticket.comments)
            assert ticket.customer.organization_id == org_a.id
    # Even when a (buggy) caller asks for B's comments through A's session.
    async with database.tenant_session(org_a.id) as session:
        comments = await session.scalars(
            sa.select(TicketComment).where(TicketComment.ticket_id == b_ticket.id)
        )
        assert comments.all() == []


async def test_bulk_update_and_delete_touch_only_own_rows(
    two_tenants: dict, database: Database, org_a: Organization, org_b: Organization
) -> None:
    async with database.tenant_session(org_a.id) as session:
        result = await session.execute(sa.update(Ticket).values(subject="Renamed in A"))
        assert result.rowcount == 1
        await session.execute(sa.delete(TicketComment))
        await session.commit()
    async with database.tenant_session(org_b.id) as session:
        ticket = await session.scalar(sa.select(Ticket))
        assert ticket is not None and ticket.subject == "Printer on fire"
        assert await session.scalar(sa.select(sa.func.count()).select_from(TicketComment)) == 1


async def test_organization_row_visible_only_as_own(
    two_tenants: dict, database: Database, org_a: Organization
) -> None:
    async with database.tenant_session(org_a.id) as session:
        orgs = (await session.scalars(sa.select(Organization))).all()
        assert [o.id for o in orgs] == [org_a.id]


async def test_unbound_session_fails_closed(database: Database) -> None:
    async with database.unbound_session() as session:
        with pytest.raises(TenantContextMissing):
            await session.scalars(sa.select(Ticket))
        with pytest.raises(TenantContextMissing):
            await session.execute(sa.update(Ticket).values(subject="x"))


async def test_insert_is_stamped_and_mismatch_refused(
    database: Database, org_a: Organization, org_b: Organization
) -> None:
    async with database.tenant_session(org_a.id) as session:
        user = await make_user(session)
        assert user.organization_id == org_a.id
        session.add(User(email="intruder@example.com", organization_id=org_b.id))
        with pytest.raises(CrossTenantWrite):
            await session.flush()
    async with database.tenant_session(org_a.id) as session:
        user = await make_user(session)
        user.organization_id = org_b.id
        with pytest.raises(CrossTenantWrite):
            await session.flush()


async def test_bulk_insert_is_stamped_and_checked(
    database: Database, org_a: Organization, org_b: Organization
) -> None:
    async with database.tenant_session(org_a.id) as session:
        await session.execute(sa.insert(User), [{"email": "bulk@example.com"}])
        stamped = await session.scalar(sa.select(User).where(User.email == "bulk@example.com"))
        assert stamped is not None and stamped.organization_id == org_a.id
        with pytest.raises(CrossTenantWrite):
            await session.execute(
                sa.insert(User), [{"email": "x@example.com", "organization_id": org_b.id}]
            )


async def test_system_session_sees_all_tenants(
    two_tenants: dict, database: Database, org_a: Organization, org_b: Organization
) -> None:
    async with database.system_session() as session:
        owners = set(await session.scalars(sa.select(Ticket.organization_id)))
        assert {org_a.id, org_b.id} <= owners
