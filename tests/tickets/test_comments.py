"""/tickets/{id}/comments: the response shape, who may write which kind, customer
visibility (internal notes never shown, not even through page sizes or cursors), the
first public staff reply, history rows and outbox events, validation, tenant isolation,
keyset pagination and deleted tickets — over HTTP, checked in PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.db.database import Database
from app.models.ticket import Ticket, TicketComment
from app.models.user import Role
from app.tickets.service import open_ticket
from tests.support.api import field_locs, pages, problem
from tests.support.identity import API, Actor, Tenant, add_user, sign_in
from tests.support.tickets import TICKETS, event_rows, history_rows

COMMENT_FIELDS = {
    "id",
    "ticket_id",
    "author_id",
    "content",
    "comment_type",
    "has_attachments",
    "created_at",
    "delivery",
}
STAFF = ("admin", "manager", "agent")
COMMENT_ADDED = "ticket.comment_added"


# --- helpers ------------------------------------------------------------------------


def comments_url(ticket_id: uuid.UUID | str) -> str:
    return f"{TICKETS}/{ticket_id}/comments"


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, f"{value!r} has no UTC offset"
    return parsed


async def make_ticket(
    database: Database,
    tenant: Tenant,
    *,
    customer_id: uuid.UUID | None = None,
    created_at: datetime | None = None,
) -> uuid.UUID:
    """A ticket of `tenant` for its customer (or `customer_id`), opened by its agent;
    `created_at` back-dates it, so response times are measurable."""
    async with database.tenant_session(tenant.org.id) as session:
        ticket = await open_ticket(
            database.unit_of_work(session),
            subject=f"Printer on fire {uuid.uuid4().hex[:6]}",
            customer_id=customer_id or tenant["customer"].user_id,
            created_by_id=tenant["agent"].user_id,
        )
        await session.commit()
        ticket_id = ticket["id"]
    if created_at is not None:
        async with database.tenant_session(tenant.org.id) as session:
            await session.execute(
                sa.update(Ticket).where(Ticket.id == ticket_id).values(created_at=created_at)
            )
            await session.commit()
    return ticket_id


async def ticket_row(database: Database, tenant: Tenant, ticket_id: uuid.UUID) -> Ticket:
    async with database.tenant_session(tenant.org.id) as session:
        ticket = await session.scalar(
            sa.select(Ticket).where(Ticket.id == ticket_id).execution_options(include_deleted=True)
        )
    assert ticket is not None
    return ticket


async def comment_rows(
    database: Database, tenant: Tenant, ticket_id: uuid.UUID
) -> list[TicketComment]:
    async with database.tenant_session(tenant.org.id) as session:
        rows = await session.scalars(
            sa.select(TicketComment)
            .where(TicketComment.ticket_id == ticket_id)
            .order_by(TicketComment.id)
        )
        return list(rows)


@dataclass(frozen=True)
class Snapshot:
    ticket: dict[str, Any]
    comments: list[uuid.UUID]
    history: list[uuid.UUID]
    events: list[uuid.UUID]


async def snapshot(database: Database, tenant: Tenant, ticket_id: uuid.UUID) -> Snapshot:
    """What a refused request must leave exactly as it was."""
    ticket = await ticket_row(database, tenant, ticket_id)
    columns = sa.inspect(ticket).mapper.column_attrs
    return Snapshot(
        ticket={attr.key: getattr(ticket, attr.key) for attr in columns},
        comments=[c.id for c in await comment_rows(database, tenant, ticket_id)],
        history=[h.id for h in await history_rows(database, tenant, ticket_id)],
        events=[e.id for e in await event_rows(database, tenant, ticket_id)],
    )


async def post_comment(
    client: httpx.AsyncClient, actor: Actor, ticket_id: uuid.UUID, **body: Any
) -> httpx.Response:
    body.setdefault("content", f"Comment {uuid.uuid4().hex[:8]}")
    return await client.post(comments_url(ticket_id), json=body, headers=actor.headers)


async def comment(
    client: httpx.AsyncClient, actor: Actor, ticket_id: uuid.UUID, **body: Any
) -> dict[str, Any]:
    response = await post_comment(client, actor, ticket_id, **body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def get_ticket(client: httpx.AsyncClient, actor: Actor, ticket_id: uuid.UUID) -> Any:
    response = await client.get(f"{TICKETS}/{ticket_id}", headers=actor.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def walk(
    client: httpx.AsyncClient, actor: Actor, ticket_id: uuid.UUID, limit: int
) -> list[list[dict[str, Any]]]:
    """Every page of the thread."""
    return await pages(client, comments_url(ticket_id), actor.headers, limit)


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


# --- the created comment --------------------------------------------------------------


@pytest.mark.parametrize("role", [*STAFF, "customer"])
async def test_post_returns_exactly_the_contract_fields(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, role: str
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    actor = tenant_a[role]
    before = datetime.now(UTC)

    response = await client.post(
        comments_url(ticket_id), json={"content": "It is still on fire."}, headers=actor.headers
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body.keys() == COMMENT_FIELDS
    assert body["ticket_id"] == str(ticket_id)
    assert body["author_id"] == str(actor.user_id)
    assert body["content"] == "It is still on fire."
    assert body["comment_type"] == "public"  # the default
    assert body["has_attachments"] is False
    assert body["delivery"] is None  # a web ticket's comments go nowhere
    uuid.UUID(body["id"])
    assert parse_time(body["created_at"]) >= before - timedelta(seconds=5)

    [row] = await comment_rows(database, tenant_a, ticket_id)
    assert str(row.id) == body["id"]
    assert row.author_id == actor.user_id
    assert row.organization_id == tenant_a.org.id
    assert (row.content, row.comment_type.value, row.has_attachments) == (
        "It is still on fire.",
        "public",
        False,
    )


@pytest.mark.parametrize("role", STAFF)
@pytest.mark.parametrize("comment_type", ["public", "internal"])
async def test_staff_write_public_and_internal_comments(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, role: str, comment_type: str
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    actor = tenant_a[role]

    body = await comment(client, actor, ticket_id, content="Looking.", comment_type=comment_type)

    assert body["comment_type"] == comment_type
    assert body["author_id"] == str(actor.user_id)
    listed = (await client.get(comments_url(ticket_id), headers=actor.headers)).json()
    assert listed == {"items": [body], "next_cursor": None}


# --- customers --------------------------------------------------------------------------


async def test_customer_comments_publicly_on_own_ticket(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    customer = tenant_a["customer"]

    body = await comment(client, customer, ticket_id, content="Any news?", comment_type="public")

    assert body["author_id"] == str(customer.user_id)
    assert body["comment_type"] == "public"
    listed = (await client.get(comments_url(ticket_id), headers=customer.headers)).json()
    assert listed == {"items": [body], "next_cursor": None}


async def test_customer_cannot_write_internal_note(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    before = await snapshot(database, tenant_a, ticket_id)

    response = await post_comment(
        client, tenant_a["customer"], ticket_id, content="psst", comment_type="internal"
    )

    problem(response, 403)
    assert await snapshot(database, tenant_a, ticket_id) == before


@pytest.mark.parametrize("comment_type", ["public", "internal"])
async def test_customer_cannot_reach_another_customers_ticket(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, comment_type: str
) -> None:
    other = await add_user(
        database, tenant_a.org, Role.CUSTOMER, customer_id=tenant_a.customer_account_id
    )
    ticket_id = await make_ticket(database, tenant_a, customer_id=other.id)
    await comment(client, tenant_a["agent"], ticket_id, content="Hello other customer.")
    before = await snapshot(database, tenant_a, ticket_id)
    customer = tenant_a["customer"]
    missing = problem(await post_comment(client, customer, uuid.uuid4()), 404)

    posted = await post_comment(client, customer, ticket_id, comment_type=comment_type)
    listed = await client.get(comments_url(ticket_id), headers=customer.headers)

    # Not a 403: the ticket's existence is not revealed, even for an internal note.
    assert problem(posted, 404) == missing
    assert problem(listed, 404) == missing
    assert await snapshot(database, tenant_a, ticket_id) == before


async def test_customer_never_sees_internal_comments_not_even_through_paging(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    agent, manager, customer = tenant_a["agent"], tenant_a["manager"], tenant_a["customer"]
    thread = [
        await comment(client, agent, ticket_id, comment_type="internal"),
        await comment(client, customer, ticket_id),
        await comment(client, agent, ticket_id, comment_type="internal"),
        await comment(client, manager, ticket_id, comment_type="internal"),
        await comment(client, agent, ticket_id),
        await comment(client, customer, ticket_id),
        await comment(client, manager, ticket_id, comment_type="internal"),
        await comment(client, agent, ticket_id, comment_type="internal"),
    ]
    public = [c for c in thread if c["comment_type"] == "public"]

    listed = (await client.get(comments_url(ticket_id), headers=customer.headers)).json()
    assert listed == {"items": public, "next_cursor": None}
    assert (await client.get(comments_url(ticket_id), headers=agent.headers)).json() == {
        "items": thread,
        "next_cursor": None,
    }

    # One comment a page: every page holds one public comment, the last one says so.
    pages = await walk(client, customer, ticket_id, limit=1)
    assert pages == [[c] for c in public]

    # A page as large as the public part is complete: no cursor into the internal tail.
    exact = await client.get(
        comments_url(ticket_id), params={"limit": len(public)}, headers=customer.headers
    )
    assert exact.json() == {"items": public, "next_cursor": None}


async def test_customer_sees_an_empty_thread_when_all_comments_are_internal(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    for _ in range(3):
        await comment(client, tenant_a["agent"], ticket_id, comment_type="internal")

    for limit in (1, 2, 50):
        response = await client.get(
            comments_url(ticket_id), params={"limit": limit}, headers=tenant_a["customer"].headers
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"items": [], "next_cursor": None}


# --- API keys ---------------------------------------------------------------------------


@pytest.mark.parametrize("comment_type", ["public", "internal"])
async def test_api_keys_cannot_write_comments(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, comment_type: str
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    before = await snapshot(database, tenant_a, ticket_id)

    response = await post_comment(client, tenant_a["api_key"], ticket_id, comment_type=comment_type)

    problem(response, 403)
    assert await snapshot(database, tenant_a, ticket_id) == before


# --- first response ------------------------------------------------------------------


@pytest.mark.parametrize("role", STAFF)
async def test_first_public_staff_reply_sets_first_response(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, role: str
) -> None:
    created_at = datetime.now(UTC) - timedelta(hours=2)
    ticket_id = await make_ticket(database, tenant_a, created_at=created_at)
    admin = tenant_a["admin"]
    before = await get_ticket(client, admin, ticket_id)
    assert before["first_response_at"] is None
    assert before["time_to_first_response"] is None
    sent_at = datetime.now(UTC)

    await comment(client, tenant_a[role], ticket_id, content="On it.")

    after = await get_ticket(client, admin, ticket_id)
    answered = parse_time(after["first_response_at"])
    assert sent_at - timedelta(seconds=5) <= answered <= datetime.now(UTC) + timedelta(seconds=5)
    seconds = after["time_to_first_response"]
    assert isinstance(seconds, int)
    assert seconds >= 0
    assert seconds == int((answered - parse_time(after["created_at"])).total_seconds())
    assert 2 * 3600 - 5 <= seconds <= 2 * 3600 + 60
    assert after["version"] == before["version"] + 1


@pytest.mark.parametrize(
    ("role", "comment_type"),
    [("customer", "public"), *((role, "internal") for role in STAFF)],
)
async def test_customer_comments_and_internal_notes_are_not_a_first_response(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, role: str, comment_type: str
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    admin = tenant_a["admin"]
    before = await get_ticket(client, admin, ticket_id)

    await comment(client, tenant_a[role], ticket_id, comment_type=comment_type)

    after = await get_ticket(client, admin, ticket_id)
    assert after["first_response_at"] is None
    assert after["time_to_first_response"] is None
    assert after["version"] == before["version"]


async def test_later_public_replies_do_not_move_the_first_response(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    admin = tenant_a["admin"]
    await comment(client, tenant_a["agent"], ticket_id, comment_type="internal")
    await comment(client, tenant_a["customer"], ticket_id)
    await comment(client, tenant_a["agent"], ticket_id)
    first = await get_ticket(client, admin, ticket_id)
    assert first["first_response_at"] is not None
    assert first["version"] == 2

    await comment(client, tenant_a["manager"], ticket_id)
    await comment(client, tenant_a["customer"], ticket_id)
    await comment(client, tenant_a["admin"], ticket_id, comment_type="internal")

    later = await get_ticket(client, admin, ticket_id)
    for field in ("first_response_at", "time_to_first_response", "version"):
        assert later[field] == first[field], field
    history = await history_rows(database, tenant_a, ticket_id)
    assert [h.field for h in history].count("first_response_at") == 1


async def test_concurrent_first_replies_set_the_first_response_once(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    staff = [tenant_a[role] for role in STAFF] * 2

    responses = await asyncio.gather(*(post_comment(client, actor, ticket_id) for actor in staff))

    assert [r.status_code for r in responses] == [201] * len(staff)
    ticket = await ticket_row(database, tenant_a, ticket_id)
    assert ticket.first_response_at is not None
    assert ticket.version == 2
    history = await history_rows(database, tenant_a, ticket_id)
    assert [h.field for h in history].count("first_response_at") == 1
    assert [h.field for h in history].count("time_to_first_response") == 1
    assert [h.field for h in history].count("comment") == len(staff)


# --- history and outbox ----------------------------------------------------------------


async def test_each_comment_writes_one_history_row_and_the_first_response_two_more(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    agent, customer, manager = tenant_a["agent"], tenant_a["customer"], tenant_a["manager"]
    note = await comment(client, agent, ticket_id, comment_type="internal")
    question = await comment(client, customer, ticket_id)
    answer = await comment(client, agent, ticket_id)
    follow_up = await comment(client, manager, ticket_id)
    ticket = await ticket_row(database, tenant_a, ticket_id)
    assert ticket.first_response_at is not None
    assert ticket.time_to_first_response is not None

    history = await history_rows(database, tenant_a, ticket_id)

    assert [(h.field, h.old_value, h.new_value, h.user_id) for h in history] == [
        ("comment", None, note["id"], agent.user_id),
        ("comment", None, question["id"], customer.user_id),
        ("comment", None, answer["id"], agent.user_id),
        ("first_response_at", None, ticket.first_response_at.isoformat(), agent.user_id),
        ("time_to_first_response", None, str(ticket.time_to_first_response), agent.user_id),
        ("comment", None, follow_up["id"], manager.user_id),
    ]
    # The audit trail over HTTP says the same, oldest first.
    response = await client.get(f"{TICKETS}/{ticket_id}/history", headers=manager.headers)
    assert response.status_code == 200, response.text
    listed = [
        (h["field"], h["old_value"], h["new_value"], h["user_id"]) for h in response.json()["items"]
    ]
    assert listed[1:] == [(h.field, h.old_value, h.new_value, str(h.user_id)) for h in history]


async def test_each_comment_writes_one_comment_added_event(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    written = [
        await comment(client, tenant_a["agent"], ticket_id, comment_type="internal"),
        await comment(client, tenant_a["customer"], ticket_id),
        await comment(client, tenant_a["agent"], ticket_id),  # the first response
        await comment(client, tenant_a["admin"], ticket_id),
    ]

    events = await event_rows(database, tenant_a, ticket_id, COMMENT_ADDED)

    assert len(events) == len(written)
    for event, body in zip(events, written, strict=True):
        assert event.aggregate_type == "ticket"
        assert event.organization_id == tenant_a.org.id
        assert event.payload["id"] == str(ticket_id)
        assert event.payload["comment_id"] == body["id"]
        assert event.payload["comment_type"] == body["comment_type"]


# --- search over comments ---------------------------------------------------------------


async def search(client: httpx.AsyncClient, actor: Actor, q: str) -> list[str]:
    response = await client.get(TICKETS, params={"q": q}, headers=actor.headers)
    assert response.status_code == 200, response.text
    return ids(response.json()["items"])


async def test_customer_search_never_matches_internal_notes(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    secret = f"escalatelegal{uuid.uuid4().hex[:8]}"
    for content in (f"Note {secret}", f"Legal says {secret}"):
        await comment(
            client, tenant_a["agent"], ticket_id, content=content, comment_type="internal"
        )
    await comment(client, tenant_a["customer"], ticket_id, content="Any news?")

    assert await search(client, tenant_a["customer"], secret) == []


async def test_search_matches_comment_text(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    word = f"flamingo{uuid.uuid4().hex[:8]}"
    await comment(client, tenant_a["customer"], ticket_id, content=f"The {word} is broken.")

    assert await search(client, tenant_a["agent"], word) == [str(ticket_id)]
    assert await search(client, tenant_a["customer"], word) == [str(ticket_id)]


# --- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"content": ""}, "content", id="empty"),
        pytest.param({"content": "   \n\t "}, "content", id="blank"),
        pytest.param({}, "content", id="missing"),
        pytest.param({"content": None}, "content", id="null"),
        pytest.param({"content": 42}, "content", id="not-text"),
        pytest.param({"content": "x" * 100_001}, "content", id="too-long"),
        pytest.param({"content": "nul \x00 byte"}, "content", id="nul"),
        pytest.param({"content": "hi", "comment_type": "secret"}, "comment_type", id="secret"),
        pytest.param({"content": "hi", "comment_type": None}, "comment_type", id="null-type"),
        pytest.param({"content": "hi", "author_id": "AUTHOR"}, "author_id", id="author_id"),
        pytest.param({"content": "hi", "ticket_id": "TICKET"}, "ticket_id", id="ticket_id"),
        pytest.param({"content": "hi", "has_attachments": True}, "has_attachments", id="flag"),
        pytest.param({"content": "hi", "organization_id": "ORG"}, "organization_id", id="org"),
    ],
)
async def test_invalid_bodies_are_422_and_write_nothing(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    tenant_b: Tenant,
    body: dict[str, Any],
    field: str,
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    other_ticket = await make_ticket(database, tenant_a)
    substitutes = {
        "AUTHOR": str(tenant_a["customer"].user_id),
        "TICKET": str(other_ticket),
        "ORG": str(tenant_b.org.id),
    }
    body = {k: substitutes.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    before = await snapshot(database, tenant_a, ticket_id)
    other_before = await snapshot(database, tenant_a, other_ticket)

    response = await client.post(
        comments_url(ticket_id), json=body, headers=tenant_a["agent"].headers
    )

    assert ["body", field] in field_locs(problem(response, 422))
    assert await snapshot(database, tenant_a, ticket_id) == before
    assert await snapshot(database, tenant_a, other_ticket) == other_before


async def test_content_of_exactly_the_limit_is_accepted(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    content = "x" * 100_000

    body = await comment(client, tenant_a["agent"], ticket_id, content=content)

    assert body["content"] == content
    [row] = await comment_rows(database, tenant_a, ticket_id)
    assert row.content == content


# --- tenant isolation -----------------------------------------------------------------


@pytest.mark.parametrize("role", [*STAFF, "customer", "api_key"])
async def test_another_organizations_ticket_is_not_found(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant, role: str
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    await comment(client, tenant_a["agent"], ticket_id, content="Tenant A only.")
    before = await snapshot(database, tenant_a, ticket_id)
    outsider = tenant_b[role]
    missing = problem(await client.get(comments_url(uuid.uuid4()), headers=outsider.headers), 404)

    listed = await client.get(comments_url(ticket_id), headers=outsider.headers)

    assert problem(listed, 404) == missing
    if role != "api_key":  # keys are refused before any lookup (403, tested above)
        missing_post = problem(await post_comment(client, outsider, uuid.uuid4()), 404)
        for comment_type in ("public", "internal"):
            posted = await post_comment(client, outsider, ticket_id, comment_type=comment_type)
            assert problem(posted, 404) == missing_post
    assert await snapshot(database, tenant_a, ticket_id) == before


# --- listing and pagination -------------------------------------------------------------


async def test_comments_are_listed_oldest_first(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    authors = ["customer", "agent", "customer", "manager", "admin"]
    written = [
        await comment(client, tenant_a[role], ticket_id, content=f"#{i}")
        for i, role in enumerate(authors)
    ]

    listed = (await client.get(comments_url(ticket_id), headers=tenant_a["agent"].headers)).json()

    assert listed == {"items": written, "next_cursor": None}
    assert [item["content"] for item in listed["items"]] == [f"#{i}" for i in range(5)]
    stamps = [parse_time(item["created_at"]) for item in listed["items"]]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize(("count", "sizes"), [(5, [2, 2, 1]), (4, [2, 2]), (0, [0])])
async def test_keyset_walk_returns_every_comment_once(
    client: httpx.AsyncClient,
    database: Database,
    tenant_a: Tenant,
    count: int,
    sizes: list[int],
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    other_ticket = await make_ticket(database, tenant_a)
    written = []
    for i in range(count):
        written.append(await comment(client, tenant_a["agent"], ticket_id, content=f"#{i}"))
        await comment(client, tenant_a["agent"], other_ticket, content=f"elsewhere #{i}")

    pages = await walk(client, tenant_a["agent"], ticket_id, limit=2)

    assert [len(page) for page in pages] == sizes
    walked = [item for page in pages for item in page]
    assert ids(walked) == ids(written)
    assert len(set(ids(walked))) == count


async def test_walk_is_stable_while_comments_are_added(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    agent = tenant_a["agent"]
    written = [await comment(client, agent, ticket_id) for _ in range(3)]

    first = (
        await client.get(comments_url(ticket_id), params={"limit": 2}, headers=agent.headers)
    ).json()
    written.append(await comment(client, agent, ticket_id))
    rest = (
        await client.get(
            comments_url(ticket_id),
            params={"limit": 2, "cursor": first["next_cursor"]},
            headers=agent.headers,
        )
    ).json()

    assert ids(first["items"]) + ids(rest["items"]) == ids(written)
    assert rest["next_cursor"] is None


@pytest.mark.parametrize("limit", [0, 201, -1])
async def test_page_size_out_of_range_is_422(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, limit: int
) -> None:
    ticket_id = await make_ticket(database, tenant_a)

    response = await client.get(
        comments_url(ticket_id), params={"limit": limit}, headers=tenant_a["agent"].headers
    )

    assert ["query", "limit"] in field_locs(problem(response, 422))


async def test_invalid_cursor_is_422(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)

    response = await client.get(
        comments_url(ticket_id),
        params={"cursor": "not-a-cursor"},
        headers=tenant_a["agent"].headers,
    )

    assert ["query", "cursor"] in field_locs(problem(response, 422))


# --- deleted and missing tickets -----------------------------------------------------------


@pytest.mark.parametrize("role", [*STAFF, "customer"])
async def test_deleted_ticket_has_no_comments_endpoints(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, role: str
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    await comment(client, tenant_a["agent"], ticket_id)
    deleted = await client.delete(f"{TICKETS}/{ticket_id}", headers=tenant_a["admin"].headers)
    assert deleted.status_code == 204, deleted.text
    before = await snapshot(database, tenant_a, ticket_id)
    assert before.ticket["deleted_at"] is not None
    actor = tenant_a[role]
    missing = problem(await client.get(comments_url(uuid.uuid4()), headers=actor.headers), 404)

    listed = await client.get(comments_url(ticket_id), headers=actor.headers)
    posted = await post_comment(client, actor, ticket_id)

    assert problem(listed, 404) == missing
    assert problem(posted, 404) == missing
    assert await snapshot(database, tenant_a, ticket_id) == before


async def test_comments_come_back_with_a_restored_ticket(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    admin = tenant_a["admin"]
    written = await comment(client, tenant_a["agent"], ticket_id)
    assert (await client.delete(f"{TICKETS}/{ticket_id}", headers=admin.headers)).status_code == 204

    restored = await client.post(f"{TICKETS}/{ticket_id}/restore", headers=admin.headers)

    assert restored.status_code == 200, restored.text
    listed = (await client.get(comments_url(ticket_id), headers=admin.headers)).json()
    assert listed == {"items": [written], "next_cursor": None}


@pytest.mark.parametrize("role", [*STAFF, "customer"])
async def test_unknown_ticket_is_404(
    client: httpx.AsyncClient, tenant_a: Tenant, role: str
) -> None:
    actor = tenant_a[role]
    unknown = uuid.uuid4()

    problem(await client.get(comments_url(unknown), headers=actor.headers), 404)
    problem(await post_comment(client, actor, unknown), 404)


async def test_comments_need_credentials(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    before = await snapshot(database, tenant_a, ticket_id)

    problem(await client.get(comments_url(ticket_id)), 401)
    problem(await client.post(comments_url(ticket_id), json={"content": "anon"}), 401)

    assert await snapshot(database, tenant_a, ticket_id) == before


async def test_a_removed_author_cannot_comment_any_more(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    ticket_id = await make_ticket(database, tenant_a)
    leaver = await add_user(database, tenant_a.org, Role.AGENT)
    actor = await sign_in(database, "leaver", leaver)
    await comment(client, actor, ticket_id)
    removed = await client.delete(f"{API}/users/{leaver.id}", headers=tenant_a["admin"].headers)
    assert removed.status_code == 204, removed.text
    before = await snapshot(database, tenant_a, ticket_id)

    problem(await post_comment(client, actor, ticket_id), 401)

    assert await snapshot(database, tenant_a, ticket_id) == before
    # The thread keeps what they wrote.
    listed = (await client.get(comments_url(ticket_id), headers=tenant_a["admin"].headers)).json()
    assert len(listed["items"]) == 1
