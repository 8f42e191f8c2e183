"""The ceiling: a bare Starlette + asyncpg app issuing the SQL our endpoints issue (copied
from the product's statement log: tenant settings, the session check, the work, the
history/outbox/feed rows), with none of our framework. Same workers, same load; the
ratio product / ceiling is what our layers cost. Not part of the product.

Run: uvicorn bench.ceiling.app:app --workers N (env CEILING_DSN, CEILING_SECRET); the DSN
logs in as the app role, as the product's tenant connections do."""

from __future__ import annotations

import json
import os
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TICKET_COLUMNS = (
    "id, organization_id, ticket_number, subject, description, status, priority, "
    "priority_rank, channel, customer_id, assigned_agent_id, created_by_id, department_id, "
    "sla_policy_id, tags, custom_fields, sla_breach, sla_status, first_response_due_at, "
    "next_reply_due_at, resolution_due_at, first_response_at, resolved_at, closed_at, "
    "time_to_first_response, time_to_resolution, version, deleted_at, created_at, updated_at"
)
SET_TENANT = "SELECT set_config('app.organization_id', $1, true)"
SESSION_CHECK = """
SELECT users.role, users.is_superuser, users.last_active_at
FROM user_sessions JOIN users ON users.id = user_sessions.user_id
    AND users.organization_id = $1 AND users.deleted_at IS NULL
JOIN organizations ON organizations.id = user_sessions.organization_id
    AND organizations.id = $1 AND organizations.deleted_at IS NULL
WHERE user_sessions.organization_id = $1 AND user_sessions.id = $2
    AND user_sessions.user_id = $3 AND user_sessions.is_active
    AND user_sessions.expires_at > $4"""
LIST = f"""SELECT {TICKET_COLUMNS} FROM tickets
WHERE tickets.organization_id = $1 AND tickets.deleted_at IS NULL
ORDER BY created_at DESC, id DESC LIMIT $2"""
LIST_FILTERED = f"""SELECT {TICKET_COLUMNS} FROM tickets
WHERE organization_id = $1 AND deleted_at IS NULL AND status = $3 AND priority = $4
ORDER BY created_at DESC, id DESC LIMIT $2"""
SEARCH = f"""SELECT {TICKET_COLUMNS} FROM tickets
WHERE organization_id = $1 AND deleted_at IS NULL
  AND (search_document @@ to_tsquery(CAST($5 AS REGCONFIG), $2)
    OR subject ILIKE $3 ESCAPE '/'
    OR id IN (SELECT ticket_id FROM ticket_comments
              WHERE organization_id = $1
                AND search_document @@ to_tsquery(CAST($5 AS REGCONFIG), $2)))
ORDER BY created_at DESC, id DESC LIMIT $4"""
GET = (
    f"SELECT {TICKET_COLUMNS} FROM tickets "
    "WHERE organization_id = $1 AND deleted_at IS NULL AND id = $2"
)
GET_FOR_UPDATE = GET + " FOR UPDATE"
CUSTOMER_CHECK = (
    "SELECT id FROM users WHERE organization_id = $2 AND deleted_at IS NULL AND id = $1 "
    "AND role IN ('customer')"
)
FIELD_DEFINITIONS = (
    "SELECT id, entity_type, name, field_type, is_required, is_unique, choices, "
    "validation_rules FROM custom_fields WHERE organization_id = $1 AND deleted_at IS NULL "
    "AND entity_type = 'ticket' ORDER BY position, id"
)
NEXT_NUMBER = """INSERT INTO sequence_counters (id, organization_id, name, value)
VALUES ($1, $2, 'ticket', 1) ON CONFLICT (organization_id, name)
DO UPDATE SET value = sequence_counters.value + 1 RETURNING value"""
ACTIVE_POLICIES = (
    "SELECT id, conditions FROM sla_policies WHERE organization_id = $1 "
    "AND deleted_at IS NULL AND is_active ORDER BY position, id"
)
# The product takes the number inside the ticket's INSERT (one statement), and stamps the
# creation instant its SLA clocks start at (no policy matches in the bench: null SLA).
INSERT_NUMBERED_TICKET = f"""WITH ticket_counter AS ({NEXT_NUMBER})
INSERT INTO tickets (id, organization_id, ticket_number, subject, description, status,
    priority, channel, customer_id, assigned_agent_id, created_by_id, department_id, tags,
    custom_fields, sla_breach, version, created_at, sla_policy_id, first_response_due_at,
    next_reply_due_at, resolution_due_at, sla_status, sla_next_deadline)
VALUES ($3, $2, (SELECT 'TK-' || lpad(CAST(value AS TEXT),
        greatest(6, length(CAST(value AS TEXT))), '0') FROM ticket_counter),
    $4, '', 'new', 'medium', 'web', $5, NULL, $6, NULL, $7, '{{}}', false, 1, $8,
    NULL, NULL, NULL, NULL, NULL, NULL)
RETURNING {TICKET_COLUMNS}"""
# The bare create the contended-create p99 is compared with: name the tenant (row-level
# security), take the number, insert the row, commit — nothing else.
INSERT_TICKET = f"""INSERT INTO tickets (id, organization_id, ticket_number, subject, description,
    status, priority, channel, customer_id, created_by_id, tags, custom_fields, sla_breach, version)
VALUES ($1, $2, $3, $4, '', 'new', 'medium', 'web', $5, $6, $7, '{{}}', false, 1)
RETURNING {TICKET_COLUMNS}"""
# The history row, the change-feed row, the SLA clock events and the outbox event of one
# write: one statement.
SLA_EVENT = """journal_s{n} AS (INSERT INTO ticket_sla_events (id, organization_id, ticket_id,
    kind, target, cycle, at, at_percent, action, done_key, details)
    VALUES (${id}, $2, $3, ${kind}, ${target}, 0, ${at}, NULL, NULL, NULL, '{{}}')),"""


