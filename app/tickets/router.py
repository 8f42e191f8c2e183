"""/tickets, their comments and history."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.dependencies import (
    IdempotencyKey,
    IncludeDeletedDep,
    claim_idempotency,
    may,
    require,
)
from app.auth.permissions import Permission
from app.auth.principal import Principal
from app.db.dependencies import SessionDep
from app.db.session import dialect_name
from app.kit.errors import AppError, Forbidden
from app.kit.pagination import Page, PageParamsDep, SortKey, paginate
from app.kit.schemas import Instant
from app.models.ticket import Priority, Ticket, TicketChannel, TicketComment, TicketHistory
from app.models.ticket import TicketStatus as Status
from app.tickets import service as tickets
from app.tickets.schemas import (
    CommentCreate,
    CommentRead,
    HistoryRead,
    TicketCreate,
    TicketRead,
    TicketUpdate,
)

router = APIRouter(prefix="/tickets", tags=["tickets"])

Reader = Annotated[Principal, Depends(require(Permission.TICKETS_READ))]
Creator = Annotated[Principal, Depends(require(Permission.TICKETS_CREATE))]
Updater = Annotated[Principal, Depends(require(Permission.TICKETS_UPDATE))]
Deleter = Annotated[Principal, Depends(require(Permission.TICKETS_DELETE))]
Auditor = Annotated[Principal, Depends(require(Permission.TICKETS_HISTORY))]

Sort = Literal[
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
    "priority",
    "-priority",
    "resolution_due_at",
]
SORT_KEYS: dict[str, list[SortKey]] = {
    "created_at": [SortKey(Ticket.created_at), SortKey(Ticket.id)],
    "-created_at": [SortKey(Ticket.created_at, True), SortKey(Ticket.id, True)],
    "updated_at": [SortKey(Ticket.updated_at), SortKey(Ticket.id)],
    "-updated_at": [SortKey(Ticket.updated_at, True), SortKey(Ticket.id, True)],
    "priority": [SortKey(Ticket.priority_rank), SortKey(Ticket.id)],
    "-priority": [SortKey(Ticket.priority_rank, True), SortKey(Ticket.id, True)],
    "resolution_due_at": [SortKey(Ticket.resolution_due_at, nullable=True), SortKey(Ticket.id)],
}


ForceAssignment = Annotated[
    bool, Query(description="Assign past the agent's max_concurrent_tickets (managers).")
]


async def _forced(session: AsyncSession, principal: Principal, force_assignment: bool) -> bool:
    """A plain query parameter checked here rather than a dependency of its own (FastAPI
    would re-solve authentication and the session under it on every request)."""
    if force_assignment and not await may(session, principal, Permission.TICKETS_FORCE_ASSIGN):
        raise Forbidden("Only managers and admins may assign past an agent's limit.")
    return force_assignment


def _expected_version(if_match: str | None) -> int | None:
    """`If-Match: "7"` (or 7, W/"7"); `*` or no header: no precondition."""
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.strip().removeprefix("W/").strip('"')
    if not (tag.isascii() and tag.isdigit()):
        raise AppError('If-Match must be the ticket\'s version, e.g. "3".')
    return int(tag)


def _with_etag(response: Response, ticket: TicketRead) -> TicketRead:
    response.headers["ETag"] = f'"{ticket.version}"'
    return ticket


@router.get("", response_model=Page[TicketRead], summary="Tickets (customers: their own)")
async def list_tickets(
    principal: Reader,
    session: SessionDep,
    page: PageParamsDep,
    include_deleted: IncludeDeletedDep,
    status: Annotated[list[Status] | None, Query(description="Repeatable.")] = None,
    priority: Annotated[list[Priority] | None, Query(description="Repeatable.")] = None,
    channel: TicketChannel | None = None,
    assigned_agent_id: uuid.UUID | None = None,
    unassigned: bool = False,
    customer_id: uuid.UUID | None = None,
    department_id: uuid.UUID | None = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
    sla_breach: bool | None = None,
    created_after: Instant | None = None,
    created_before: Instant | None = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    sort: Sort = "-created_at",
) -> Page[TicketRead]:
    filters = tickets.TicketFilters(
        statuses=status or [],
        priorities=priority or [],
        channel=channel,
        assigned_agent_id=assigned_agent_id,
        unassigned=unassigned,
        customer_id=customer_id,
        department_id=department_id,
        tag=tag,
        sla_breach=sla_breach,
        created_after=created_after,
        created_before=created_before,
        q=q,
    )
    dialect = dialect_name(session)
    prepared = tickets.prepared_tickets_query(
        principal, filters, dialect=dialect, include_deleted=include_deleted
    )
    if prepared is not None:
        query, parameters = prepared
        result = await paginate(session, query, page, SORT_KEYS[sort], parameters=parameters)
    else:
        query = tickets.tickets_query(
            principal, filters, dialect=dialect, include_deleted=include_deleted
        )
        result = await paginate(session, query, page, SORT_KEYS[sort])
    return Page(
        items=[TicketRead.model_validate(t) for t in result.rows],
        next_cursor=result.next_cursor,
    )


@router.post("", response_model=TicketRead, status_code=201)
async def create_ticket(
    body: TicketCreate,
    principal: Creator,
    session: SessionDep,
    response: Response,
    request: Request,
    force_assignment: ForceAssignment = False,
    idempotency_key: IdempotencyKey = None,
) -> TicketRead:
    forced = await _forced(session, principal, force_assignment)  # a 403 before anything
    idempotency = await claim_idempotency(request, principal, session, idempotency_key)
    ticket = await tickets.create_ticket(session, principal, body, force_assignment=forced)
    created = _with_etag(response, TicketRead.model_validate(ticket))
    await idempotency.complete(201, created, {"ETag": response.headers["ETag"]})
    return created


@router.get("/{ticket_id}", response_model=TicketRead)
async def get_ticket(
    ticket_id: uuid.UUID, principal: Reader, session: SessionDep, response: Response
) -> TicketRead:
    ticket = await tickets.read_ticket(session, principal, ticket_id)
    return _with_etag(response, TicketRead.model_validate(ticket))


@router.patch("/{ticket_id}", response_model=TicketRead)
async def update_ticket(
    ticket_id: uuid.UUID,
    body: TicketUpdate,
    principal: Updater,
    session: SessionDep,
    response: Response,
    force_assignment: ForceAssignment = False,
    if_match: Annotated[str | None, Header(description='"<version>": 412 if stale.')] = None,
) -> TicketRead:
    forced = await _forced(session, principal, force_assignment)
    ticket = await tickets.update_ticket(
        session,
        principal,
        ticket_id,
        body,
        expected_version=_expected_version(if_match),
        force_assignment=forced,
    )
    return _with_etag(response, TicketRead.model_validate(ticket))


@router.delete("/{ticket_id}", status_code=204)
async def delete_ticket(ticket_id: uuid.UUID, principal: Deleter, session: SessionDep) -> None:
    await tickets.delete_ticket(session, principal, ticket_id)


@router.post("/{ticket_id}/restore", response_model=TicketRead)
async def restore_ticket(
    ticket_id: uuid.UUID, principal: Deleter, session: SessionDep, response: Response
) -> TicketRead:
    ticket = await tickets.restore_ticket(session, principal, ticket_id)
    return _with_etag(response, TicketRead.model_validate(ticket))


@router.get(
    "/{ticket_id}/comments",
    response_model=Page[CommentRead],
    summary="The thread, oldest first (customers: public comments only)",
)
async def list_comments(
    ticket_id: uuid.UUID, principal: Reader, session: SessionDep, page: PageParamsDep
) -> Page[CommentRead]:
    await tickets.get_ticket(session, principal, ticket_id)
    result = await paginate(
        session, tickets.comments_query(principal, ticket_id), page, [SortKey(TicketComment.id)]
    )
    return Page(
        items=[CommentRead.model_validate(c) for c in result.rows], next_cursor=result.next_cursor
    )


@router.post("/{ticket_id}/comments", response_model=CommentRead, status_code=201)
async def add_comment(
    ticket_id: uuid.UUID,
    body: CommentCreate,
    principal: Reader,
    session: SessionDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> CommentRead:
    idempotency = await claim_idempotency(request, principal, session, idempotency_key)
    internal_ok = await may(session, principal, Permission.COMMENTS_INTERNAL)
    comment = await tickets.add_comment(
        session, principal, ticket_id, body, may_write_internal=internal_ok
    )
    created = CommentRead.model_validate(comment)
    await idempotency.complete(201, created)
    return created


@router.get(
    "/{ticket_id}/history", response_model=Page[HistoryRead], summary="Every change, oldest first"
)
async def list_history(
    ticket_id: uuid.UUID, principal: Auditor, session: SessionDep, page: PageParamsDep
) -> Page[HistoryRead]:
    await tickets.get_ticket(session, principal, ticket_id)
    result = await paginate(
        session, tickets.history_query(ticket_id), page, [SortKey(TicketHistory.id)]
    )
    return Page(
        items=[HistoryRead.model_validate(h) for h in result.rows], next_cursor=result.next_cursor
    )
