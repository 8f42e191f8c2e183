"""Every statement of the api_keys table: the admins' list, the stamp of a key's use —
and the look-up by prefix, which runs before the key's organization is known (the
system session; prefixes are unique across tenants for that reason)."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from app.kit.pagination import PageParams, PageResult, SortKey
from app.kit.repository import PlatformRepository, Repository
from app.models.organization import Organization
from app.models.user import ApiKey


class ApiKeyRepository(Repository[ApiKey]):
    model = ApiKey

    async def page_all(self, params: PageParams) -> PageResult[ApiKey]:
        """Every key of the organization, revoked and expired ones included."""
        return await self.page(self.select(), params, [SortKey(ApiKey.id)])

    async def mark_used(self, key_id: uuid.UUID, now: datetime) -> None:
        """Use is not an edit: `updated_at` keeps its value."""
        statement = (
            self.update()
            .where(ApiKey.id == key_id)
            .values(last_used_at=now, updated_at=ApiKey.updated_at)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(statement)


class ApiKeyPrefixRepository(PlatformRepository[ApiKey]):
    model = ApiKey

    async def by_prefix(self, prefix: str) -> ApiKey | None:
        """The key with this prefix, if its organization is live; whether it is revoked,
        expired or matches the secret is the caller's to check."""
        statement = (
            self.select()
            .join(
                Organization,
                sa.and_(
                    Organization.id == ApiKey.organization_id, Organization.deleted_at.is_(None)
                ),
            )
            .where(ApiKey.prefix == prefix)
        )
        return await self.one_or_none(statement)