def journal_statement(sla_events: int) -> str:
    events = "\n".join(
        SLA_EVENT.format(n=n, id=13 + 4 * n, kind=14 + 4 * n, target=15 + 4 * n, at=16 + 4 * n)
        for n in range(sla_events)
    )
    return f"""WITH journal_0 AS (INSERT INTO ticket_history (id, organization_id, ticket_id,
    user_id, field, old_value, new_value) VALUES ($1, $2, $3, $4, $5, $6, $7)),
{events}
journal_1 AS (INSERT INTO ticket_changes (id, organization_id, ticket_id, change, xact_id)
    VALUES ($8, $2, $3, $9, CAST(CAST(pg_current_xact_id() AS TEXT) AS BIGINT)))
INSERT INTO outbox_events (id, organization_id, event_type, aggregate_type, aggregate_id,
    payload) VALUES ($10, $2, $11, 'ticket', $3, $12)"""


JOURNALS = {count: journal_statement(count) for count in range(3)}
INSERT_COMMENT = """INSERT INTO ticket_comments (id, organization_id, ticket_id, author_id, content,
    comment_type, has_attachments) VALUES ($1, $2, $3, $4, $5, $6, false)
RETURNING id, organization_id, ticket_id, author_id, content, comment_type, has_attachments,
    created_at, updated_at"""
UPDATE_STATUS = f"""UPDATE tickets SET status = $1, version = version + 1, updated_at = now()
WHERE organization_id = $4 AND id = $2 AND version = $3 RETURNING {TICKET_COLUMNS}"""


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _row(record: asyncpg.Record) -> dict[str, Any]:
    return {key: _plain(value) for key, value in record.items()}


@asynccontextmanager
async def lifespan(app: Starlette) -> Any:
    # No reset query on release: asyncpg's default (RESET ALL, UNLISTEN, …) is a round
    # trip per request that the product's pool does not make; the tenant setting is
    # transaction-local, so there is nothing to reset.
    app.state.pool = await asyncpg.create_pool(
        os.environ["CEILING_DSN"],
        min_size=2,
        max_size=int(os.environ.get("CEILING_POOL", "20")),
        reset=_nothing_to_reset,
    )
    yield
    await app.state.pool.close()


async def _nothing_to_reset(_conn: asyncpg.Connection) -> None:
    return None


class Unauthorized(Exception):
    pass


