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
from app.tickets.schemas import TicketRead

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


@router.get(
    "",
    response_model=Page[ChangeRead],
    summary="Every created, updated and deleted ticket, in commit order",
    description="Poll with the returned `next_cursor`: it is never null once an entry has "
    "been served, and an empty page means nothing new has settled yet.",
)
async def list_changes(_: Reader, session: SessionDep, page: PageParamsDep) -> Page[ChangeRead]:
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
