"""/tickets, their comments and history."""

from __future__ import annotations

import uuid
from typing import Annotated

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
from app.db.dependencies import UnitOfWorkDep
from app.kit.errors import AppError, Forbidden
from app.kit.pagination import Page, PageParamsDep
from app.kit.schemas import Instant
from app.models.ticket import Priority, TicketChannel
from app.models.ticket import TicketStatus as Status
from app.tickets import service as tickets
from app.tickets.repository import Sort, TicketFilters
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
    uow: UnitOfWorkDep,
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
    filters = TicketFilters(
        statuses=status or (),
        priorities=priority or (),
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
    result = await tickets.list_tickets(
        uow.session, principal, filters, page, sort, include_deleted=include_deleted
    )
    return Page.of(result, TicketRead.model_validate)


@router.post("", response_model=TicketRead, status_code=201)
async def create_ticket(
    body: TicketCreate,
    principal: Creator,
    uow: UnitOfWorkDep,
    response: Response,
    request: Request,
    force_assignment: ForceAssignment = False,
    idempotency_key: IdempotencyKey = None,
) -> TicketRead:
    forced = await _forced(uow.session, principal, force_assignment)  # a 403 before anything
    idempotency = await claim_idempotency(request, principal, uow.session, idempotency_key)
    ticket = await tickets.create_ticket(uow, principal, body, force_assignment=forced)
    created = _with_etag(response, TicketRead.model_validate(ticket))
    await idempotency.complete(201, created, {"ETag": response.headers["ETag"]})
    return created


@router.get("/{ticket_id}", response_model=TicketRead)
async def get_ticket(
    ticket_id: uuid.UUID, principal: Reader, uow: UnitOfWorkDep, response: Response
) -> TicketRead:
    ticket = await tickets.get_ticket(uow.session, principal, ticket_id)
    return _with_etag(response, TicketRead.model_validate(ticket))


IfMatch = Annotated[str | None, Header(description='"<version>": 412 if stale.')]


@router.patch("/{ticket_id}", response_model=TicketRead)
async def update_ticket(
    ticket_id: uuid.UUID,
    body: TicketUpdate,
    principal: Updater,
    uow: UnitOfWorkDep,
    response: Response,
    force_assignment: ForceAssignment = False,
    if_match: IfMatch = None,
) -> TicketRead:
    forced = await _forced(uow.session, principal, force_assignment)
    ticket = await tickets.update_ticket(
        uow,
        principal,
        ticket_id,
        body,
        expected_version=_expected_version(if_match),
        force_assignment=forced,
    )
    return _with_etag(response, TicketRead.model_validate(ticket))


@router.delete("/{ticket_id}", status_code=204)
async def delete_ticket(
    ticket_id: uuid.UUID, principal: Deleter, uow: UnitOfWorkDep, if_match: IfMatch = None
) -> None:
    await tickets.delete_ticket(
        uow, principal, ticket_id, expected_version=_expected_version(if_match)
    )


@router.post("/{ticket_id}/restore", response_model=TicketRead)
async def restore_ticket(
    ticket_id: uuid.UUID, principal: Deleter, uow: UnitOfWorkDep, response: Response
) -> TicketRead:
    ticket = await tickets.restore_ticket(uow, principal, ticket_id)
    return _with_etag(response, TicketRead.model_validate(ticket))


@router.get(
    "/{ticket_id}/comments",
    response_model=Page[CommentRead],
    summary="The thread, oldest first (customers: public comments only)",
)
async def list_comments(
    ticket_id: uuid.UUID, principal: Reader, uow: UnitOfWorkDep, page: PageParamsDep
) -> Page[CommentRead]:
    result = await tickets.list_comments(uow.session, principal, ticket_id, page)
    return Page.of(result, CommentRead.model_validate)


@router.post("/{ticket_id}/comments", response_model=CommentRead, status_code=201)
async def add_comment(
    ticket_id: uuid.UUID,
    body: CommentCreate,
    principal: Reader,
    uow: UnitOfWorkDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> CommentRead:
    idempotency = await claim_idempotency(request, principal, uow.session, idempotency_key)
    internal_ok = await may(uow.session, principal, Permission.COMMENTS_INTERNAL)
    comment = await tickets.add_comment(
        uow, principal, ticket_id, body, may_write_internal=internal_ok
    )
    created = CommentRead.model_validate(comment)
    await idempotency.complete(201, created)
    return created


@router.get(
    "/{ticket_id}/history", response_model=Page[HistoryRead], summary="Every change, oldest first"
)
async def list_history(
    ticket_id: uuid.UUID, principal: Auditor, uow: UnitOfWorkDep, page: PageParamsDep
) -> Page[HistoryRead]:
    result = await tickets.list_history(uow.session, principal, ticket_id, page)
    return Page.of(result, HistoryRead.model_validate)
