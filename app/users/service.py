"""Users: the rules that hold whoever calls (API, CLI, inbound channels)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.passwords import hash_password
from app.db.session import is_system
from app.models.user import User


async def get_superuser_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(
        sa.select(User).where(
            User.organization_id.is_(None), sa.func.lower(User.email) == email.strip().lower()
        )
    )


async def create_superuser(session: AsyncSession, *, email: str, password: str) -> User:
    """Platform operators belong to no organization; only the system session sees them."""
    if not is_system(session.sync_session):
        raise RuntimeError("superusers are created from the system session")
    user = User(
        organization_id=None,
        email=email.strip().lower(),
        password_hash=hash_password(password),
        is_superuser=True,
    )
    session.add(user)
    await session.flush()
    return user
