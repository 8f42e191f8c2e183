"""Every statement of the SLA-policies domain.

Lists read row dicts (`select_rows`): they only serialize. A single policy is an ORM
object, which the service edits and the session flushes.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from app.kit.pagination import PageParams, PageResult, SortKey
from app.kit.repository import Record, Repository, scoped
from app.models.sla import BusinessHours, SLAPolicy

# The order policies are matched in: by position, ties broken by id (creation order).
ORDER = [SortKey(SLAPolicy.position), SortKey(SLAPolicy.id)]
LABEL = "SLA policy"


class SLAPolicyRepository(Repository[SLAPolicy]):
    model = SLAPolicy

    async def list_page(
        self, page: PageParams, *, is_active: bool | None = None, include_deleted: bool = False
    ) -> PageResult[Record]:
        statement = self.select_rows(include_deleted=include_deleted)
        if is_active is not None:
            statement = statement.where(SLAPolicy.is_active.is_(is_active))
        return await self.page_rows(statement, page, ORDER)

    async def get(self, policy_id: uuid.UUID, *, include_deleted: bool = False) -> SLAPolicy:
        return await self.get_or_404(policy_id, include_deleted=include_deleted, label=LABEL)

    async def live_business_hours(self, hours_id: uuid.UUID) -> Record | None:
        """The organization's live business-hours calendar of that id, as a row dict."""
        table = BusinessHours.__table__
        statement: sa.Select[Any] = sa.select(*table.c).where(
            *self.scope(BusinessHours), table.c.id == hours_id
        )
        return await self.row(scoped(statement))
