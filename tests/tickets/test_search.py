"""`q` search (PostgreSQL full-text + trigrams) and the query plans of ticket lists."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal, PrincipalKind
from app.db.driver import compile_for_driver
from app.db.scoped import fetch_all
from app.db.session import Database, commit
from app.kit.pagination import PageParams, _prepared_page, paginate
from app.models.organization import Organization
from app.models.ticket import CommentType, TicketComment
from app.models.user import Role, User
from app.tickets import service as tickets
from app.tickets.router import SORT_KEYS
from app.tickets.search import prefix_query
from app.tickets.service import TicketFilters, open_ticket
from tests.support.identity import API, Tenant


async def _search(client: httpx.AsyncClient, headers: dict[str, str], q: str) -> set[str]:
    response = await client.get(f"{API}/tickets", params={"q": q, "limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    return {item["subject"] for item in response.json()["items"]}


@pytest.fixture
async def corpus(database: Database, tenant_a: Tenant) -> Tenant:
    customer = tenant_a["customer"].user_id
    agent = tenant_a["agent"].user_id
    async with database.tenant_session(tenant_a.org.id) as session:
        printer = await open_ticket(
            session,
            subject="Printer jammed",
            description="Paper stuck in tray two",
            customer_id=customer,
            created_by_id=None,
        )
        await open_ticket(
            session,
            subject="Invoice question",
            description="Überweisung fehlt seit Mai",
            customer_id=customer,
            created_by_id=None,
        )
        vpn = await open_ticket(
            session,
            subject="VPN drops",
            description="",
            customer_id=customer,
            created_by_id=None,
        )
        session.add_all(
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
        await commit(session)
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
    principal = Principal(PrincipalKind.USER, agent.user_id, corpus.org.id, Role.AGENT)
    async with database.tenant_session(corpus.org.id) as session:
        ticket = await session.scalar(tickets.visible_tickets(principal).limit(1))
        assert ticket is not None
        session.add(TicketComment(ticket_id=ticket.id, author_id=agent.user_id, content="zeppelin"))
        await session.flush()
        found = await fetch_all(
            session,
            tickets.tickets_query(
                principal, TicketFilters([], [], q="zeppelin"), dialect="postgresql"
            ),
        )
        assert [t["id"] for t in found] == [ticket.id]


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
        await commit(session)
    async with database.system_session() as session:
        await session.execute(sa.text("ANALYZE tickets"))
        await session.execute(sa.text("ANALYZE ticket_comments"))
        await commit(session)
    org, customer, agent = people[7]
    return org.id, customer.id, agent.id


def _scans(plan: Any) -> list[tuple[str, str]]:
    """(node type, relation or index name) of every scan in the plan."""
    found = []
    if isinstance(plan, dict):
        if "Node Type" in plan and "Relation Name" in plan:
            found.append((plan["Node Type"], plan["Relation Name"]))
        if "Index Name" in plan:
            found.append((plan["Node Type"], plan["Index Name"]))
        for value in plan.values():
            found += _scans(value)
    elif isinstance(plan, list):
        for item in plan:
            found += _scans(item)
    return found


async def _plan(
    session: AsyncSession, statement: sa.Select[Any], **bound: Any
) -> list[tuple[str, str]]:
    compiled = statement.compile(dialect=session.sync_session.get_bind().dialect)
    expanded = compiled.construct_expanded_state(compiled.construct_params(bound))
    processors = compiled._bind_processors
    args = [
        processors[name](expanded.parameters[name])
        if name in processors
        else expanded.parameters[name]
        for name in expanded.positiontup or []
    ]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    rows = await driver.fetch(f"EXPLAIN (FORMAT JSON) {expanded.statement}", *args)
    plan = rows[0][0]
    return _scans(json.loads(plan) if isinstance(plan, str) else plan)


FILTERS: list[tuple[str, dict[str, Any]]] = [
    ("default", {}),
    ("status", {"statuses": ["open"]}),
    ("priority", {"priorities": ["urgent"]}),
    ("channel", {"channel": "chat"}),
    ("assigned", {"assigned_agent_id": "agent"}),
    ("unassigned", {"unassigned": True}),
    ("customer", {"customer_id": "customer"}),
    ("tag", {"tag": "hardware"}),
    ("sla_breach", {"sla_breach": True}),
    ("search", {"q": "printer"}),
]


@pytest.mark.parametrize(("name", "options"), FILTERS, ids=[f[0] for f in FILTERS])
async def test_list_queries_use_indexes_at_100k_rows(
    database: Database,
    big_org: tuple[uuid.UUID, uuid.UUID, uuid.UUID],
    name: str,
    options: dict[str, Any],
) -> None:
    org, customer, agent = big_org
    principal = Principal(PrincipalKind.USER, agent, org, Role.AGENT)
    query = (
        tickets.tickets_query(principal, _filters(options, customer, agent), dialect="postgresql")
        .order_by(tickets.Ticket.created_at.desc(), tickets.Ticket.id.desc())
        .limit(51)
    )
    async with database.tenant_session(org) as session:
        scans = await _plan(session, query.statement, bound_organization=org)
    assert ("Seq Scan", "tickets") not in scans, scans
    assert any(relation == "tickets" for _, relation in scans)


def _filters(options: dict[str, Any], customer: uuid.UUID, agent: uuid.UUID) -> TicketFilters:
    """A FILTERS entry as filters, "agent" and "customer" standing for the seeded users."""
    values = {
        k: {"agent": agent, "customer": customer}.get(v, v) if isinstance(v, str) else v
        for k, v in options.items()
    }
    return TicketFilters(values.pop("statuses", []), values.pop("priorities", []), **values)


PREPARED_SHAPES = [
    *(f for f in FILTERS if f[0] != "search"),
    ("status-and-priority", {"statuses": ["open"], "priorities": ["high"]}),
    ("several-statuses", {"statuses": ["open", "pending"]}),
    ("several-priorities", {"priorities": ["low", "urgent"]}),
    ("several-statuses-and-tag", {"statuses": ["new", "open"], "tag": "hardware"}),
    ("department", {"department_id": uuid.UUID(int=7)}),
    ("created-range", {"created_after": datetime(2020, 1, 1, tzinfo=UTC)}),
    ("created-before", {"created_before": datetime(2020, 1, 1, tzinfo=UTC)}),
    ("no-sla-breach", {"sla_breach": False}),
    ("customer-own", {}),
    ("include-deleted", {}),
]


@pytest.mark.parametrize(("name", "options"), PREPARED_SHAPES, ids=[f[0] for f in PREPARED_SHAPES])
async def test_prepared_list_statements_use_indexes_in_their_generic_plan(
    database: Database,
    big_org: tuple[uuid.UUID, uuid.UUID, uuid.UUID],
    name: str,
    options: dict[str, Any],
) -> None:
    """The prepared shapes run with parameters, and PostgreSQL settles on a generic plan
    (made without the values) after a few executions: for every sort, first page and
    next, that plan must read tickets through an index too."""
    org, customer, agent = big_org
    if name == "customer-own":
        principal = Principal(PrincipalKind.USER, customer, org, Role.CUSTOMER)
    else:
        principal = Principal(PrincipalKind.USER, agent, org, Role.AGENT)
    prepared = tickets.prepared_tickets_query(
        principal,
        _filters(options, customer, agent),
        dialect="postgresql",
        include_deleted=name == "include-deleted",
    )
    assert prepared is not None
    query, params = prepared
    async with database.tenant_session(org) as session:
        for sort, sort_keys in SORT_KEYS.items():
            keys = tuple(sort_keys)
            for cursor in (None, (False, False)):
                page = _prepared_page(query, keys, cursor)
                seek = {}
                if cursor is not None:
                    first = keys[0].column.type.python_type
                    seek = {
                        "after_0": datetime.now(UTC) if first is datetime else 2,
                        "after_1": uuid.uuid4(),
                    }
                bound = {**params, **seek, "bound_organization": org, "page_limit": 51}
                scans = await _generic_plan(session, page.statement, bound)
                assert ("Seq Scan", "tickets") not in scans, (sort, cursor, scans)
                assert any(relation == "tickets" for _, relation in scans), (sort, scans)


async def _generic_plan(
    session: AsyncSession, statement: sa.Select[Any], bound: dict[str, Any]
) -> list[tuple[str, str]]:
    """`EXPLAIN EXECUTE` of the statement PREPAREd, under `force_generic_plan` (an
    EXPLAIN with bound values would plan for those values)."""
    compiled = compile_for_driver(statement, session.sync_session.get_bind().dialect)
    arguments = compiled.arguments(bound)
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    await driver.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    types = [parameter.name for parameter in (await driver.prepare(compiled.sql)).get_parameters()]
    name = f"shape_{uuid.uuid4().hex[:12]}"
    await driver.execute(f"PREPARE {name}({', '.join(types)}) AS {compiled.sql}")
    literals = ", ".join(_literal(argument) for argument in arguments)
    rows = await driver.fetch(f"EXPLAIN (FORMAT JSON) EXECUTE {name}({literals})")
    await driver.execute(f"DEALLOCATE {name}")
    plan = json.loads(rows[0][0]) if isinstance(rows[0][0], str) else rows[0][0]
    assert "$1" in json.dumps(plan), "not a generic plan"
    return _scans(plan)


def _literal(value: Any) -> str:
    if isinstance(value, list):  # an array parameter
        return "ARRAY[" + ", ".join(_literal(item) for item in value) + "]"
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text.replace("'", "''") + "'"


async def test_the_sla_breach_filter_reads_its_partial_index(
    database: Database, big_org: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    """`WHERE sla_breach` as the index states it (`sla_breach IS true` never used it)."""
    org, customer, agent = big_org
    principal = Principal(PrincipalKind.USER, agent, org, Role.AGENT)
    filters = _filters({"sla_breach": True}, customer, agent)
    literal = tickets.tickets_query(principal, filters, dialect="postgresql")
    prepared = tickets.prepared_tickets_query(principal, filters, dialect="postgresql")
    assert prepared is not None
    order = SORT_KEYS["-created_at"]
    async with database.tenant_session(org) as session:
        literal_scans = await _plan(
            session,
            literal.order_by(*(key.order_by() for key in order)).limit(51).statement,
            bound_organization=org,
        )
        generic_scans = await _generic_plan(
            session,
            _prepared_page(prepared[0], tuple(order), None).statement,
            {**prepared[1], "bound_organization": org, "page_limit": 51},
        )
    for scans in (literal_scans, generic_scans):
        assert any(name == "ix_tickets_sla_breach" for _, name in scans), scans


AGREEMENT = [f for f in PREPARED_SHAPES if f[0] not in {"customer-own", "include-deleted"}]


@pytest.mark.parametrize(("name", "options"), AGREEMENT, ids=[f[0] for f in AGREEMENT])
async def test_prepared_and_literal_lists_agree(
    database: Database,
    big_org: tuple[uuid.UUID, uuid.UUID, uuid.UUID],
    name: str,
    options: dict[str, Any],
) -> None:
    """The literal statement still serves SQLite and search: both paths give the same
    pages, cursors included — on rows where every filter tells some apart (a tenth of
    the tickets retagged and breached, inside a transaction rolled back at the end)."""
    org, customer, agent = big_org
    principal = Principal(PrincipalKind.USER, agent, org, Role.AGENT)
    filters = _filters(options, customer, agent)
    literal = tickets.tickets_query(principal, filters, dialect="postgresql")
    prepared = tickets.prepared_tickets_query(principal, filters, dialect="postgresql")
    assert prepared is not None
    unfiltered = tickets.tickets_query(
        principal, _filters({}, customer, agent), dialect="postgresql"
    )
    async with database.tenant_session(org) as session:
        await session.execute(
            sa.text(
                "UPDATE tickets SET tags = '[\"billing\"]', sla_breach = true "
                "WHERE organization_id = :org AND ticket_number LIKE '%3'"
            ),
            {"org": org},
        )
        for sort in ("-created_at", "priority"):
            pages: dict[str, list[list[Any]]] = {"literal": [], "prepared": []}
            for path, served in pages.items():
                cursor = None
                for _ in range(3):
                    page = PageParams(limit=40, cursor=cursor)
                    if path == "literal":
                        result = await paginate(session, literal, page, SORT_KEYS[sort])
                    else:
                        result = await paginate(
                            session, prepared[0], page, SORT_KEYS[sort], parameters=prepared[1]
                        )
                    served.append([row["id"] for row in result.rows])
                    cursor = result.next_cursor
                    if cursor is None:
                        break
            assert pages["literal"] == pages["prepared"], (name, sort)
            if name in DISCERNING and sort == "-created_at":
                everything = await paginate(
                    session, unfiltered, PageParams(limit=40, cursor=None), SORT_KEYS[sort]
                )
                assert pages["prepared"][0] != [row["id"] for row in everything.rows], name
        await session.rollback()


# Shapes whose newest-first page differs from the unfiltered one on the data above (the
# others match every row or none of them there).
DISCERNING = {
    "status",
    "priority",
    "channel",
    "assigned",
    "unassigned",
    "tag",
    "sla_breach",
    "no-sla-breach",
    "status-and-priority",
    "several-statuses",
    "several-priorities",
    "several-statuses-and-tag",
}


async def test_get_by_id_uses_the_primary_key(
    database: Database, big_org: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    org, _, agent = big_org
    principal = Principal(PrincipalKind.USER, agent, org, Role.AGENT)
    statement = tickets.ticket_rows(principal).where(tickets.Ticket.id == uuid.uuid4()).statement
    async with database.tenant_session(org) as session:
        scans = await _plan(session, statement, bound_organization=org)
    assert ("Seq Scan", "tickets") not in scans


async def test_search_reads_comments_through_their_gin_index(
    database: Database, big_org: tuple[uuid.UUID, uuid.UUID, uuid.UUID]
) -> None:
    """As the app role, under row-level security, at 100,000 comments: a selective word
    is found through the tenant-led GIN indexes, not by reading every comment."""
    org, _, agent = big_org
    principal = Principal(PrincipalKind.USER, agent, org, Role.AGENT)
    query = tickets.tickets_query(
        principal, TicketFilters([], [], q="zeppelin"), dialect="postgresql"
    ).limit(51)
    async with database.tenant_session(org) as session:
        scans = await _plan(session, query.statement, bound_organization=org)
        found = await fetch_all(session, query)
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
