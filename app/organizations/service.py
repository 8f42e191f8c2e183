"""Organizations: created with their first admin in one unit of work (platform code)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.passwords import hash_password
from app.db.session import is_system
from app.kit.errors import Conflict
from app.models.organization import Organization
from app.models.user import Role, User


async def get_by_slug(session: AsyncSession, slug: str) -> Organization | None:
    return await session.scalar(sa.select(Organization).where(Organization.slug == slug))


async def create_organization(
    session: AsyncSession,
    *,
    name: str,
    slug: str,
    admin_email: str,
    admin_password: str,
    domain: str | None = None,
    admin_first_name: str = "",
    admin_last_name: str = "",
) -> tuple[Organization, User]:
    """Needs the system session: the organization does not exist yet, so no tenant
    session can be bound to it."""
    if not is_system(session.sync_session):
        raise RuntimeError("organizations are created from the system session")
    if await get_by_slug(session, slug) is not None:
        raise Conflict(f"An organization with slug '{slug}' already exists.")
    organization = Organization(name=name.strip(), slug=slug, domain=domain)
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