def _claims(request: Request) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    try:
        claims = jwt.decode(
            token, os.environ["CEILING_SECRET"], algorithms=["HS256"], issuer="helpdesk"
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized from exc
    return uuid.UUID(claims["org"]), uuid.UUID(claims["sid"]), uuid.UUID(claims["sub"])


async def _tenant(
    conn: asyncpg.Connection, org: uuid.UUID, sid: uuid.UUID, user: uuid.UUID
) -> None:
    await conn.execute(SET_TENANT, str(org))
    if await conn.fetchrow(SESSION_CHECK, org, sid, user, datetime.now(UTC)) is None:
        raise Unauthorized


async def tickets(request: Request) -> Response:
    org, sid, user = _claims(request)
    if request.method == "POST" and "bare" in request.query_params:
        return await _bare_create(request, org, user)
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        await _tenant(conn, org, sid, user)
        if request.method == "POST":
            return await _create(conn, org, user, await request.json())
        if "q" in request.query_params:
            q = request.query_params["q"]
            rows = await conn.fetch(SEARCH, org, f"{q}:*", f"%{q}%", 51, "simple")
        elif "status" in request.query_params:
            status, priority = request.query_params["status"], request.query_params["priority"]
            rows = await conn.fetch(LIST_FILTERED, org, 51, status, priority)
        else:
            rows = await conn.fetch(LIST, org, 51)
    return JSONResponse({"items": [_row(r) for r in rows[:50]], "next_cursor": None})


async def _create(
    conn: asyncpg.Connection, org: uuid.UUID, user: uuid.UUID, body: dict[str, Any]
) -> Response:
    customer = uuid.UUID(body["customer_id"])
    await conn.fetchval(CUSTOMER_CHECK, customer, org)
    await conn.fetch(FIELD_DEFINITIONS, org)
    await conn.fetch(ACTIVE_POLICIES, org)
    ticket_id = uuid.uuid4()
    tags = json.dumps(sorted(set(body.get("tags", []))))
    row = await conn.fetchrow(
        INSERT_NUMBERED_TICKET,
        uuid.uuid4(),
        org,
        ticket_id,
        body["subject"],
        customer,
        user,
        tags,
        datetime.now(UTC),
    )
    payload = json.dumps({"id": str(ticket_id), "ticket_number": row["ticket_number"]})
    await _journal(
        conn,
        org,
        ticket_id,
        user,
        ("ticket", None, row["ticket_number"]),
        "created",
        payload,
        sla_events=[("start", "first_response"), ("start", "resolution")],
    )
    return JSONResponse(_row(row), status_code=201)


async def _bare_create(request: Request, org: uuid.UUID, user: uuid.UUID) -> Response:
    body = await request.json()
    tags = json.dumps(sorted(set(body.get("tags", []))))
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        await conn.execute(SET_TENANT, str(org))  # what row-level security needs, no more
        number = await conn.fetchval(NEXT_NUMBER, uuid.uuid4(), org)
        row = await conn.fetchrow(
            INSERT_TICKET,
            uuid.uuid4(),
            org,
            f"TK-{number:06d}",
            body["subject"],
            uuid.UUID(body["customer_id"]),
            user,
            tags,
        )
    return JSONResponse(_row(row), status_code=201)


async def _journal(
    conn: asyncpg.Connection,
    org: uuid.UUID,
    ticket_id: uuid.UUID,
    user: uuid.UUID,
    history: tuple[str, str | None, str | None],
    change: str,
    payload: str,
    *,
    event: str | None = None,
    sla_events: list[tuple[str, str]] | None = None,
) -> None:
    field, old, new = history
    event = event or ("ticket.created" if change == "created" else "ticket.updated")
    now = datetime.now(UTC)
    clock = [v for kind, target in sla_events or [] for v in (uuid.uuid4(), kind, target, now)]
    await conn.execute(
        JOURNALS[len(sla_events or [])],
        uuid.uuid4(), org, ticket_id, user, field, old, new,
        uuid.uuid4(), change,
        uuid.uuid4(), event, payload,
        *clock,
    )  # fmt: skip


async def ticket(request: Request) -> Response:
    org, sid, user = _claims(request)
    ticket_id = uuid.UUID(request.path_params["ticket_id"])
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        await _tenant(conn, org, sid, user)
        if request.method == "GET":
            row = await conn.fetchrow(GET, org, ticket_id)
            return JSONResponse(_row(row), headers={"ETag": f'"{row["version"]}"'})
        status = (await request.json())["status"]
        current = await conn.fetchrow(GET_FOR_UPDATE, org, ticket_id)
        payload = json.dumps({"id": str(ticket_id), "changes": {"status": status}})
        row = await conn.fetchrow(UPDATE_STATUS, status, ticket_id, current["version"], org)
        clock = "pause" if status == "pending" else "resume"
        await _journal(
            conn,
            org,
            ticket_id,
            user,
            ("status", current["status"], status),
            "updated",
            payload,
            sla_events=[(clock, "resolution")],
        )
    return JSONResponse(_row(row), headers={"ETag": f'"{row["version"]}"'})


async def comments(request: Request) -> Response:
    org, sid, user = _claims(request)
    ticket_id = uuid.UUID(request.path_params["ticket_id"])
    body = await request.json()
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        await _tenant(conn, org, sid, user)
        await conn.fetchrow(GET_FOR_UPDATE, org, ticket_id)
        row = await conn.fetchrow(
            INSERT_COMMENT,
            uuid.uuid4(),
            org,
            ticket_id,
            user,
            body["content"],
            body["comment_type"],
        )
        payload = json.dumps({"id": str(ticket_id), "comment_id": str(row["id"])})
        await _journal(
            conn,
            org,
            ticket_id,
            user,
            ("comment", None, str(row["id"])),
            "updated",
            payload,
            event="ticket.comment_added",
        )
    return JSONResponse(_row(row), status_code=201)


async def unauthorized(_request: Request, _exc: Exception) -> Response:
    return JSONResponse({"detail": "unauthorized"}, status_code=401)


app = Starlette(
    routes=[
        Route("/api/v1/tickets", tickets, methods=["GET", "POST"]),
        Route("/api/v1/tickets/{ticket_id}", ticket, methods=["GET", "PATCH"]),
        Route("/api/v1/tickets/{ticket_id}/comments", comments, methods=["POST"]),
    ],
    lifespan=lifespan,
    exception_handlers={Unauthorized: unauthorized},
)
