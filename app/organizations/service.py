"""Organizations: the platform manages them (system session); an organization's admin
edits its own row (tenant session, where the repository reads only that row).

Soft-deleting an organization locks out all its users and API keys at once (every
credential check joins the live organization); restoring it lets them back in."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.passwords import hash_password
from app.db.session import is_system
from app.kit.errors import NotFound
from app.kit.pagination import PageParams, PageResult
from app.kit.records import apply_changes
from app.models.organization import Organization
from app.models.user import Role, User
from app.organizations.repository import OrganizationRepository, PlatformOrganizationRepository
from app.organizations.schemas import OrganizationCreate


def _require_system(session: AsyncSession) -> None:
    if not is_system(session.sync_session):
        raise RuntimeError("organizations are managed from the system session")


async def get_by_slug(session: AsyncSession, slug: str) -> Organization | None:
    return await PlatformOrganizationRepository(session).by_slug(slug)


async def list_organizations(
    session: AsyncSession, page: PageParams, *, include_deleted: bool = False
) -> PageResult[Organization]:
    return await PlatformOrganizationRepository(session).list_page(
        page, include_deleted=include_deleted
    )


async def get_organization(
    session: AsyncSession, organization_id: uuid.UUID, *, include_deleted: bool = False
) -> Organization:
    return await PlatformOrganizationRepository(session).get_or_404(
        organization_id, include_deleted=include_deleted
    )


async def current_organization(session: AsyncSession) -> Organization:
    organization = await OrganizationRepository(session).current()
    if organization is None:
        raise NotFound("No such organization.")
    return organization


async def create_organization(
    session: AsyncSession, data: OrganizationCreate
) -> tuple[Organization, User]:
    """The organization and its first admin in one unit of work. Needs the system
    session: the organization does not exist yet, so no tenant session can be bound."""
    _require_system(session)
    await PlatformOrganizationRepository(session).check_slug_free(data.slug)
    organization = Organization(
        name=data.name,
        slug=data.slug,
        domain=data.domain,
        subscription_tier=data.subscription_tier,
        settings=data.settings,
    )
    session.add(organization)
    await session.flush()
    admin = User(
        organization_id=organization.id,
        email=data.admin.email,
        password_hash=await hash_password(data.admin.password),
        first_name=data.admin.first_name,
        last_name=data.admin.last_name,
        role=Role.ADMIN,
    )
    session.add(admin)
    await session.flush()
    return organization, admin


async def update_organization(
    session: AsyncSession, organization: Organization, changes: dict[str, Any]
) -> Organization:
    if "slug" in changes and changes["slug"] != organization.slug:
        _require_system(session)
        await PlatformOrganizationRepository(session).check_slug_free(changes["slug"])
    apply_changes(organization, changes)
    await session.flush()
    return organization


async def delete_organization(session: AsyncSession, organization_id: uuid.UUID) -> None:
    _require_system(session)
    organization = await get_organization(session, organization_id)
    organization.soft_delete()
    await session.flush()


async def restore_organization(session: AsyncSession, organization_id: uuid.UUID) -> Organization:
    _require_system(session)
    organizations = PlatformOrganizationRepository(session)
    organization = await organizations.get_or_404(organization_id, include_deleted=True)
    if organization.is_deleted:
        await organizations.check_slug_free(organization.slug, exclude=organization.id)
        organization.restore()
        await session.flush()
    return organization
