"""Users: the rules that hold whoever calls (API, CLI, inbound channels).

* Email is unique per organization, case-insensitively, among live users.
* Nobody hands out a role above their own or raises their own; only admins create,
  change, delete or restore admins.
* The last live admin of an organization cannot be deleted or demoted.
* Deleting a user, or setting their password for them, ends all their sessions.

The statements are the repository's (`app.users.repository`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth
from app.auth.passwords import hash_password, verify_password
from app.auth.permissions import GRANTABLE, ROLE_RANK, Permission
from app.auth.principal import Principal, PrincipalKind
from app.db.session import is_system
from app.kit.errors import Conflict, Forbidden, NotFound, ValidationFailed
from app.kit.pagination import PageParams, PageResult
from app.kit.records import apply_changes, field_error
from app.models.user import Role, User, UserPermission
from app.users.repository import (
    SuperuserRepository,
    UserFilters,
    UserGrantRepository,
    UserRepository,
)
from app.users.schemas import (
    GrantCreate,
    SuperuserCreate,
    UserCreate,
    UserSelfUpdate,
    UserUpdate,
)

# --- platform superusers (system session) -------------------------------------------


async def get_superuser_by_email(session: AsyncSession, email: str) -> User | None:
    return await SuperuserRepository(session).by_email(email)


async def create_superuser(session: AsyncSession, data: SuperuserCreate) -> User:
    """Platform operators belong to no organization; only the system session sees them."""
    if not is_system(session.sync_session):
        raise RuntimeError("superusers are created from the system session")
    if await SuperuserRepository(session).by_email(data.email) is not None:
        raise Conflict("A superuser with this email already exists.")
    user = User(
        organization_id=None,
        email=data.email,
        password_hash=await hash_password(data.password),
        is_superuser=True,
    )
    session.add(user)
    await session.flush()
    return user


# --- users of the caller's organization (tenant session) -----------------------------


async def list_users(
    session: AsyncSession,
    filters: UserFilters,
    page: PageParams,
    *,
    include_deleted: bool = False,
) -> PageResult[User]:
    return await UserRepository(session).list_filtered(
        filters, page, include_deleted=include_deleted
    )


async def get_user(
    session: AsyncSession, user_id: uuid.UUID, *, include_deleted: bool = False
) -> User:
    """A user of the tenant; in the system session, a superuser (`/users/me` of a
    platform operator, who belongs to no organization)."""
    if is_system(session.sync_session):
        superuser = await SuperuserRepository(session).get(user_id)
        if superuser is None:
            raise NotFound("No such user.")
        return superuser
    return await UserRepository(session).get_or_404(user_id, include_deleted=include_deleted)


async def create_user(session: AsyncSession, actor: Principal, data: UserCreate) -> User:
    check_may_assign(actor, data.role)
    if data.password is not None:
        _check_sets_credentials(actor)
    fields = data.model_dump(exclude={"password"})
    await _check_references(session, fields, role=data.role, changed=set(fields))
    await UserRepository(session).check_email_free(data.email)
    user = User(**fields)
    if data.password is not None:
        user.password_hash = await hash_password(data.password)
    session.add(user)
    await session.flush()
    return user


async def update_user(
    session: AsyncSession, actor: Principal, user_id: uuid.UUID, data: UserUpdate
) -> User:
    user = await get_user(session, user_id)
    changes = data.changes()
    password = changes.pop("password", None)
    reset_two_factor = changes.pop("two_factor_enabled", None) is False
    new_role: Role = changes.get("role", user.role)
    _check_may_manage(actor, user)
    if user.id == actor.user_id and (password is not None or reset_two_factor):
        raise ValidationFailed(
            "Change your own credentials through /users/me and /auth/totp.",
            errors=[field_error("password", "use /users/me for your own account")],
        )
    if password is not None or reset_two_factor or _email_changes(user, changes):
        await _check_may_set_credentials(session, actor, user)
    if new_role != user.role:
        check_may_assign(actor, new_role)
        if user.role is Role.ADMIN:
            await _ensure_another_admin(session, user)
    await _check_references(
        session, {**_current_references(user), **changes}, role=new_role, changed=set(changes)
    )
    if _email_changes(user, changes):
        await UserRepository(session).check_email_free(changes["email"], exclude=user.id)
    apply_changes(user, changes)
    if password is not None:
        user.password_hash = await hash_password(password)
    if reset_two_factor:
        auth.reset_totp(user)
    if password is not None or reset_two_factor:
        await auth.revoke_all_sessions(session, user.id)
    await session.flush()
    return user


def _email_changes(user: User, changes: dict[str, Any]) -> bool:
    return "email" in changes and changes["email"] != user.email


async def update_me(session: AsyncSession, principal: Principal, data: UserSelfUpdate) -> User:
    """Works for superusers too (`session` is then the system session)."""
    user = await get_user(session, principal.id)
    changes = data.changes()
    password = changes.pop("password", None)
    current_password = changes.pop("current_password", None)
    if password is not None:
        matches, _ = await verify_password(current_password or "", user.password_hash)
        if not matches:
            raise ValidationFailed(
                "The current password is wrong.",
                errors=[field_error("current_password", "does not match the current password")],
            )
        user.password_hash = await hash_password(password)
        # Whoever else held a session on the old password is logged out.
        await auth.revoke_all_sessions(session, user.id, keep=principal.session_id)
    apply_changes(user, changes)
    await session.flush()
    return user


async def delete_user(session: AsyncSession, actor: Principal, user_id: uuid.UUID) -> None:
    user = await get_user(session, user_id)
    _check_may_manage(actor, user)
    if user.role is Role.ADMIN:
        await _ensure_another_admin(session, user)
    user.soft_delete()
    await auth.revoke_all_sessions(session, user.id)
    await session.flush()


async def restore_user(session: AsyncSession, actor: Principal, user_id: uuid.UUID) -> User:
    user = await get_user(session, user_id, include_deleted=True)
    _check_may_manage(actor, user)
    if user.is_deleted:
        await UserRepository(session).check_email_free(user.email, exclude=user.id)
        user.restore()
        await session.flush()
    return user


async def effective_permissions(session: AsyncSession, principal: Principal) -> list[Permission]:
    granted: set[Permission] = set()
    if principal.user_id is not None and not principal.is_superuser:
        in_force = await UserGrantRepository(session).permissions_in_force(principal.user_id)
        granted = {Permission(permission) for permission in in_force}
    return sorted(principal.role_permissions | granted)


def check_may_assign(actor: Principal, role: Role) -> None:
    """Nobody hands out a role above their own (users and API keys alike), so nobody
    raises their own either; only admins make admins."""
    assert actor.role is not None
    if role is Role.ADMIN and actor.role is not Role.ADMIN:
        raise Forbidden("Only admins can make admins.")
    if ROLE_RANK[role] > ROLE_RANK[actor.role]:
        raise Forbidden(f"A {actor.role.value} cannot hand out the {role.value} role.")


def _check_may_manage(actor: Principal, user: User) -> None:
    """Admins manage everyone; others only users ranked strictly below them."""
    assert actor.role is not None
    if actor.role is Role.ADMIN:
        return
    if user.role is Role.ADMIN:
        raise Forbidden("Only admins can change admins.")
    if ROLE_RANK[user.role] >= ROLE_RANK[actor.role] and user.id != actor.user_id:
        raise Forbidden(f"A {actor.role.value} cannot change a {user.role.value}.")


def _check_sets_credentials(actor: Principal) -> None:
    if actor.kind is PrincipalKind.API_KEY:
        raise Forbidden("API keys cannot set passwords, emails or second factors.")


async def _check_may_set_credentials(session: AsyncSession, actor: Principal, user: User) -> None:
    """Setting someone's password, email (their login) or resetting their 2FA hands
    over their account: people only (no API keys), and below admins only for users
    who hold no grants — or the grants would be handed over too."""
    _check_sets_credentials(actor)
    if actor.role is Role.ADMIN:
        return
    if await UserGrantRepository(session).holds_any(user.id):
        raise Forbidden("Only admins reset the credentials of users holding grants.")


async def _ensure_another_admin(session: AsyncSession, admin: User) -> None:
    """Locks the organization's admin rows (in id order), so two concurrent demotions
    cannot both see "one other admin left" and leave none. Only admins who can log in
    (have a password) count."""
    admins = await UserRepository(session).lock_admins()
    if not any(row["id"] != admin.id and row["password_hash"] for row in admins):
        raise Conflict("This is the organization's last admin; make another admin first.")


def _current_references(user: User) -> dict[str, Any]:
    return {"customer_id": user.customer_id, "department_id": user.department_id}


async def _check_references(
    session: AsyncSession, fields: dict[str, Any], *, role: Role, changed: set[str]
) -> None:
    """Referenced rows exist in this organization and fit the role (422 otherwise).
    Existence is checked for references being set now: a user whose department was
    deleted since stays editable."""
    users = UserRepository(session)
    errors = []
    customer_id = fields.get("customer_id")
    if customer_id is not None:
        if role is not Role.CUSTOMER:
            errors.append(field_error("customer_id", "only customer users belong to an account"))
        elif "customer_id" in changed and not await users.customer_exists(customer_id):
            errors.append(field_error("customer_id", "no such customer account"))
    department_id = fields.get("department_id")
    if (
        department_id is not None
        and "department_id" in changed
        and not await users.department_exists(department_id)
    ):
        errors.append(field_error("department_id", "no such department"))
    if errors:
        raise ValidationFailed("Some references are not valid.", errors=errors)


# --- permission grants ------------------------------------------------------------------


async def list_grants(
    session: AsyncSession, user_id: uuid.UUID, page: PageParams
) -> PageResult[UserPermission]:
    await get_user(session, user_id)
    return await UserGrantRepository(session).page_of(user_id, page)


async def grant_permission(
    session: AsyncSession, actor: Principal, user_id: uuid.UUID, data: GrantCreate
) -> UserPermission:
    await get_user(session, user_id)
    now = datetime.now(UTC)
    errors = []
    if data.permission not in GRANTABLE:
        errors.append(field_error("permission", "platform permissions cannot be granted"))
    if data.expires_at is not None and data.expires_at <= now:
        errors.append(field_error("expires_at", "must be in the future"))
    if errors:
        raise ValidationFailed("The grant is not valid.", errors=errors)
    if user_id == actor.user_id:
        raise Forbidden("Nobody grants permissions to themselves.")
    if data.permission not in actor.role_permissions:
        # Grants pass on what the granter's role holds, never more (and never what the
        # granter only holds by a grant): no chain of grants climbs above a role.
        raise Forbidden(f"Your role does not hold `{data.permission.value}` to grant it.")
    current = await UserGrantRepository(session).active(user_id, data.permission.value)
    if current is not None:
        if current.is_effective:
            raise Conflict("The user already holds this grant; revoke it to change it.")
        current.is_active = False  # expired: make room for the new one
        await session.flush()
    grant = UserPermission(
        user_id=user_id,
        permission=data.permission.value,
        granted_by_id=actor.user_id,
        granted_at=now,
        expires_at=data.expires_at,
    )
    session.add(grant)
    await session.flush()
    return grant


async def revoke_grant(session: AsyncSession, user_id: uuid.UUID, grant_id: uuid.UUID) -> None:
    grant = await UserGrantRepository(session).get(user_id, grant_id)
    if grant is None:
        raise NotFound("No such grant.")
    grant.is_active = False
    await session.flush()
