"""Every statement of the organizations domain, in its two sessions.

* `OrganizationRepository` (tenant session): the tenant's own row — `scope` states
  `id = :org` for the tenant-root model, so no other organization is ever named.
* `PlatformOrganizationRepository` (system session): every organization, for the
  platform's superuser routes and the CLI, which act before any tenant exists.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from app.kit.errors import Conflict
from app.kit.pagination import PageParams, PageResult, SortKey
from app.kit.repository import PlatformRepository, Repository
from app.models.organization import Organization

ORDER = [SortKey(Organization.id)]


class OrganizationRepository(Repository[Organization]):
    model = Organization

    async def current(self) -> Organization | None:
        """The session's organization while it is live."""
        return await self.one_or_none(self.select())


class PlatformOrganizationRepository(PlatformRepository[Organization]):
    model = Organization

    async def list_page(
        self, page: PageParams, *, include_deleted: bool = False
    ) -> PageResult[Organization]:
        return await self.page(self.select(include_deleted=include_deleted), page, ORDER)

    async def by_slug(self, slug: str) -> Organization | None:
        """The live organization that `slug` names."""
        return await self.one_or_none(self.select().where(Organization.slug == slug))

    async def check_slug_free(self, slug: str, *, exclude: uuid.UUID | None = None) -> None:
        """A 409 before the flush rather than an IntegrityError after it. Live rows only,
        like the partial index `uq_organizations_slug`, which still settles a race."""
        statement = (
            self.select().with_only_columns(Organization.id).where(Organization.slug == slug)
        )
        if exclude is not None:
            statement = statement.where(Organization.id != exclude)
        if (await self.session.execute(statement.limit(1))).first() is not None:
            raise Conflict(f"An organization with slug '{slug}' already exists.")

    async def remove(self, organization_id: uuid.UUID) -> None:
        """Hard delete: the organization and, by cascade, every row of the tenant."""
        await self.session.execute(
            sa.delete(Organization).where(Organization.id == organization_id)
        )
