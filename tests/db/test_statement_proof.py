"""The tenant walls in the application itself (embedded SQLite has no row-level security):
the statement proof every repository statement passes in tests, and the session rules
that refuse what no repository built."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

from app.config import Settings
from app.db.database import Database
from app.db.session import AppSession, CrossTenantWrite, UnscopedStatement
from app.kit.repository import scoped
from app.models import Customer, Organization, Ticket, TicketHistory
from app.tickets.repository import TICKETS, TicketRepository
from tests.support.identity import API, Tenant
from tests.support.statement_proof import PROVEN, UnprovenStatement, prove


@pytest.fixture
async def repository(database: Database, org_a: Organization) -> AsyncIterator[TicketRepository]:
    async with database.tenant_session(org_a.id) as session:
        yield TicketRepository(session)


def _refused(repository: TicketRepository, statement: Any, *, include_deleted: bool = False) -> str:
    with pytest.raises(UnprovenStatement) as refused:
        prove(statement, repository.organization_id, include_deleted=include_deleted)
    return str(refused.value)


async def test_every_statement_a_test_runs_is_proven(
    client: httpx.AsyncClient, tenant_a: Tenant
) -> None:
    before = len(PROVEN)
    agent = tenant_a["agent"]
    response = await client.get(f"{API}/tickets", params={"q": "x"}, headers=agent.headers)
    assert response.status_code == 200
    assert len(PROVEN) > before


def test_repository_statements_pass(repository: TicketRepository) -> None:
    org = repository.organization_id
    writes = repository.update().values(subject="x")
    for statement in (repository.select_rows(), repository.select(), writes):
        prove(statement.where(Ticket.id == uuid.uuid4()), org, include_deleted=False)
    prove(repository.insert_row({"subject": "x"}), org, include_deleted=False)


def test_a_union_member_inside_a_from_subquery_is_refused(repository: TicketRepository) -> None:
    scoped_ids = sa.select(Ticket.id).where(*repository.scope())
    unscoped_ids = sa.select(Ticket.id)
    inner = sa.union(scoped_ids, unscoped_ids).subquery()
    statement = repository.select_rows().where(Ticket.id.in_(sa.select(inner.c.id)))
    assert "tickets" in _refused(repository, statement)


def test_a_subquery_two_levels_deep_is_refused(repository: TicketRepository) -> None:
    deep = sa.select(TicketHistory.ticket_id).where(
        *repository.scope(TicketHistory),
        TicketHistory.ticket_id.in_(sa.select(Ticket.id).where(Ticket.subject == "x")),
    )
    statement = repository.select_rows().where(Ticket.id.in_(deep))
    assert "tickets is read without its tenant" in _refused(repository, statement)


def test_sql_text_literal_columns_and_suffixes_are_refused(repository: TicketRepository) -> None:
    base = repository.select_rows()
    assert "text" in _refused(repository, base.where(sa.text("1 = 1 OR 1 = 1")))
    literal = base.where(sa.literal_column("tickets.subject") == "x")
    assert "literal" in _refused(repository, literal)
    assert "suffix" in _refused(repository, base.suffix_with("UNION SELECT * FROM tickets"))


def test_a_scope_inside_an_or_proves_nothing(repository: TicketRepository) -> None:
    statement = sa.select(Ticket.id).where(
        sa.or_(Ticket.organization_id == repository.organization_id, Ticket.subject == "x"),
        Ticket.deleted_at.is_(None),
    )
    assert "tenant" in _refused(repository, statement)


def test_deleted_rows_need_the_statement_to_ask_for_them(repository: TicketRepository) -> None:
    statement = sa.select(Ticket.id).where(Ticket.organization_id == repository.organization_id)
    assert "deleted_at" in _refused(repository, statement)
    prove(statement, repository.organization_id, include_deleted=True)


def test_another_tenants_value_is_refused(repository: TicketRepository) -> None:
    statement = sa.select(Ticket.id).where(
        Ticket.organization_id == uuid.uuid4(), Ticket.deleted_at.is_(None)
    )
    assert "tenant" in _refused(repository, statement)


def test_writes_are_proven_including_journal_ctes(repository: TicketRepository) -> None:
    mine = {"id": uuid.uuid4(), "organization_id": repository.organization_id}
    theirs = {"id": uuid.uuid4(), "organization_id": uuid.uuid4()}
    row = {"ticket_id": uuid.uuid4(), "field": "x"}
    insert = sa.insert(TicketHistory.__table__)
    chained = insert.values([{**row, **mine}]).add_cte(
        insert.values([{**row, **theirs}]).cte("journal_0")
    )
    assert "not all the tenant's" in _refused(repository, chained)
    moving = repository.update().values(organization_id=uuid.uuid4())
    assert "sets organization_id" in _refused(repository, moving, include_deleted=True)
    unscoped = sa.update(TICKETS).values(subject="x")
    assert "tenant" in _refused(repository, unscoped)
    customers = Customer.__table__
    joined = (
        repository.update()
        .where(TICKETS.c.customer_id == customers.c.id, customers.c.name == "x")
        .values(subject="x")
    )
    assert "reads ['customers'] unscoped" in _refused(repository, joined)
    deleting = sa.delete(TICKETS).where(
        *repository.scope(), TICKETS.c.customer_id == customers.c.id
    )
    assert "unscoped" in _refused(repository, deleting)


# --- the session's rules at run time ---------------------------------------------------


async def test_core_and_text_statements_are_refused_in_tenant_and_unbound_sessions(
    database: Database, org_a: Organization
) -> None:
    async with database.tenant_session(org_a.id) as session:
        with pytest.raises(UnscopedStatement):
            await session.execute(sa.select(TICKETS))
        with pytest.raises(UnscopedStatement):
            await session.execute(sa.text("SELECT * FROM tickets"))
        # A repository's statement runs.
        assert await session.execute(scoped(sa.select(sa.literal(1)))) is not None
    async with database.unbound_session() as session:
        with pytest.raises(UnscopedStatement):
            await session.execute(sa.select(TICKETS))
        with pytest.raises(Exception, match="outside a tenant session"):
            await session.execute(sa.select(sa.func.count()).select_from(Ticket))


async def _a_ticket(database: Database, org: Organization) -> Ticket:
    from tests.factories import seed_every_model

    async with database.tenant_session(org.id) as session:
        rows = await seed_every_model(session)
        await session.commit()
    ticket = rows[Ticket]
    assert isinstance(ticket, Ticket)
    return ticket


async def test_orm_writes_cannot_reach_another_tenant(
    database: Database, org_a: Organization, org_b: Organization
) -> None:
    theirs = await _a_ticket(database, org_b)
    async with database.tenant_session(org_a.id) as session:
        with pytest.raises(CrossTenantWrite):
            await session.execute(
                sa.update(Ticket).where(Ticket.subject != "").values(organization_id=org_b.id)
            )
        with pytest.raises(CrossTenantWrite):
            await session.execute(
                sa.insert(Ticket).values(
                    organization_id=org_b.id,
                    ticket_number="X",
                    subject="x",
                    customer_id=uuid.uuid4(),
                )
            )
        with pytest.raises(UnscopedStatement):
            await session.execute(
                sa.insert(TicketHistory).from_select(
                    ["organization_id", "ticket_id", "field"],
                    sa.select(Ticket.organization_id, Ticket.id, Ticket.subject),
                )
            )
    for change in ("update", "delete"):
        async with database.tenant_session(org_a.id) as session:
            merged = session.sync_session.merge(theirs, load=False)
            if change == "update":
                merged.subject = "hijacked"
            else:
                await session.delete(merged)
            with pytest.raises(CrossTenantWrite):
                await session.flush()


async def test_a_failed_begin_leaves_the_next_transaction_a_normal_tenant_one(
    settings: Settings, org_a: Organization
) -> None:
    """When the start of a tenant transaction fails (here: right after its settings),
    the error is raised and the connection's next transaction starts clean: as the app
    role it logs in as, with its own organization — never as the owner, never with
    another organization or none."""
    one_connection = {"database_pool_size": 1, "database_max_overflow": 0}
    own = Database(settings.model_copy(update=one_connection))
    failures = [RuntimeError("BEGIN failed")]

    def fail_once(*_args: object) -> None:
        if failures:
            raise failures.pop()

    event.listen(AppSession, "after_begin", fail_once)
    try:
        async with own.tenant_session(org_a.id) as session:
            with pytest.raises(RuntimeError, match="BEGIN failed"):
                await session.connection()
        async with own.tenant_session(org_a.id) as session:
            connection = await session.connection()
            who = await connection.exec_driver_sql(
                "SELECT current_user, current_setting('app.organization_id'), "
                "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"
            )
            assert tuple(who.one()) == (settings.database_app_role, str(org_a.id), False)
    finally:
        event.remove(AppSession, "after_begin", fail_once)
        await own.dispose()


async def test_a_tenant_transaction_cannot_leave_row_level_security(
    database: Database, org_a: Organization, org_b: Organization
) -> None:
    """The tenant connection logs in as the app role: `RESET ROLE` stays there, and
    switching to the owner or a superuser is refused — another tenant stays invisible."""
    await _a_ticket(database, org_b)
    async with database.tenant_session(org_a.id) as session:
        connection = await session.connection()
        await connection.exec_driver_sql("RESET ROLE")
        assert (await connection.exec_driver_sql("SELECT current_user")).scalar_one() == (
            "helpdesk_app"
        )
        count = "SELECT count(*) FROM tickets WHERE organization_id = $1"
        other = (org_b.id,)
        assert (await connection.exec_driver_sql(count, other)).scalar_one() == 0
    for escape in (
        "SET LOCAL ROLE postgres",
        "SELECT set_config('role', 'postgres', true)",
        "SET SESSION AUTHORIZATION postgres",
    ):
        async with database.tenant_session(org_a.id) as session:
            connection = await session.connection()
            with pytest.raises(DBAPIError, match="permission denied"):
                await connection.exec_driver_sql(escape)
    async with database.system_session() as session:
        connection = await session.connection()
        membership = await connection.exec_driver_sql(
            "SELECT r.rolsuper, r.rolbypassrls, pg_has_role('helpdesk_app', d.datdba, 'MEMBER')"
            " FROM pg_roles r, pg_database d"
            " WHERE r.rolname = 'helpdesk_app' AND d.datname = current_database()"
        )
        assert tuple(membership.one()) == (False, False, False)
