"""Scoped Core reads: the proof refuses every unscoped shape, and what it accepts reads
only the bound organization's live rows, whatever the model."""

from __future__ import annotations

import gc
import logging
import uuid
import weakref
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from app.config import Settings
from app.db.base import Base
from app.db.scoped import (
    ORGANIZATION,
    ScopedQuery,
    UnscopedQuery,
    fetch_all,
    fetch_one_or_none,
    scope,
)
from app.db.session import Database, TenantContextMissing, commit
from app.db.tenancy import SoftDeleteMixin
from app.models import Organization, Ticket, TicketComment, User
from app.models.ticket import TicketStatus
from tests.db.test_tenancy import TENANT_MODELS, two_tenants  # noqa: F401 (fixture)

TICKETS = Ticket.__table__
COMMENTS = TicketComment.__table__


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: sa.select(TICKETS), id="no-criteria"),
        pytest.param(
            lambda: sa.select(TICKETS).where(TICKETS.c.organization_id == ORGANIZATION),
            id="deleted-rows-not-excluded",
        ),
        pytest.param(
            lambda: sa.select(TICKETS).where(TICKETS.c.deleted_at.is_(None)),
            id="tenant-missing",
        ),
        pytest.param(lambda: sa.select(TICKETS).where(sa.or_(*scope(Ticket))), id="inside-or"),
        pytest.param(
            lambda: sa.select(TICKETS).where(
                TICKETS.c.organization_id == sa.bindparam("other"), TICKETS.c.deleted_at.is_(None)
            ),
            id="another-parameter",
        ),
        pytest.param(
            lambda: sa.select(TICKETS).where(
                TICKETS.c.organization_id == uuid.uuid4(), TICKETS.c.deleted_at.is_(None)
            ),
            id="a-literal-organization",
        ),
        pytest.param(
            lambda: sa.select(TICKETS).where(
                *scope(Ticket), TICKETS.c.id.in_(sa.select(COMMENTS.c.ticket_id))
            ),
            id="unscoped-subquery",
        ),
        pytest.param(
            lambda: (
                sa.select(TICKETS, COMMENTS.c.content)
                .join(COMMENTS, COMMENTS.c.ticket_id == TICKETS.c.id)
                .where(*scope(Ticket))
            ),
            id="unscoped-join",
        ),
        pytest.param(lambda: sa.select(TICKETS.alias()).where(*scope(Ticket)), id="aliased-table"),
        pytest.param(
            lambda: sa.select(Organization.id).where(Organization.deleted_at.is_(None)),
            id="organizations-by-id",
        ),
        pytest.param(
            # An outer join keeps every row of its left side whatever the ON says.
            lambda: sa.select(TICKETS.c.subject).select_from(
                TICKETS.outerjoin(
                    COMMENTS,
                    sa.and_(
                        COMMENTS.c.ticket_id == TICKETS.c.id, *scope(Ticket), *scope(TicketComment)
                    ),
                )
            ),
            id="outer-join-preserved-side",
        ),
        pytest.param(lambda: sa.select(TICKETS.alias().alias()), id="alias-of-alias"),
        pytest.param(lambda: sa.select(sa.tablesample(TICKETS, 100)), id="tablesample"),
        pytest.param(lambda: sa.select(sa.lateral(TICKETS)), id="lateral-table"),
        pytest.param(
            lambda: sa.select(sa.table("tickets", sa.column("id"))), id="lightweight-table"
        ),
        pytest.param(
            lambda: sa.select(sa.column("id")).select_from(sa.text("tickets")), id="text-from"
        ),
        pytest.param(
            lambda: (
                sa.select(TICKETS)
                .where(*scope(Ticket))
                .join(
                    sa.select(TICKETS.c.id).subquery("s"), sa.literal_column("s.id") == TICKETS.c.id
                )
            ),
            id="unscoped-from-subquery-of-the-same-table",
        ),
    ],
)
def test_the_proof_refuses_unscoped_reads(build: object) -> None:
    with pytest.raises(UnscopedQuery):
        ScopedQuery(build())  # type: ignore[operator]


