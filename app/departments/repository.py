"""Every statement of the departments domain, and the one read of another table a
department's rules need (its manager among the staff users).

Lists read row dicts (`select_rows`): they only serialize. A single department is an ORM
object, which the service edits and the session flushes.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from app.kit.pagination import PageParams, PageResult, SortKey
from app.kit.repository import Record, Repository, scoped
from app.models.user import STAFF_ROLES, Department, User

ORDER = [SortKey(Department.id)]


class DepartmentRepository(Repository[Department]):
    model = Department

    async def list_page(
        self, page: PageParams, *, q: str | None = None, include_deleted: bool = False
    ) -> PageResult[Record]:
        """`q`: the name contains it, case-insensitively."""
        statement = self.select_rows(include_deleted=include_deleted)
        if q:
            statement = statement.where(
                sa.func.lower(Department.name).contains(q.lower(), autoescape=True)
            )
        return await self.page_rows(statement, page, ORDER)

    async def check_name_free(self, name: str, *, exclude: uuid.UUID | None = None) -> None:
        """Names are unique per organization regardless of case, as the partial index
        `uq_departments_name` states them."""
        await self.check_unique(
            sa.func.lower(Department.name) == name.lower(),
            exclude=exclude,
            detail=f"A department named '{name}' already exists.",
        )

    async def is_staff(self, user_id: uuid.UUID) -> bool:
        """Whether `user_id` names a live staff user of the organization."""
        statement = sa.select(User.id).where(
            *self.scope(User), User.id == user_id, User.role.in_(sorted(STAFF_ROLES))
        )
        return await self.row(scoped(statement)) is not None
