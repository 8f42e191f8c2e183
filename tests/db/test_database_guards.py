"""The database itself refuses cross-tenant rows: composite foreign keys and RLS."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.db.base import Base
from app.db.database import Database
from app.db.tenancy import TenantMixin
from app.models import Organization, Ticket, TicketComment, User
from tests.factories import make_user, seed_every_model

TENANT_TABLES = sorted(
    m.local_table.name for m in Base.registry.mappers if issubclass(m.class_, TenantMixin)
)


@pytest.fixture
async def b_ticket(database: Database, org_b: Organization) -> Ticket:
    async with database.tenant_session(org_b.id) as session:
        rows = await seed_every_model(session)
        await session.commit()
    ticket = rows[Ticket]
    assert isinstance(ticket, Ticket)
    return ticket


async def test_comment_on_other_tenants_ticket_rejected_by_database(
    database: Database, org_a: Organization, b_ticket: Ticket
) -> None:
    # The system session skips every ORM rule: only the database stands in the way.
    async with database.tenant_session(org_a.id) as session:
        author = await make_user(session)
        await session.commit()
    async with database.system_session() as session:
        session.add(
            TicketComment(
                organization_id=org_a.id,
                ticket_id=b_ticket.id,
                author_id=author.id,
                content="sneaky",
            )
        )
        with pytest.raises(IntegrityError, match="fk_ticket_comments_organization_id_ticket_id"):
            await session.flush()


async def test_ticket_for_other_tenants_customer_rejected_by_database(
    database: Database, org_a: Organization, b_ticket: Ticket
) -> None:
    async with database.system_session() as session:
        session.add(
            Ticket(
                organization_id=org_a.id,
                ticket_number="TK-999999",
                subject="x",
                customer_id=b_ticket.customer_id,
            )
        )
        with pytest.raises(IntegrityError, match="fk_tickets_organization_id_customer_id"):
            await session.flush()


async def test_rls_without_organization_sees_nothing(database: Database, b_ticket: Ticket) -> None:
    async with database.engine.connect() as conn:
        await conn.execute(sa.text("SET LOCAL ROLE helpdesk_app"))
        for table in ["organizations", *TENANT_TABLES]:
            count = await conn.scalar(sa.text(f"SELECT count(*) FROM {table}"))
            assert count == 0, f"{table} leaks {count} rows with no organization set"
        await conn.rollback()


async def test_rls_with_organization_cannot_read_or_write_other_tenant(
    database: Database, org_a: Organization, org_b: Organization, b_ticket: Ticket
) -> None:
    async with database.engine.connect() as conn:
        await conn.execute(
            sa.text(
                "SELECT set_config('role', 'helpdesk_app', true), "
                "set_config('app.organization_id', :org, true)"
            ),
            {"org": str(org_a.id)},
        )
        assert await conn.scalar(sa.text("SELECT count(*) FROM tickets")) == 0
        assert (
            await conn.scalar(
                sa.text("SELECT count(*) FROM tickets WHERE id = :id"), {"id": b_ticket.id}
            )
            == 0
        )
        updated = await conn.execute(
            sa.text("UPDATE tickets SET subject = 'pwned' WHERE id = :id"), {"id": b_ticket.id}
        )
        assert updated.rowcount == 0
        with pytest.raises(DBAPIError, match="row-level security"):
            await conn.execute(
                sa.text(
                    "INSERT INTO departments (id, organization_id, name) "
                    "VALUES (:id, :org, 'planted')"
                ),
                {"id": uuid.uuid4(), "org": org_b.id},
            )
        await conn.rollback()


async def test_rls_platform_flag_is_not_honoured_for_app_role(
    database: Database, b_ticket: Ticket
) -> None:
    async with database.engine.connect() as conn:
        await conn.execute(
            sa.text(
                "SELECT set_config('role', 'helpdesk_app', true), "
                "set_config('app.platform', 'on', true)"
            )
        )
        assert await conn.scalar(sa.text("SELECT count(*) FROM tickets")) == 0
        await conn.rollback()


async def test_every_tenant_table_forces_rls_with_a_tenant_policy(database: Database) -> None:
    async with database.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
                    "array_agg(p.polname ORDER BY p.polname) "
                    "FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid "
                    "WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace "
                    "GROUP BY 1, 2, 3"
                )
            )
        ).all()
    table_state = {name: (rls, force, set(pols)) for name, rls, force, pols in rows}
    for table in ["organizations", *TENANT_TABLES]:
        rls, force, policies = table_state[table]
        assert rls and force, f"{table}: row-level security not forced"
        assert "tenant_isolation" in policies, f"{table}: no tenant policy"


async def test_app_role_is_neither_owner_nor_privileged(database: Database) -> None:
    async with database.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text(
                    "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb "
                    "FROM pg_roles WHERE rolname = 'helpdesk_app'"
                )
            )
        ).one()
        assert tuple(row) == (False, False, False, False)
        owners = set(
            await conn.scalars(
                sa.text("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
            )
        )
        assert "helpdesk_app" not in owners


async def test_tenant_session_runs_as_app_role(database: Database, org_a: Organization) -> None:
    async with database.tenant_session(org_a.id) as session:
        assert (
            await (await session.connection()).scalar(sa.text("SELECT current_user"))
            == "helpdesk_app"
        )
        assert await (await session.connection()).scalar(
            sa.text("SELECT current_setting('app.organization_id')")
        ) == str(org_a.id)
    async with database.tenant_session(org_a.id) as session:
        # A new transaction on a pooled connection starts clean and is re-bound.
        await session.commit()
        assert (
            await (await session.connection()).scalar(sa.text("SELECT current_user"))
            == "helpdesk_app"
        )


async def test_user_check_superuser_has_no_organization(
    database: Database, org_a: Organization
) -> None:
    async with database.system_session() as session:
        session.add(User(email="odd@example.com", organization_id=org_a.id, is_superuser=True))
        with pytest.raises(IntegrityError, match="superuser_has_no_organization"):
            await session.flush()
