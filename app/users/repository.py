"""Every statement of the users domain: the organization's users and their grants, the
reads of other tables a user's references need — and platform superusers, who belong to
no organization and so are read in the system session only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa

from app.auth.repository import GrantRepository
from app.kit.pagination import PageParams, PageResult, SortKey
from app.kit.repository import PlatformRepository, Record, Repository, scoped
from app.models.user import Customer, Department, Role, User, UserPermission

USERS = cast(sa.Table, User.__table__)


@dataclass(frozen=True, slots=True)
class UserFilters:
    role: Role | None = None
    department_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    q: str | None = None  # email or name contains, case-insensitively


class UserRepository(Repository[User]):
    model = User

    async def list_filtered(
        self, filters: UserFilters, page: PageParams, *, include_deleted: bool = False
    ) -> PageResult[User]:
        statement = self.select(include_deleted=include_deleted)
        if filters.role is not None:
            statement = statement.where(User.role == filters.role)
        if filters.department_id is not None:
            statement = statement.where(User.department_id == filters.department_id)
        if filters.customer_id is not None:
            statement = statement.where(User.customer_id == filters.customer_id)
        if filters.q:
            needle = filters.q.lower()
            statement = statement.where(
                sa.or_(
                    *(
                        sa.func.lower(column).contains(needle, autoescape=True)
                        for column in (User.email, User.first_name, User.last_name)
                    )
                )
            )
        return await self.page(statement, page, [SortKey(User.id)])

    async def check_email_free(self, email: str, *, exclude: uuid.UUID | None = None) -> None:
        """Emails are unique per organization regardless of case (stored in lower case),
        as the partial index `uq_users_email` states them."""
        await self.check_unique(
            User.email == email.lower(),
            exclude=exclude,
            detail="A user with this email already exists in the organization.",
        )

    async def lock_admins(self) -> list[Record]:
        """The live admins' ids and password hashes, their rows locked in id order (one
        order for every caller, so two lockers queue rather than deadlock)."""
        statement = (
            self.select_rows(USERS.c.id, USERS.c.password_hash)
            .where(User.role == Role.ADMIN)
            .order_by(User.id)
            .with_for_update()
        )
        return await self.rows(statement)

    async def customer_exists(self, customer_id: uuid.UUID) -> bool:
        statement = sa.select(Customer.id).where(*self.scope(Customer), Customer.id == customer_id)
        return await self.row(scoped(statement)) is not None

    async def department_exists(self, department_id: uuid.UUID) -> bool:
        statement = sa.select(Department.id).where(
            *self.scope(Department), Department.id == department_id
        )
        return await self.row(scoped(statement)) is not None


class UserGrantRepository(GrantRepository):
    """A user's grants as the permission managers see them, revoked and expired ones
    included; what is in force is `GrantRepository`'s."""

    def _of_user(self, user_id: uuid.UUID) -> sa.Select[tuple[UserPermission]]:
        return self.select().where(UserPermission.user_id == user_id)

    async def page_of(self, user_id: uuid.UUID, page: PageParams) -> PageResult[UserPermission]:
        """Newest first."""
        return await self.page(
            self._of_user(user_id), page, [SortKey(UserPermission.id, descending=True)]
        )

    async def get(self, user_id: uuid.UUID, grant_id: uuid.UUID) -> UserPermission | None:
        return await self.one_or_none(self._of_user(user_id).where(UserPermission.id == grant_id))

    async def active(self, user_id: uuid.UUID, permission: str) -> UserPermission | None:
        """The user's one active grant of `permission` (a unique index keeps it one),
        expired or not."""
        statement = self._of_user(user_id).where(
            UserPermission.permission == permission, UserPermission.is_active
        )
        return await self.one_or_none(statement)


class SuperuserRepository(PlatformRepository[User]):
    model = User

    def _superusers(self) -> sa.Select[Any]:
        return self.select().where(User.organization_id.is_(None))

    async def by_email(self, email: str) -> User | None:
        statement = self._superusers().where(User.email == email.strip().lower())
        return await self.one_or_none(statement)

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.one_or_none(self._superusers().where(User.id == user_id))