def test_the_proof_accepts_scoped_joins_and_subqueries() -> None:
    ScopedQuery(
        sa.select(TICKETS.c.subject)
        .select_from(
            TICKETS.outerjoin(
                COMMENTS, sa.and_(COMMENTS.c.ticket_id == TICKETS.c.id, *scope(TicketComment))
            )
        )
        .where(*scope(Ticket))
    )
    ScopedQuery(
        sa.select(TICKETS, COMMENTS.c.content)
        .join(COMMENTS, sa.and_(COMMENTS.c.ticket_id == TICKETS.c.id, *scope(TicketComment)))
        .where(*scope(Ticket))
    )
    ScopedQuery(
        sa.select(Ticket.id).where(
            *scope(Ticket),
            Ticket.id.in_(sa.select(TicketComment.ticket_id).where(*scope(TicketComment))),
        )
    )
    ScopedQuery(
        sa.select(TICKETS).where(*scope(Ticket, include_deleted=True)), include_deleted=True
    )


LIVE_TICKETS = ScopedQuery(sa.select(TICKETS).where(*scope(Ticket)))


@pytest.mark.parametrize(
    "criterion",
    [
        pytest.param(lambda: COMMENTS.c.ticket_id == TICKETS.c.id, id="adds-a-table"),
        pytest.param(lambda: TICKETS.c.id.in_(sa.select(COMMENTS.c.ticket_id)), id="subquery"),
        pytest.param(
            lambda: sa.exists(sa.select(TICKETS.c.id).correlate(None).where(TICKETS.c.id == 1)),
            id="uncorrelated-same-table",
        ),
        pytest.param(
            # Nothing of its own is left to correlate against: SQLAlchemy reads the table
            # afresh inside the subquery.
            lambda: TICKETS.c.id.in_(
                sa.select(TICKETS.c.id).where(TICKETS.c.customer_id == sa.bindparam("c"))
            ),
            id="subquery-of-only-the-outer-table",
        ),
        pytest.param(
            lambda: sa.exists().where(TICKETS.c.customer_id == sa.bindparam("c")),
            id="exists-of-only-the-outer-table",
        ),
    ],
)
def test_narrowing_refuses_what_would_widen_the_read(criterion: object) -> None:
    with pytest.raises(UnscopedQuery):
        LIVE_TICKETS.where(criterion())  # type: ignore[operator]


def test_ordering_by_an_unscoped_subquery_is_refused() -> None:
    latest_comment = (
        sa.select(sa.func.max(COMMENTS.c.created_at))
        .where(COMMENTS.c.ticket_id == TICKETS.c.id)
        .scalar_subquery()
    )
    with pytest.raises(UnscopedQuery):
        LIVE_TICKETS.order_by(latest_comment)
    LIVE_TICKETS.order_by(TICKETS.c.created_at.desc(), TICKETS.c.id.desc())


def test_narrowing_accepts_scoped_and_correlated_subqueries() -> None:
    LIVE_TICKETS.where(
        TICKETS.c.id.in_(sa.select(COMMENTS.c.ticket_id).where(*scope(TicketComment)))
    )
    each = sa.func.json_each(TICKETS.c.tags).table_valued("value")
    LIVE_TICKETS.where(sa.exists(sa.select(1).select_from(each).where(each.c.value == "x")))


def test_expanding_parameters_cannot_be_prepared() -> None:
    LIVE_TICKETS.where(TICKETS.c.id == sa.bindparam("ticket_id")).prepare()
    LIVE_TICKETS.where(TICKETS.c.subject == "a literal").limit(5).prepare()
    with pytest.raises(ValueError, match="plain parameters only"):
        LIVE_TICKETS.where(TICKETS.c.id.in_(sa.bindparam("ids", expanding=True))).prepare()


