"""Every statement of the notifications domain. Each reads or changes the rows of one
user, the caller (`user_id` is part of every condition)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import cast

import sqlalchemy as sa

from app.kit.pagination import PageParams, PageResult, SortKey
from app.kit.repository import Record, Repository
from app.models.notification import Notification

N = cast(sa.Table, Notification.__table__).c
NEWEST_FIRST = [SortKey(N.id, descending=True)]


class NotificationRepository(Repository[Notification]):
    model = Notification

    async def list_page(
        self, user_id: uuid.UUID, page: PageParams, *, unread: bool | None
    ) -> PageResult[Record]:
        statement = self.select_rows().where(N.user_id == user_id)
        if unread is not None:
            statement = statement.where(N.read_at.is_(None) if unread else N.read_at.is_not(None))
        return await self.page_rows(statement, page, NEWEST_FIRST)

    async def mark_read(
        self, user_id: uuid.UUID, at: datetime, notification_id: uuid.UUID | None = None
    ) -> list[Record]:
        """Stamp `read_at` on the user's unread notifications (one, or all); returns
        those stamped."""
        statement = self.update().where(N.user_id == user_id, N.read_at.is_(None))
        if notification_id is not None:
            statement = statement.where(N.id == notification_id)
        return await self.rows(statement.values(read_at=at).returning(*N))

    async def get(self, user_id: uuid.UUID, notification_id: uuid.UUID) -> Record | None:
        return await self.row(
            self.select_rows().where(N.user_id == user_id, N.id == notification_id)
        )
