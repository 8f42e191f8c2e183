"""Notifications: written by the system beside the change they are about (in its
journal), read and marked read by their user only."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.errors import NotFound
from app.kit.journal import Journal
from app.kit.pagination import PageParams, PageResult
from app.kit.repository import Record
from app.models.notification import Notification
from app.notifications.repository import NotificationRepository


def notify(
    journal: Journal,
    user_ids: Iterable[uuid.UUID],
    *,
    kind: str,
    title: str,
    ticket_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """One notification per user, written with the journal of the change."""
    for user_id in user_ids:
        journal.add(
            Notification,
            user_id=user_id,
            kind=kind,
            title=title,
            ticket_id=ticket_id,
            data=data or {},
            read_at=None,
        )


async def list_notifications(
    session: AsyncSession, user_id: uuid.UUID, page: PageParams, *, unread: bool | None
) -> PageResult[Record]:
    return await NotificationRepository(session).list_page(user_id, page, unread=unread)


async def mark_read(
    session: AsyncSession, user_id: uuid.UUID, notification_id: uuid.UUID
) -> Record:
    """Idempotent: a notification read already keeps its first `read_at`."""
    notifications = NotificationRepository(session)
    marked = await notifications.mark_read(user_id, datetime.now(UTC), notification_id)
    found = marked[0] if marked else await notifications.get(user_id, notification_id)
    if found is None:
        raise NotFound("No such notification.")
    return found


async def mark_all_read(session: AsyncSession, user_id: uuid.UUID) -> int:
    return len(await NotificationRepository(session).mark_read(user_id, datetime.now(UTC)))