async def test_prepared_statements_process_values_like_sqlalchemy(
    two_tenants: dict[uuid.UUID, dict[type[Base], Base]],  # noqa: F811
    database: Database,
    org_a: Organization,
) -> None:
    """The driver path applies each column type's processing (enumeration members,
    JSON, aware instants) and the statement's literals, and reads back what it wrote."""
    ticket = two_tenants[org_a.id][Ticket]
    assert isinstance(ticket, Ticket)
    write = ScopedQuery(
        sa.update(TICKETS)
        .where(*scope(Ticket), TICKETS.c.id == sa.bindparam("ticket_id"))
        .values(
            status=sa.bindparam("status", type_=TICKETS.c.status.type),
            tags=sa.bindparam("tags", type_=TICKETS.c.tags.type),
            resolved_at=sa.bindparam("resolved_at", type_=TICKETS.c.resolved_at.type),
            version=TICKETS.c.version + 1,
        )
        .returning(TICKETS.c.status, TICKETS.c.tags, TICKETS.c.resolved_at, TICKETS.c.version)
    ).prepare()
    resolved = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with database.tenant_session(org_a.id) as session:
        row = await fetch_one_or_none(
            session,
            write,
            ticket_id=ticket.id,
            status=TicketStatus.RESOLVED,
            tags=["a", "b"],
            resolved_at=resolved,
        )
        assert row == {
            "status": "resolved",
            "tags": ["a", "b"],
            "resolved_at": resolved,
            "version": ticket.version + 1,
        }
        with pytest.raises(sa.exc.StatementError, match="naive datetime"):
            await fetch_one_or_none(
                session,
                write,
                ticket_id=ticket.id,
                status=TicketStatus.OPEN,
                tags=[],
                resolved_at=datetime(2026, 1, 2),  # noqa: DTZ001
            )


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: sa.update(TICKETS).values(subject="x"), id="update-everything"),
        pytest.param(
            lambda: (
                sa.update(TICKETS)
                .where(TICKETS.c.organization_id == ORGANIZATION)
                .values(subject="x")
            ),
            id="update-deleted-rows-too",
        ),
        pytest.param(
            lambda: sa.update(TICKETS).where(sa.or_(*scope(Ticket))).values(subject="x"),
            id="update-scope-inside-or",
        ),
        pytest.param(
            lambda: (
                sa.update(TICKETS)
                .where(*scope(Ticket))
                .values(organization_id=sa.bindparam("other"))
            ),
            id="update-moves-the-row-to-another-tenant",
        ),
        pytest.param(
            lambda: (
                sa.update(TICKETS)
                .where(*scope(Ticket), TICKETS.c.id == COMMENTS.c.ticket_id)
                .values(subject="x")
            ),
            id="update-reads-another-table",
        ),
        pytest.param(
            lambda: (
                sa.update(TICKETS)
                .where(*scope(Ticket))
                .values(subject=sa.select(COMMENTS.c.content).limit(1).scalar_subquery())
            ),
            id="update-holds-a-subquery",
        ),
        pytest.param(lambda: sa.insert(COMMENTS).values(content="x"), id="insert-without-tenant"),
        pytest.param(
            lambda: sa.insert(COMMENTS).values(organization_id=uuid.uuid4(), content="x"),
            id="insert-for-a-literal-tenant",
        ),
        pytest.param(
            lambda: sa.insert(COMMENTS).values(
                [{"organization_id": ORGANIZATION, "content": "x"}] * 2
            ),
            id="insert-of-many-rows",
        ),
        pytest.param(
            lambda: sa.insert(COMMENTS).from_select(
                ["organization_id", "content"],
                sa.select(COMMENTS.c.organization_id, COMMENTS.c.content),
            ),
            id="insert-from-select",
        ),
        pytest.param(
            lambda: sa.insert(Organization.__table__).values(id=ORGANIZATION, name="x"),
            id="insert-of-a-tenant",
        ),
        pytest.param(
            lambda: (
                postgresql.insert(COMMENTS)
                .values(organization_id=ORGANIZATION, id=sa.bindparam("id"), content="x")
                .on_conflict_do_update(index_elements=["id"], set_={"content": "taken over"})
            ),
            id="insert-that-updates-on-conflict",
        ),
    ],
)
def test_the_proof_refuses_unscoped_writes(build: object) -> None:
    with pytest.raises(UnscopedQuery):
        ScopedQuery(build())  # type: ignore[operator]


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(
            lambda: sa.delete(TICKETS).returning(TICKETS.c.id), id="a-delete-the-proof-skips"
        ),
        pytest.param(lambda: sa.text("DELETE FROM tickets"), id="text"),
        pytest.param(
            lambda: (
                sa.update(TICKETS)
                .where(*scope(Ticket))
                .values(subject="x")
                .add_cte(sa.delete(COMMENTS).cte("gone"))
            ),
            id="update-with-a-deleting-cte",
        ),
        pytest.param(
            lambda: (
                sa.select(TICKETS.c.id)
                .where(*scope(Ticket))
                .add_cte(sa.delete(COMMENTS).cte("gone"))
            ),
            id="read-with-a-deleting-cte",
        ),
        pytest.param(
            lambda: (
                sa.update(TICKETS)
                .where(*scope(Ticket))
                .values(subject=sa.literal_column("(SELECT email FROM users LIMIT 1)"))
            ),
            id="update-with-sql-text",
        ),
        pytest.param(lambda: sa.update(TICKETS).where(*scope(Ticket)), id="update-without-values"),
    ],
)
def test_the_proof_refuses_what_it_cannot_read(build: object) -> None:
    with pytest.raises(UnscopedQuery):
        ScopedQuery(build())  # type: ignore[operator]


