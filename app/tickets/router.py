"""/tickets, their comments and history."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
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
from app.sla.schemas import SLAEventRead
from app.tickets import service as tickets
from app.tickets.repository import Sort, TicketFilters
from app.tickets.schemas import (
    COMMENT_CREATE_EXAMPLES,
    TICKET_CREATE_EXAMPLES,
    TICKET_UPDATE_EXAMPLES,
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


@router.get("", response_model=Page[TicketRead], summary="List tickets")
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
    """The organization's tickets, newest first unless `sort` says otherwise.

    **Who:** every role (`tickets:read`); customers see their own tickets only.
    `include_deleted=true` adds soft-deleted tickets and is for admins (`deleted:read`),
    403 for others.

    **Filters** combine with AND; `status` and `priority` may repeat (any of them).
    `q` searches subject, description and comments (every word, as a prefix) and
    fragments of the subject; customers never match through internal notes.
    `unassigned=true` keeps tickets without an agent; `tag` matches one tag.

    **Paging** is keyset: pass `limit` (1 to 200, default 50) and the previous page's
    `next_cursor` as `cursor`, with the same `sort` and filters; `next_cursor` is null on
    the last page. A malformed cursor is a 422.
    """
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


@router.post("", response_model=TicketRead, status_code=201, summary="Open a ticket")
async def create_ticket(
    body: Annotated[TicketCreate, Body(openapi_examples=TICKET_CREATE_EXAMPLES)],
    principal: Creator,
    uow: UnitOfWorkDep,
    response: Response,
    request: Request,
    force_assignment: ForceAssignment = False,
    idempotency_key: IdempotencyKey = None,
) -> TicketRead:
    """Opens a ticket in status `new` with the organization's next number (`TK-000043`).

    **Who:** every role (`tickets:create`). A customer opens tickets for themselves only:
    they leave `customer_id` out (or send their own id) and may not set
    `assigned_agent_id` or `department_id` (403). Staff name the customer user in
    `customer_id` (422 without it).

    - `customer_id` must be a customer user, `assigned_agent_id` an agent, manager or admin
      and `department_id` a live department, all of this organization: 422 otherwise.
    - `custom_fields` are checked against the organization's ticket field definitions:
      422 listing each failing field (unknown, wrong type, required, already used by
      another ticket for a unique field).
    - An agent at their `max_concurrent_tickets` (tickets `new`, `open` or `pending`) takes
      no more: 409, unless a manager or admin passes `force_assignment=true` (403 for
      others).
    - Records a history row (`ticket`), a `created` change-feed entry and a
      `ticket.created` event.
    - The `ETag` header carries the version (`"1"`) for a later `If-Match`.
    - Send an `Idempotency-Key` header to make retries safe: the same key with the same
      request within 24 h returns the first response and creates nothing; with another
      request it is a 409.
    """
    forced = await _forced(uow.session, principal, force_assignment)  # a 403 before anything
    idempotency = await claim_idempotency(request, principal, uow.session, idempotency_key)
    ticket = await tickets.create_ticket(uow, principal, body, force_assignment=forced)
    created = _with_etag(response, TicketRead.model_validate(ticket))
    await idempotency.complete(201, created, {"ETag": response.headers["ETag"]})
    return created


@router.get("/{ticket_id}", response_model=TicketRead, summary="Get a ticket")
async def get_ticket(
    ticket_id: uuid.UUID, principal: Reader, uow: UnitOfWorkDep, response: Response
) -> TicketRead:
    """One ticket. The `ETag` header carries its version (`"4"`): send it back as
    `If-Match` to update or delete only that version.

    **Who:** every role (`tickets:read`); customers their own tickets only.

    **Errors:** 404 for another organization's ticket, another customer's, a soft-deleted
    or a missing one (all alike).
    """
    ticket = await tickets.get_ticket(uow.session, principal, ticket_id)
    return _with_etag(response, TicketRead.model_validate(ticket))


IfMatch = Annotated[str | None, Header(description='"<version>": 412 if stale.')]


@router.patch("/{ticket_id}", response_model=TicketRead, summary="Update a ticket")
async def update_ticket(
    ticket_id: uuid.UUID,
    body: Annotated[TicketUpdate, Body(openapi_examples=TICKET_UPDATE_EXAMPLES)],
    principal: Updater,
    uow: UnitOfWorkDep,
    response: Response,
    force_assignment: ForceAssignment = False,
    if_match: IfMatch = None,
) -> TicketRead:
    """Changes the fields sent and keeps the others. `null` is accepted only for
    `assigned_agent_id` and `department_id` (unassign); `tags` replaces the list;
    `custom_fields` merges into the stored values (a key sent as `null` is removed).

    **Who:** agents, managers and admins (`tickets:update`).

    **Status moves** (any other is a 409 naming the allowed ones):

    - `new` → `open`, `pending`, `resolved`, `cancelled`
    - `open` → `pending`, `resolved`, `cancelled`
    - `pending` → `open`, `resolved`, `cancelled`
    - `resolved` → `open` (reopen), `closed`
    - `closed`, `cancelled`: final

    Resolving sets `resolved_at` and `time_to_resolution`, reopening clears them, closing
    sets `closed_at`. A closed or cancelled ticket takes no further change: 409 (open a
    new ticket, which may refer to it).

    - `If-Match: "<version>"` makes the write conditional: 412 when the ticket is no longer
      at that version (reload and retry). Without it the last write wins.
    - References, agent capacity (409, `force_assignment`) and custom fields follow the
      rules of ticket creation (422 / 409 / 403).
    - Each changed field records a history row; the write adds an `updated` change-feed
      entry and one `ticket.updated` event listing the changes, and raises `version`.
      A request that changes nothing writes nothing.
    - 404 for another organization's ticket or a missing or soft-deleted one.
    """
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


@router.delete("/{ticket_id}", status_code=204, summary="Delete a ticket (soft)")
async def delete_ticket(
    ticket_id: uuid.UUID, principal: Deleter, uow: UnitOfWorkDep, if_match: IfMatch = None
) -> None:
    """Soft-deletes the ticket: it leaves lists and reads (404) but keeps its comments,
    files and history; `POST /tickets/{ticket_id}/restore` brings it back.

    **Who:** managers and admins (`tickets:delete`).

    - `If-Match: "<version>"`: 412 when the ticket has moved on.
    - Records a `deleted_at` history row, a `deleted` change-feed entry and a
      `ticket.deleted` event.
    - 404 for another organization's ticket or a missing or already deleted one.
    """
    await tickets.delete_ticket(
        uow, principal, ticket_id, expected_version=_expected_version(if_match)
    )


@router.post("/{ticket_id}/restore", response_model=TicketRead, summary="Restore a deleted ticket")
async def restore_ticket(
    ticket_id: uuid.UUID, principal: Deleter, uow: UnitOfWorkDep, response: Response
) -> TicketRead:
    """Undoes a soft delete and returns the ticket (with its `ETag`); a live ticket is
    returned unchanged.

    **Who:** managers and admins (`tickets:delete`).

    - 409 when a live ticket has meanwhile taken one of this ticket's values of a unique
      custom field: change that ticket's value first.
    - Records a `deleted_at` history row, an `updated` change-feed entry and a
      `ticket.updated` event.
    - 404 for another organization's ticket or a missing one.
    """
    ticket = await tickets.restore_ticket(uow, principal, ticket_id)
    return _with_etag(response, TicketRead.model_validate(ticket))


@router.get(
    "/{ticket_id}/comments",
    response_model=Page[CommentRead],
    summary="List a ticket's comments",
)
async def list_comments(
    ticket_id: uuid.UUID, principal: Reader, uow: UnitOfWorkDep, page: PageParamsDep
) -> Page[CommentRead]:
    """The ticket's thread, oldest first.

    **Who:** every role (`tickets:read`); customers on their own tickets only, and they
    see public comments only (internal notes are left out).

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.

    **Errors:** 404 for a ticket the caller cannot see (another organization's, another
    customer's), a missing or a soft-deleted one.
    """
    result = await tickets.list_comments(uow.session, principal, ticket_id, page)
    return Page.of(result, CommentRead.model_validate)


@router.post(
    "/{ticket_id}/comments",
    response_model=CommentRead,
    status_code=201,
    summary="Comment on a ticket",
)
async def add_comment(
    ticket_id: uuid.UUID,
    body: Annotated[CommentCreate, Body(openapi_examples=COMMENT_CREATE_EXAMPLES)],
    principal: Reader,
    uow: UnitOfWorkDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> CommentRead:
    """Adds a public reply or an internal note to the thread.

    **Who:** every role (`tickets:read`) on a ticket they can see; customers on their own
    tickets, public comments only. An `internal` note needs `comments:internal` (agents,
    managers, admins): 403 otherwise. A comment has a person as author: API keys get 403.

    - A closed or cancelled ticket takes no more comments: 409.
    - The first public reply by staff sets the ticket's `first_response_at` and
      `time_to_first_response`.
    - Records a history row (`comment`), an `updated` change-feed entry and a
      `ticket.comment_added` event.
    - Send an `Idempotency-Key` header to make retries safe: the same key with the same
      request within 24 h returns the first response and adds nothing; with another
      request it is a 409.
    - 404 for a ticket the caller cannot see, a missing or a soft-deleted one.
    """
    idempotency = await claim_idempotency(request, principal, uow.session, idempotency_key)
    internal_ok = await may(uow.session, principal, Permission.COMMENTS_INTERNAL)
    comment = await tickets.add_comment(
        uow, principal, ticket_id, body, may_write_internal=internal_ok
    )
    created = CommentRead.model_validate(comment)
    await idempotency.complete(201, created)
    return created


@router.get(
    "/{ticket_id}/history", response_model=Page[HistoryRead], summary="List a ticket's history"
)
async def list_history(
    ticket_id: uuid.UUID, principal: Auditor, uow: UnitOfWorkDep, page: PageParamsDep
) -> Page[HistoryRead]:
    """The audit trail, oldest first: one row per changed field (`old_value` →
    `new_value`, as text), plus a `ticket` row for the creation and `comment` and
    `attachment` rows. `user_id` is null for changes by the system or an API key.

    **Who:** agents, managers and admins (`tickets:history`).

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.

    **Errors:** 404 for another organization's ticket or a missing or soft-deleted one.
    """
    result = await tickets.list_history(uow.session, principal, ticket_id, page)
    return Page.of(result, HistoryRead.model_validate)


@router.get(
    "/{ticket_id}/sla-events",
    response_model=Page[SLAEventRead],
    summary="List a ticket's SLA clock events",
)
async def list_sla_events(
    ticket_id: uuid.UUID, principal: Auditor, uow: UnitOfWorkDep, page: PageParamsDep
) -> Page[SLAEventRead]:
    """The SLA clock's log, in the order it took effect: `start`, `pause`, `resume`,
    `fulfil` and `stop` per target (first response, next reply, resolution), and the
    timer's `breach` and `escalate`. Every due time on the ticket is the business time
    of the running spans these events make, on the policy's calendar — so this list
    explains each one, and a `recompute` marks where the measure changed.

    **Who:** agents, managers and admins (`tickets:history`).

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.

    **Errors:** 404 for another organization's ticket or a missing or soft-deleted one.
    """
    result = await tickets.list_sla_events(uow.session, principal, ticket_id, page)
    return Page.of(result, SLAEventRead.model_validate)
