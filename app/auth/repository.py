"""Every statement of the auth domain: the login and refresh look-ups, the per-request
session check, grants in force, a person's own account and sessions, activity stamps.

Credential look-ups that run before the organization is known (login by email, a
refresh token, a superuser's access token) are platform statements
(`PlatformRepository`, the system session); everything after them runs in the tenant
session (`Repository`). A platform superuser belongs to no organization, so their own
account and sessions live in the system session: `accounts` and `own_sessions` pick the
repository for the session the caller's rows live in, and the two twins of each answer
the same methods.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.permissions import Permission
from app.db.session import is_system
from app.kit.pagination import PageParams, PageResult, SortKey
from app.kit.repository import PlatformRepository, Record, Repository
from app.models.organization import Organization
from app.models.user import User, UserPermission, UserSession

USERS = cast(sa.Table, User.__table__)
SESSIONS = cast(sa.Table, UserSession.__table__)
GRANTS = cast(sa.Table, UserPermission.__table__)

# A person's sessions, newest first (ids are time-ordered).
SESSION_ORDER = [SortKey(UserSession.id, descending=True)]


# --- a person's own account ----------------------------------------------------------


class AccountRepository(Repository[User]):
    """The signed-in user's own row, in their tenant's session."""

    model = User

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.one_or_none(self.select().where(User.id == user_id))

    async def lock(self, user: User) -> None:
        """Reloads `user` and holds its row until the transaction ends: one-time codes
        are checked and spent one request after the other."""
        await self.session.refresh(user, with_for_update=True)

    async def mark_active(self, user_id: uuid.UUID, now: datetime, ip: str | None) -> None:
        """Activity is not an edit: `updated_at` keeps its value."""
        statement = (
            self.update()
            .where(User.id == user_id)
            .values(**_activity_values(now, ip))
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(statement)


class PlatformAccountRepository(PlatformRepository[User]):
    """User rows read before a tenant is known (the login look-up), and a platform
    superuser's own row."""

    model = User

    async def login_user(self, email: str, client_id: str | None) -> User | None:
        """A live user of the live organization `client_id` names (its slug), or a
        superuser when there is none."""
        statement = self.select().where(User.email == email.strip().lower())
        if client_id:
            statement = statement.join(
                Organization,
                sa.and_(Organization.id == User.organization_id, Organization.deleted_at.is_(None)),
            ).where(Organization.slug == client_id)
        else:
            statement = statement.where(User.organization_id.is_(None), User.is_superuser)
        return await self.one_or_none(statement)

    async def get(self, user_id: uuid.UUID) -> User | None:
        statement = self.select().where(User.id == user_id, User.organization_id.is_(None))
        return await self.one_or_none(statement)

    async def lock(self, user: User) -> None:
        """Reloads `user` and holds its row until the transaction ends: one-time codes
        are checked and spent one login after the other."""
        await self.session.refresh(user, with_for_update=True)

    async def mark_active(self, user_id: uuid.UUID, now: datetime, ip: str | None) -> None:
        statement = (
            sa.update(User)
            .where(User.id == user_id, User.organization_id.is_(None), User.deleted_at.is_(None))
            .values(**_activity_values(now, ip))
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(statement)


def _activity_values(now: datetime, ip: str | None) -> dict[str, Any]:
    # Setting `updated_at` to itself keeps its onupdate default from firing.
    values: dict[str, Any] = {"last_active_at": now, "updated_at": User.updated_at}
    if ip:
        values["last_login_ip"] = ip
    return values


def accounts(session: AsyncSession) -> AccountRepository | PlatformAccountRepository:
    """The repository of the caller's own row: the tenant's, or for a platform superuser
    (who belongs to no organization) the system session's."""
    if is_system(session.sync_session):
        return PlatformAccountRepository(session)
    return AccountRepository(session)


# --- sessions ------------------------------------------------------------------------


class SessionCheckRepository(Repository[UserSession]):
    model = UserSession

    async def live_session(
        self, session_id: uuid.UUID, user_id: uuid.UUID, now: datetime
    ) -> Record | None:
        """The per-request check for a tenant token: an active, unexpired session of the
        token's user, alive in a live organization. Every request runs it: Core columns
        only, so it compiles and runs as Core; built once per tenant."""
        statement = self.prebuilt("live_session", self._live_session)
        return await self.row(statement, {"session_id": session_id, "user_id": user_id, "now": now})

    def _live_session(self) -> sa.Select[Any]:
        users, sessions = USERS.c, SESSIONS.c
        organizations = cast(sa.Table, Organization.__table__)
        return (
            self.select_rows(users.role, users.is_superuser, users.last_active_at)
            .select_from(SESSIONS)
            .join(USERS, sa.and_(users.id == sessions.user_id, *self.scope(User)))
            .join(
                organizations,
                sa.and_(organizations.c.id == sessions.organization_id, *self.scope(Organization)),
            )
            .where(
                sessions.id == sa.bindparam("session_id"),
                sessions.user_id == sa.bindparam("user_id"),
                sessions.is_active,
                sessions.expires_at > sa.bindparam("now", type_=sessions.expires_at.type),
            )
        )


class UserSessionRepository(Repository[UserSession]):
    """A user's own sessions, in their tenant's session."""

    model = UserSession

    def _of_user(self, user_id: uuid.UUID) -> sa.Select[tuple[UserSession]]:
        return self.select().where(UserSession.user_id == user_id)

    async def page_of(self, user_id: uuid.UUID, params: PageParams) -> PageResult[UserSession]:
        return await self.page(self._of_user(user_id), params, SESSION_ORDER)

    async def own(self, user_id: uuid.UUID, session_id: uuid.UUID) -> UserSession | None:
        return await self.one_or_none(self._of_user(user_id).where(UserSession.id == session_id))

    async def revoke_all(
        self, user_id: uuid.UUID, now: datetime, *, keep: uuid.UUID | None
    ) -> None:
        statement = (
            self.update()
            .where(UserSession.user_id == user_id, UserSession.is_active)
            .values(is_active=False, revoked_at=now)
            .execution_options(synchronize_session="fetch")
        )
        if keep is not None:
            statement = statement.where(UserSession.id != keep)
        await self.session.execute(statement)

    async def mark_active(self, session_id: uuid.UUID, now: datetime) -> None:
        statement = (
            self.update()
            .where(UserSession.id == session_id)
            .values(last_activity_at=now, updated_at=UserSession.updated_at)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(statement)


class PlatformSessionRepository(PlatformRepository[UserSession]):
    """Sessions read before a tenant is known (a refresh token, a superuser's access
    token), and a platform superuser's own sessions."""

    model = UserSession

    @staticmethod
    def _live(session_id: uuid.UUID, now: datetime, *columns: Any) -> sa.Select[Any]:
        """An active, unexpired session of a live user in a live organization (or of a
        superuser, who has none)."""
        return (
            sa.select(*columns)
            .select_from(UserSession)
            .join(User, sa.and_(User.id == UserSession.user_id, User.deleted_at.is_(None)))
            .outerjoin(
                Organization,
                sa.and_(
                    Organization.id == UserSession.organization_id,
                    Organization.deleted_at.is_(None),
                ),
            )
            .where(
                UserSession.id == session_id,
                UserSession.is_active,
                UserSession.expires_at > now,
                sa.or_(
                    sa.and_(UserSession.organization_id.is_(None), User.is_superuser),
                    Organization.id.is_not(None),
                ),
            )
        )

    async def live_for_refresh(
        self, session_id: uuid.UUID, now: datetime
    ) -> tuple[UserSession, User] | None:
        """The live session and its user, the session's row locked: two refreshes of one
        token queue, and the second sees the rotation of the first."""
        statement = self._live(session_id, now, UserSession, User).with_for_update(of=UserSession)
        row = (await self.session.execute(statement)).one_or_none()
        return (row[0], row[1]) if row is not None else None

    async def live_superuser_session(self, session_id: uuid.UUID, now: datetime) -> Record | None:
        """The per-request check for a superuser's token: what the caller compares with
        the token's claims."""
        statement = self._live(
            session_id, now, User.id, User.organization_id, User.is_superuser, User.last_active_at
        )
        row = (await self.session.execute(statement)).mappings().one_or_none()
        return dict(row) if row is not None else None

    def _of_superuser(self, user_id: uuid.UUID) -> sa.Select[Any]:
        return self.select().where(
            UserSession.user_id == user_id, UserSession.organization_id.is_(None)
        )

    async def page_of(self, user_id: uuid.UUID, params: PageParams) -> PageResult[UserSession]:
        return await self.page(self._of_superuser(user_id), params, SESSION_ORDER)

    async def own(self, user_id: uuid.UUID, session_id: uuid.UUID) -> UserSession | None:
        statement = self._of_superuser(user_id).where(UserSession.id == session_id)
        return await self.one_or_none(statement)

    async def revoke_all(
        self, user_id: uuid.UUID, now: datetime, *, keep: uuid.UUID | None
    ) -> None:
        statement = (
            sa.update(UserSession)
            .where(
                UserSession.user_id == user_id,
                UserSession.organization_id.is_(None),
                UserSession.is_active,
            )
            .values(is_active=False, revoked_at=now)
            .execution_options(synchronize_session="fetch")
        )
        if keep is not None:
            statement = statement.where(UserSession.id != keep)
        await self.session.execute(statement)

    async def mark_active(self, session_id: uuid.UUID, now: datetime) -> None:
        statement = (
            sa.update(UserSession)
            .where(UserSession.id == session_id, UserSession.organization_id.is_(None))
            .values(last_activity_at=now, updated_at=UserSession.updated_at)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(statement)


def own_sessions(session: AsyncSession) -> UserSessionRepository | PlatformSessionRepository:
    """The repository of the caller's own sessions: the tenant's, or for a platform
    superuser (who belongs to no organization) the system session's."""
    if is_system(session.sync_session):
        return PlatformSessionRepository(session)
    return UserSessionRepository(session)


# --- grants ---------------------------------------------------------------------------


class GrantRepository(Repository[UserPermission]):
    """Grants in force: the one statement of `UserPermission.is_effective`."""

    model = UserPermission

    @staticmethod
    def _in_force(user_id: uuid.UUID) -> list[sa.ColumnElement[bool]]:
        # Expiry is checked at use, so an expired grant stops working with no job running.
        now = datetime.now(UTC)
        return [
            UserPermission.user_id == user_id,
            GRANTS.c.is_active,
            sa.or_(UserPermission.expires_at.is_(None), UserPermission.expires_at > now),
        ]

    async def holds(self, user_id: uuid.UUID, permission: Permission) -> bool:
        statement = self.select_rows(GRANTS.c.id).where(
            *self._in_force(user_id), UserPermission.permission == permission.value
        )
        return await self.row(statement.limit(1)) is not None

    async def holds_any(self, user_id: uuid.UUID) -> bool:
        statement = self.select_rows(GRANTS.c.id).where(*self._in_force(user_id))
        return await self.row(statement.limit(1)) is not None

    async def permissions_in_force(self, user_id: uuid.UUID) -> Sequence[str]:
        statement = self.select_rows(GRANTS.c.permission).where(*self._in_force(user_id))
        return [row["permission"] for row in await self.rows(statement)]