async def test_a_scoped_write_takes_only_its_own_parameters(
    two_tenants: dict[uuid.UUID, dict[type[Base], Base]],  # noqa: F811
    database: Database,
    org_a: Organization,
    org_b: Organization,
) -> None:
    """On SQLAlchemy's path (SQLite, unprepared) a parameter named after a column would
    add it to the SET: `organization_id` would move the row to another tenant."""
    rename = ScopedQuery(
        sa.update(TICKETS)
        .where(*scope(Ticket), TICKETS.c.id == sa.bindparam("ticket_id"))
        .values(subject=sa.bindparam("new_subject"))
        .returning(TICKETS.c.organization_id)
    )
    ticket = two_tenants[org_a.id][Ticket]
    async with database.tenant_session(org_a.id) as session:
        with pytest.raises(UnscopedQuery, match="organization_id"):
            await fetch_one_or_none(
                session, rename, ticket_id=ticket.id, new_subject="x", organization_id=org_b.id
            )
        row = await fetch_one_or_none(session, rename, ticket_id=ticket.id, new_subject="x")
        assert row == {"organization_id": org_a.id}


def test_a_condition_proven_for_a_read_is_proven_again_for_a_write() -> None:
    in_a_comment = TICKETS.c.id.in_(sa.select(COMMENTS.c.ticket_id).where(*scope(TicketComment)))
    LIVE_TICKETS.where(in_a_comment)
    update = ScopedQuery(sa.update(TICKETS).where(*scope(Ticket)).values(subject="x"))
    with pytest.raises(UnscopedQuery):
        update.where(in_a_comment)


async def test_scoped_writes_touch_only_the_bound_organization(
    two_tenants: dict[uuid.UUID, dict[type[Base], Base]],  # noqa: F811
    database: Database,
    org_a: Organization,
    org_b: Organization,
) -> None:
    rename = ScopedQuery(
        sa.update(TICKETS)
        .where(*scope(Ticket), TICKETS.c.id == sa.bindparam("ticket_id"))
        .values(subject=sa.bindparam("new_subject"))
        .returning(TICKETS.c.id)
    ).prepare()
    a_ticket, b_ticket = two_tenants[org_a.id][Ticket], two_tenants[org_b.id][Ticket]
    comment = ScopedQuery(
        sa.insert(COMMENTS)
        .values(
            id=sa.bindparam("id"),
            organization_id=ORGANIZATION,
            ticket_id=sa.bindparam("ticket_id"),
            author_id=sa.bindparam("author_id"),
            content=sa.bindparam("content"),
        )
        .returning(COMMENTS.c.organization_id)
    ).prepare()
    with pytest.raises(TypeError):
        comment.where(COMMENTS.c.id == sa.bindparam("id"))
    author = two_tenants[org_a.id][User]
    async with database.tenant_session(org_a.id) as session:
        assert (
            await fetch_one_or_none(
                session, rename, ticket_id=b_ticket.id, new_subject="taken over"
            )
            is None
        )
        assert await fetch_one_or_none(
            session, rename, ticket_id=a_ticket.id, new_subject="renamed"
        ) == {"id": a_ticket.id}
        written = await fetch_one_or_none(
            session,
            comment,
            id=uuid.uuid4(),
            ticket_id=a_ticket.id,
            author_id=author.id,
            content="hello",
        )
        assert written == {"organization_id": org_a.id}
        await commit(session)
    async with database.system_session() as session:
        subjects = dict((await session.execute(sa.select(TICKETS.c.id, TICKETS.c.subject))).all())
    assert subjects[a_ticket.id] == "renamed"
    assert subjects[b_ticket.id] != "taken over"


@pytest.mark.parametrize("model", TENANT_MODELS, ids=lambda m: m.__name__)
async def test_scoped_reads_see_only_the_bound_organization(
    model: type[Base],
    two_tenants: dict[uuid.UUID, dict[type[Base], Base]],  # noqa: F811
    database: Database,
    org_a: Organization,
    org_b: Organization,
) -> None:
    table = model.__table__
    assert isinstance(table, sa.Table)
    query = ScopedQuery(sa.select(table.c.id, table.c.organization_id).where(*scope(model)))
    async with database.tenant_session(org_a.id) as session:
        rows = await fetch_all(session, query)
        assert rows, f"{model.__name__}: org A reads none of its own rows"
        assert {row["organization_id"] for row in rows} == {org_a.id}
        b_row = two_tenants[org_b.id][model]
        assert await fetch_one_or_none(session, query.where(table.c.id == b_row.id)) is None


