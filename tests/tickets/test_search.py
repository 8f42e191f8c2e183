"""`q` search (PostgreSQL full-text + trigrams) and the query plans of ticket lists."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.auth.principal import Principal, PrincipalKind
from app.db.database import Database
from app.kit.pagination import PageParams, cursor_after
from app.models.organization import Organization
from app.models.ticket import (
    CommentType,
    Priority,
    TicketChannel,
    TicketComment,
    TicketStatus,
)
from app.models.user import Role, User
from app.tickets.repository import (
    SORT_KEYS,
    TicketFilters,
    TicketRepository,
    prefix_query,
)
from app.tickets.service import open_ticket
from tests.support.identity import API, Tenant
from tests.support.plans import generic_plan, plan

PAGE = PageParams(limit=50, cursor=None)
ONE = PageParams(limit=1, cursor=None)


async def _search(client: httpx.AsyncClient, headers: dict[str, str], q: str) -> set[str]:
    response = await client.get(f"{API}/tickets", params={"q": q, "limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    return {item["subject"] for item in response.json()["items"]}


@pytest.fixture
async def corpus(database: Database, tenant_a: Tenant) -> Tenant:
    customer = tenant_a["customer"].user_id
    agent = tenant_a["agent"].user_id
    assert customer is not None
    uow = database.tenant_unit(tenant_a.org.id)
    try:
        printer = await open_ticket(
            uow,
            subject="Printer jammed",
            description="Paper stuck in tray two",
            customer_id=customer,
            created_by_id=None,
        )
        await open_ticket(
            uow,
            subject="Invoice question",
            description="Überweisung fehlt seit Mai",
            customer_id=customer,
            created_by_id=None,
        )
        vpn = await open_ticket(
            uow,
            subject="VPN drops",
            description="",
            customer_id=customer,
            created_by_id=None,
        )
        uow.session.add_all(
            [
                TicketComment(
                    ticket_id=vpn["id"], author_id=agent, content="Kerberos ticket expired"
                ),
                TicketComment(
                    ticket_id=printer["id"],
                    author_id=agent,
                    content="Escalated to facilities, vendor Brother",
                    comment_type=CommentType.INTERNAL,
                ),
            ]
        )
        await uow.commit()
    finally:
        await uow.close()
    return tenant_a


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("printer", {"Printer jammed"}),
        ("PRINT", {"Printer jammed"}),  # a word's prefix
        ("inter", {"Printer jammed"}),  # inside a word: trigrams on the subject
        ("paper tray", {"Printer jammed"}),  # every word, anywhere in the document
        ("paper invoice", set()),
        ("überweisung", {"Invoice question"}),  # any language: no stemming, Unicode words
        ("kerberos", {"VPN drops"}),  # a comment
        ("brother", {"Printer jammed"}),  # an internal note, for staff
        ("%", set()),
        ("a_b", set()),
    ],
)
async def test_staff_search(
    client: httpx.AsyncClient, corpus: Tenant, q: str, expected: set[str]
) -> None:
    assert await _search(client, corpus["agent"].headers, q) == expected


async def test_customers_never_match_through_internal_notes(
    client: httpx.AsyncClient, corpus: Tenant
) -> None:
    headers = corpus["customer"].headers
    assert await _search(client, headers, "brother") == set()
    assert await _search(client, headers, "kerberos") == {"VPN drops"}


async def test_a_new_comment_is_searchable_in_its_own_transaction(
    database: Database, corpus: Tenant
) -> None:
    agent = corpus["agent"]
    assert agent.user_id is not None
    principal = Principal(PrincipalKind.USER, agent.user_id, corpus.org.id, Role.AGENT)
    async with database.tenant_session(corpus.org.id) as session:
        repository = TicketRepository(session)
        [ticket] = (
            await repository.list_visible(principal, TicketFilters(), ONE, "-created_at")
        ).rows
        session.add(
            TicketComment(ticket_id=ticket["id"], author_id=agent.user_id, content="zeppelin")
        )
        await session.flush()
        found = await repository.list_visible(
            principal, TicketFilters(q="zeppelin"), PAGE, "-created_at"
        )
        assert [t["id"] for t in found.rows] == [ticket["id"]]


def test_prefix_query_cannot_inject_operators() -> None:
    assert prefix_query("printer & !jam | (x") == "printer:* & jam:* & x:*"
    assert prefix_query("!!! ***") is None


# --- plans on 100k tickets ------------------------------------------------------------


@pytest.fixture(scope="module")
async def big_org(database: Database) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """100,000 tickets over 20 organizations (5,000 in the measured one), built in SQL;
    25,000 comments, one on each ticket of five of them (one in 500 mentions a zeppelin;
    more would only slow the fixture: GIN inserts are the slow part)."""
    async with database.system_session() as session:
        orgs = []
        for n in range(20):
            org = Organization(name=f"Load {n}", slug=f"load-{uuid.uuid4().hex[:10]}")
            session.add(org)
            orgs.append(org)
        await session.flush()
        people = []
        for org in orgs:
            customer = User(organization_id=org.id, email="c@example.com", role=Role.CUSTOMER)
            agent = User(organization_id=org.id, email="a@example.com", role=Role.AGENT)
            session.add_all([customer, agent])
            people.append((org, customer, agent))
        await session.flush()
        for index, (org, customer, agent) in enumerate(people):
            await session.execute(
                sa.text(
                    """
                    INSERT INTO tickets (id, organization_id, ticket_number, subject, description,
                        status, priority, channel, customer_id, assigned_agent_id, tags,
                        created_at, updated_at)
                    SELECT gen_random_uuid(), :org, 'TK-' || lpad(g::text, 6, '0'),
                        'Subject ' || g || ' '
                            || (ARRAY['printer','vpn','invoice','login'])[1 + g % 4],
                        'Body of ticket ' || g,
                        (ARRAY['new','open','pending','resolved'])[1 + g % 4],
                        (ARRAY['low','medium','high','urgent'])[1 + g % 4],
                        (ARRAY['web','email','chat'])[1 + g % 3],
                        :customer, CASE WHEN g % 2 = 0 THEN CAST(:agent AS uuid) END,
                        CAST(:tags AS jsonb),
                        now() - g * interval '1 minute' - :offset * interval '1 second',
                        now() - g * interval '1 minute'
                    FROM generate_series(1, 5000) AS g
                    """
                ),
                {
                    "org": org.id,
                    "customer": customer.id,
                    "agent": agent.id,
                    "tags": json.dumps(["hardware"] if index % 2 else ["billing"]),
                    "offset": index,
                },
            )
            if not 5 <= index < 10:
                continue
            await session.execute(
                sa.text(
                    """
                    INSERT INTO ticket_comments (id, organization_id, ticket_id, author_id,
                        content, comment_type)
                    SELECT gen_random_uuid(), :org, id, :agent,
                        'Reply to ' || ticket_number || CASE
                            WHEN ticket_number::text LIKE '%500' OR ticket_number LIKE '%000'
                            THEN ' about the zeppelin' ELSE ' about the toner' END,
                        'public'
                    FROM tickets WHERE organization_id = :org
                    """
                ),
                {"org": org.id, "agent": agent.id},
            )
        await session.commit()
    async with database.system_session() as session:
        await session.execute(sa.text("ANALYZE tickets"))
        await session.execute(sa.text("ANALYZE ticket_comments"))
        await session.commit()
    org, customer, agent = people[7]
    return org.id, customer.id, agent.id


FILTERS: list[tuple[str, dict[str, Any]]] = [
    ("default", {}),
    ("status", {"statuses": [TicketStatus.OPEN]}),
    ("priority", {"priorities": [Priority.URGENT]}),
    ("channel", {"channel": TicketChannel.CHAT}),
    ("assigned", {"assigned_agent_id": "agent"}),
    ("unassigned", {"unassigned": True}),
    ("customer", {"customer_id": "customer"}),
    ("tag", {"tag": "hardware"}),
    ("sla_breach", {"sla_breach": True}),
    ("search", {"q": "printer"}),
]


def _filters(options: dict[str, Any], customer: uuid.UUID, agent: uuid.UUID) -> TicketFilters:
    """A FILTERS entry as filters, "agent" and "customer" standing for the seeded users."""
    values: dict[str, Any] = {
        k: {"agent": agent, "customer": customer}.get(v, v) if isinstance(v, str) else v
        for k, v in options.items()
    }
    return TicketFilters(**values)


@pytest.mark.parametrize(("name", "options"), FILTERS, ids=[f[0] for f in FILTERS])
async def test_list_queries_use_indexes_at_100k_rows(
    database: Database,
    big_org: tuple[uuid.UUID, uuid.UUID, uuid.UUID],
    name: str,
    options: dict[str, Any],
) -> None:
    org, customer, agent = big_org
    principal = Principal(PrincipalKind.USER, agent, org, Role.AGENT)
    async with database.tenant_session(org) as session:
        statement = TicketRepository(session).list_statement(
            principal, _filters(options, customer, agent), PAGE, "-created_at"
        )
        scans = await plan(session, statement)
    assert ("Seq Scan", "tickets") not in scans, scans
    assert any(relation == "tickets" for _, relation in scans), scans


# Filter combinations, each its own statement: every one of them runs prepared (search
# too, its words a parameter), so each may settle on a generic plan.
GENERIC_SHAPES = [
    *FILTERS,
    ("status-and-priority", {"statuses": [TicketStatus.OPEN], "priorities": [Priority.HIGH]}),
    ("several-statuses", {"statuses": [TicketStatus.OPEN, TicketStatus.PENDING]}),
    ("several-priorities", {"priorities": [Priority.LOW, Priority.URGENT]}),
    (
        "several-statuses-and-tag",
        {"statuses": [TicketStatus.NEW, TicketStatus.OPEN], "tag": "hardware"},
    ),
    ("department", {"department_id": uuid.UUID(int=7)}),
    ("created-range", {"created_after": datetime(2020, 1, 1, tzinfo=UTC)}),
    ("created-before", {"created_before": datetime(2020, 1, 1, tzinfo=UTC)}),
    ("no-sla-breach", {"sla_breach": False}),
    ("customer-own", {}),
    ("include-deleted", {}),
]


def _cursor_past(keys: list[Any]) -> str:
    """A next-page cursor for `keys` (a timestamp or a rank, then an id)."""
    first = keys[0].column.type.python_type
    row = {
        keys[0].column.key: datetime.now(UTC) if first is datetime else 2,
        keys[1].column.key: uuid.uuid4(),
    }
    return cursor_after(row, keys)


@pytest.mark.parametrize(("name", "options"), GENERIC_SHAPES, ids=[f[0] for f in GENERIC_SHAPES])
async def test_list_statements_use_indexes_in_their_generic_plan(
    database: Database,
    big_org: tuple[uuid.UUID, uuid.UUID, uuid.UUID],
    name: str,
    options: dict[str, Any],
) -> None:
    """asyncpg prepares every statement, and PostgreSQL settles on a generic plan (made
    without the values) after a few executions of one: for every filter combination,
    every sort, first page and next, that plan must read tickets through an index too."""
    org, customer, agent = big_org
    if name == "customer-own":
        principal = Principal(PrincipalKind.USER, customer, org, Role.CUSTOMER)
    else:
        principal = Principal(PrincipalKind.USER, agent, org, Role.AGENT)
    async with database.tenant_session(org) as session:
        repository = TicketRepository(session)
        filters = _filters(options, customer, agent)
        for sort, keys in SORT_KEYS.items():
            for cursor in (None, _cursor_past(keys)):
                page = PageParams(limit=PAGE.limit, cursor=cursor)
                statement = repository.list_statement(
                    principal, filters, page, sort, include_deleted=name == "include-deleted"
                )
                scans = await generic_plan(session, statement)
                assert ("Seq Scan", "tickets") not in scans, (sort, cursor, scans)
                assert any(relation == "tickets" for _, relation in scans), (sort, scans)


async def test_the_sla_breach_filter_reads_its_partial_index(
    database: Database, big_org: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    """`WHERE sla_breach` as the index states it (`sla_breach IS true` never used it),
    in the plan for the values and in the generic one."""
    org, customer, agent = big_org
    principal = Principal(PrincipalKind.USER, agent, org, Role.AGENT)
    filters = _filters({"sla_breach": True}, customer, agent)
    async with database.tenant_session(org) as session:
        statement = TicketRepository(session).list_statement(
            principal, filters, PAGE, "-created_at"
        )
        custom_scans = await plan(session, statement)
        generic_scans = await generic_plan(session, statement)
    for scans in (custom_scans, generic_scans):
        assert any(name == "ix_tickets_sla_breach" for _, name in scans), scans


async def test_get_by_id_uses_the_primary_key(
    database: Database, big_org: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    org, _, agent = big_org
    principal = Principal(PrincipalKind.USER, agent, org, Role.AGENT)
    async with database.tenant_session(org) as session:
        statement = TicketRepository(session).get_statement(principal, uuid.uuid4(), False, False)
        scans = await plan(session, statement)
    assert ("Seq Scan", "tickets") not in scans, scans
    assert any(relation == "tickets" for _, relation in scans), scans


async def test_search_reads_comments_through_their_gin_index(
    database: Database, big_org: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    """As the app role, under row-level security, at 100,000 comments: a selective word
    is found through the tenant-led GIN indexes, not by reading every comment."""
    org, _, agent = big_org
    principal = Principal(PrincipalKind.USER, agent, org, Role.AGENT)
    async with database.tenant_session(org) as session:
        repository = TicketRepository(session)
        statement = repository.list_statement(
            principal, TicketFilters(q="zeppelin"), PAGE, "-created_at"
        )
        scans = await plan(session, statement)
        found = (
            await repository.list_visible(
                principal, TicketFilters(q="zeppelin"), PAGE, "-created_at"
            )
        ).rows
    assert ("Seq Scan", "ticket_comments") not in scans, scans
    assert ("Seq Scan", "tickets") not in scans, scans
    assert any(name == "ix_ticket_comments_search" for _, name in scans), scans
    assert len(found) == 10  # TK-000500, -001000, ... -005000


async def test_search_matching_is_leakproof_so_rls_queries_can_use_gin(
    database: Database,
) -> None:
    """Migration 0007 marks `ts_match_vq` leakproof when it runs as a superuser (as here):
    without it, row-level security keeps the GIN indexes from serving the app role."""
    async with database.system_session() as session:
        leakproof = await session.scalar(
            sa.text("SELECT proleakproof FROM pg_proc WHERE proname = 'ts_match_vq'")
        )
    assert leakproof is True
