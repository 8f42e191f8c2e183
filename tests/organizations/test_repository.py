"""The organizations repositories on their own: the tenant one reads the session's own
row only (its statements pass the suite's statement proof), the platform one reads
every organization and runs in the system session only."""

from __future__ import annotations

import uuid

import pytest

from app.db.database import Database
from app.db.session import TenantContextMissing
from app.kit.errors import Conflict, NotFound
from app.kit.pagination import PageParams
from app.models.organization import Organization
from app.organizations.repository import OrganizationRepository, PlatformOrganizationRepository
from tests.support.statement_proof import PROVEN


async def test_tenant_repository_reads_its_own_row(
    database: Database, org_a: Organization, org_b: Organization
) -> None:
    before = len(PROVEN)
    async with database.tenant_session(org_a.id) as session:
        current = await OrganizationRepository(session).current()
        assert current is not None and current.id == org_a.id
        with pytest.raises(NotFound):
            await OrganizationRepository(session).get_or_404(org_b.id)
    # At least: jobs of session-wide apps may run statements of their own meanwhile.
    assert len(PROVEN) - before >= 2


async def test_each_repository_refuses_the_other_session(database: Database) -> None:
    async with database.system_session() as session:
        with pytest.raises(TenantContextMissing):
            OrganizationRepository(session)
    async with database.tenant_session(uuid.uuid4()) as session:
        with pytest.raises(TypeError):
            PlatformOrganizationRepository(session)


async def test_platform_repository_reads_every_live_organization(
    database: Database, org_a: Organization, org_b: Organization
) -> None:
    async with database.system_session() as session:
        organizations = PlatformOrganizationRepository(session)
        assert (await organizations.get_or_404(org_b.id)).slug == org_b.slug
        assert await organizations.by_slug(org_a.slug) == await organizations.get_or_404(org_a.id)
        with pytest.raises(Conflict):
            await organizations.check_slug_free(org_a.slug)
        await organizations.check_slug_free(org_a.slug, exclude=org_a.id)
        await organizations.check_slug_free(f"free-{uuid.uuid4().hex[:8]}")
        (await organizations.get_or_404(org_a.id)).soft_delete()
        await session.flush()
        assert await organizations.by_slug(org_a.slug) is None
        with pytest.raises(NotFound, match="No such organization"):
            await organizations.get_or_404(org_a.id)
        assert (await organizations.get_or_404(org_a.id, include_deleted=True)).is_deleted
        await organizations.check_slug_free(org_a.slug)  # a deleted row's slug is reusable
        await session.rollback()


async def test_platform_list_pages_all_organizations(
    database: Database, org_a: Organization, org_b: Organization
) -> None:
    async with database.system_session() as session:
        organizations = PlatformOrganizationRepository(session)
        seen: list[uuid.UUID] = []
        cursor: str | None = None
        for _ in range(1000):
            page = await organizations.list_page(PageParams(limit=200, cursor=cursor))
            seen.extend(organization.id for organization in page.rows)
            if (cursor := page.next_cursor) is None:
                break
        assert {org_a.id, org_b.id} <= set(seen)
        assert seen == sorted(seen)