async def test_scoped_reads_hide_deleted_rows_unless_asked(
    two_tenants: dict[uuid.UUID, dict[type[Base], Base]],  # noqa: F811
    database: Database,
    org_a: Organization,
) -> None:
    ticket = two_tenants[org_a.id][Ticket]
    assert isinstance(ticket, SoftDeleteMixin)
    async with database.tenant_session(org_a.id) as session:
        await session.execute(
            sa.update(Ticket).where(Ticket.id == ticket.id).values(deleted_at=datetime.now(UTC))
        )
        await commit(session)
    live = ScopedQuery(sa.select(TICKETS.c.id).where(*scope(Ticket)))
    every = ScopedQuery(
        sa.select(TICKETS.c.id).where(*scope(Ticket, include_deleted=True)), include_deleted=True
    )
    async with database.tenant_session(org_a.id) as session:
        assert await fetch_one_or_none(session, live.where(TICKETS.c.id == ticket.id)) is None
        assert await fetch_one_or_none(session, every.where(TICKETS.c.id == ticket.id)) is not None


async def test_scoped_reads_need_a_tenant_session(database: Database) -> None:
    query = ScopedQuery(sa.select(User.id).where(*scope(User)))
    async with database.system_session() as session:
        with pytest.raises(TenantContextMissing):
            await fetch_all(session, query)
    async with database.unbound_session() as session:
        with pytest.raises(TenantContextMissing):
            await fetch_all(session, query)


async def test_prepared_statements_follow_the_session_across_transactions(
    two_tenants: dict[uuid.UUID, dict[type[Base], Base]],  # noqa: F811
    database: Database,
    org_a: Organization,
) -> None:
    """The driver connection is looked up once per transaction: a session that commits
    or rolls back and goes on reads in its new transaction, tenant settings included."""
    ticket = two_tenants[org_a.id][Ticket]
    by_id = LIVE_TICKETS.where(TICKETS.c.id == sa.bindparam("ticket_id")).prepare()
    tenant = ScopedQuery(
        sa.select(sa.func.current_setting("app.organization_id").label("tenant")).where(
            *scope(Ticket), TICKETS.c.id == sa.bindparam("ticket_id")
        )
    ).prepare()
    async with database.tenant_session(org_a.id) as session:
        for end_transaction in (commit, lambda s: s.rollback(), commit):
            assert await fetch_one_or_none(session, by_id, ticket_id=ticket.id) is not None
            row = await fetch_one_or_none(session, tenant, ticket_id=ticket.id)
            assert row == {"tenant": str(org_a.id)}
            await end_transaction(session)


async def test_a_finished_session_is_freed_without_the_cycle_collector(
    two_tenants: dict[uuid.UUID, dict[type[Base], Base]],  # noqa: F811
    database: Database,
    org_a: Organization,
) -> None:
    """Whatever the driver remembers per transaction is dropped when it ends: a session
    left in a reference cycle per request would run the cyclic collector every dozen
    requests."""
    ticket = two_tenants[org_a.id][Ticket]
    by_id = LIVE_TICKETS.where(TICKETS.c.id == sa.bindparam("ticket_id")).prepare()
    gc.collect()
    gc.disable()
    try:
        async with database.tenant_session(org_a.id) as session:
            assert await fetch_one_or_none(session, by_id, ticket_id=ticket.id) is not None
            await commit(session)
            assert await fetch_one_or_none(session, by_id, ticket_id=ticket.id) is not None
            await session.rollback()
        freed = weakref.ref(session.sync_session)
        del session
        assert freed() is None
    finally:
        gc.enable()


async def test_driver_statements_are_in_the_echo_log(
    settings: Settings, org_a: Organization, caplog: pytest.LogCaptureFixture
) -> None:
    """The tenant settings and prepared scoped reads bypass SQLAlchemy's execution, not
    its SQL log: with echo on, both show up like any statement."""
    query = ScopedQuery(
        sa.select(User.id).where(*scope(User), User.id == sa.bindparam("user_id"))
    ).prepare()
    echoing = Database(settings.model_copy(update={"database_echo": True}))
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine.Engine")
    try:
        async with echoing.tenant_session(org_a.id) as session:
            await fetch_one_or_none(session, query, user_id=uuid.uuid4())
    finally:
        await echoing.dispose()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "set_config('app.organization_id'" in logged
    assert "FROM users" in logged and "[driver]" in logged
