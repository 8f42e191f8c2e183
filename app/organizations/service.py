"""Organizations: the platform manages them (system session); an organization's admin
edits its own row (tenant session, where the global rule shows only that row).

Soft-deleting an organization locks out all its users and API keys at once (every
credential check joins the live organization); restoring it lets them back in."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.passwords import hash_password
from app.db.session import is_system
from app.kit.errors import NotFound
from app.kit.records import apply_changes, check_unique, get_or_404
from app.models.organization import Organization, SubscriptionTier
from app.models.user import Role, User


def _require_system(session: AsyncSession) -> None:
    if not is_system(session.sync_session):
        raise RuntimeError("organizations are managed from the system session")


async def get_by_slug(session: AsyncSession, slug: str) -> Organization | None:
    return await session.scalar(sa.select(Organization).where(Organization.slug == slug))


def organizations_query(*, include_deleted: bool = False) -> sa.Select[Organization]:
    statement = sa.select(Organization)
    if include_deleted:
        statement = statement.execution_options(include_deleted=True)
    return statement


async def get_organization(
    session: AsyncSession, organization_id: uuid.UUID, *, include_deleted: bool = False
) -> Organization:
    return await get_or_404(session, Organization, organization_id, include_deleted=include_deleted)


async def current_organization(session: AsyncSession) -> Organization:
    """In a tenant session the global rule leaves exactly the caller's organization."""
    organization: Organization | None = await session.scalar(sa.select(Organization))
    if organization is None:
        raise NotFound("No such organization.")
    return organization


async def create_organization(
    session: AsyncSession,
    *,
    name: str,
    slug: str,
    admin_email: str,
    admin_password: str,
    domain: str | None = None,
    subscription_tier: SubscriptionTier = SubscriptionTier.BASIC,
    settings: dict[str, Any] | None = None,
    admin_first_name: str = "",
    admin_last_name: str = "",
) -> tuple[Organization, User]:
    """The organization and its first admin in one unit of work. Needs the system
    session: the organization does not exist yet, so no tenant session can be bound."""
    _require_system(session)
    await _check_slug_free(session, slug)
    organization = Organization(
        name=name.strip(),
        slug=slug,
        domain=domain,
        subscription_tier=subscription_tier,
        settings=settings or {},
    )
    session.add(organization)
    await session.flush()
    admin = User(
        organization_id=organization.id,
        email=admin_email.strip().lower(),
        password_hash=hash_password(admin_password),
        first_name=admin_first_name,
        last_name=admin_last_name,
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
        await _check_slug_free(session, changes["slug"])
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
    organization = await get_organization(session, organization_id, include_deleted=True)
    if organization.is_deleted:
        await _check_slug_free(session, organization.slug, exclude=organization.id)
        organization.restore()
        await session.flush()
    return organization


async def _check_slug_free(
    session: AsyncSession, slug: str, *, exclude: uuid.UUID | None = None
) -> None:
    await check_unique(
        session,
        Organization,
        Organization.slug == slug,
        exclude=exclude,
        detail=f"An organization with slug '{slug}' already exists.",
    )
