"""/changes: the ticket change feed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import Field

from app.auth.dependencies import require
from app.auth.permissions import Permission
from app.auth.principal import Principal
from app.changes import service as changes
from app.db.dependencies import SessionDep
from app.kit.pagination import Page, PageParamsDep
from app.kit.schemas import ReadModel
from app.models.ticket import ChangeKind
from app.tickets.schemas import TICKET_EXAMPLE, TicketRead

router = APIRouter(prefix="/changes", tags=["changes"])

Reader = Annotated[Principal, Depends(require(Permission.CHANGES_READ))]


class ChangeRead(ReadModel):
    id: uuid.UUID
    ticket_id: uuid.UUID
    change: ChangeKind
    changed_at: datetime
    ticket: TicketRead | None = Field(
        description="The ticket as it is now; null once deleted (a tombstone)."
    )


_FEED_PAGE_EXAMPLE = {
    "items": [
        {
            "id": "0191b0f4-2e6a-7c1d-9b3f-5a7c9e1b3d5f",
            "ticket_id": TICKET_EXAMPLE["id"],
            "change": "updated",
            "changed_at": "2025-03-04T09:02:10Z",
            "ticket": TICKET_EXAMPLE,
        }
    ],
    "next_cursor": "WyIwMTkxYjBmNC0yZTZhLTdjMWQtOWIzZi01YTdjOWUxYjNkNWYiXQ",
}


@router.get(
    "",
    response_model=Page[ChangeRead],
    summary="Poll the ticket change feed",
    responses={200: {"content": {"application/json": {"example": _FEED_PAGE_EXAMPLE}}}},
)
async def list_changes(_: Reader, session: SessionDep, page: PageParamsDep) -> Page[ChangeRead]:
    """Every write to a ticket of the organization, in commit order: `created`,
    `updated` (comments and files count) and `deleted`, each with the ticket as it is
    now. `ticket` is null once the ticket is deleted (a tombstone); several entries may
    name one ticket, apply them in order.

    **Who:** agents, managers and admins (`changes:read`).

    **Polling:** start without `cursor`, then always pass the last `next_cursor` (and a
    `limit` of 1 to 200, default 50). Unlike lists, the feed never ends: `next_cursor` is
    never null once an entry has been served, and an empty page means nothing new has
    settled yet, so poll again later with the same cursor. An entry appears once every
    older transaction has ended, so a late commit is never skipped. A malformed cursor,
    or one naming no change of this organization, is a 422.
    """
    feed = await changes.feed_page(session, page)
    items = [
        ChangeRead(
            id=change.id,
            ticket_id=change.ticket_id,
            change=change.change,
            changed_at=change.created_at,
            ticket=TicketRead.model_validate(feed.tickets[change.ticket_id])
            if change.ticket_id in feed.tickets
            else None,
        )
        for change in feed.changes
    ]
    return Page(items=items, next_cursor=feed.next_cursor)
