"""Every statement of the business-hours domain.

Lists read row dicts (`select_rows`): they only serialize. A single calendar is an ORM
object, which the service edits and the session flushes.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from app.kit.pagination import PageParams, PageResult, SortKey
from app.kit.repository import Record, Repository
from app.models.sla import BusinessHours

ORDER = [SortKey(BusinessHours.id)]
LABEL = "business hours calendar"


class BusinessHoursRepository(Repository[BusinessHours]):
    model = BusinessHours

    async def list_page(
        self, page: PageParams, *, q: str | None = None, include_deleted: bool = False
    ) -> PageResult[Record]:
        """`q`: the name contains it, case-insensitively."""
        statement = self.select_rows(include_deleted=include_deleted)
        if q:
            statement = statement.where(
                sa.func.lower(BusinessHours.name).contains(q.lower(), autoescape=True)
            )
        return await self.page_rows(statement, page, ORDER)

    async def get(self, hours_id: uuid.UUID, *, include_deleted: bool = False) -> BusinessHours:
        return await self.get_or_404(hours_id, include_deleted=include_deleted, label=LABEL)

    async def check_name_free(self, name: str, *, exclude: uuid.UUID | None = None) -> None:
        """Names are unique per organization regardless of case, as the partial index
        `uq_business_hours_name` states them."""
        await self.check_unique(
            sa.func.lower(BusinessHours.name) == name.lower(),
            exclude=exclude,
            detail=f"A business hours calendar named '{name}' already exists.",
        )
