"""The ticket change feed (`GET /changes`): every created, updated and deleted ticket of
the organization, in commit order, for integrations that sync instead of polling lists.
The ordering rule is the repository's (`app.changes.repository`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.changes.repository import CURSOR_KEYS, ChangeRepository
from app.kit.errors import ValidationFailed
from app.kit.pagination import PageParams, cursor_after, decode_cursor
from app.kit.records import field_error
from app.kit.repository import Record
from app.models.ticket import TicketChange


@dataclass(frozen=True, slots=True)
class FeedPage:
    changes: list[TicketChange]
    tickets: dict[uuid.UUID, Record]  # the live state of each changed ticket
    next_cursor: str | None


async def feed_page(session: AsyncSession, page: PageParams) -> FeedPage:
    """Unlike lists, the feed never ends: its cursor always points after the last entry
    served (or stays where it was), and polling with it returns what settled since."""
    changes = ChangeRepository(session)
    after = None
    if page.cursor is not None:
        [after] = decode_cursor(page.cursor, CURSOR_KEYS)
    try:
        served = list(await changes.settled_after(after, page.limit))
    except LookupError:
        raise ValidationFailed(
            "The cursor names no change of this organization.",
            errors=[field_error("cursor", "invalid cursor", location="query")],
        ) from None
    tickets = await changes.live_tickets({change.ticket_id for change in served})
    resume = cursor_after(served[-1], CURSOR_KEYS) if served else page.cursor
    return FeedPage(served, tickets, resume)
