"""/users, /users/me, /users/{id}/permissions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request

from app.auth.dependencies import (
    IdempotencyKey,
    IncludeDeletedDep,
    PrincipalSessionDep,
    UserPrincipal,
    claim_idempotency,
    require,
)
from app.auth.permissions import Permission
from app.auth.principal import Principal
from app.db.dependencies import SessionDep
from app.kit.pagination import Page, PageParamsDep
from app.models.user import Role, User, UserPermission
from app.users import service as users
from app.users.repository import UserFilters
from app.users.schemas import (
    USER_CREATE_EXAMPLES,
    USER_SELF_UPDATE_EXAMPLES,
    USER_UPDATE_EXAMPLES,
    GrantCreate,
    GrantRead,
    MeRead,
    UserCreate,
    UserRead,
    UserSelfUpdate,
    UserUpdate,
)

router = APIRouter(prefix="/users", tags=["users"])

Reader = Annotated[Principal, Depends(require(Permission.USERS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.USERS_WRITE))]
GrantManager = Annotated[Principal, Depends(require(Permission.PERMISSIONS_MANAGE))]


@router.get("", response_model=Page[UserRead], summary="List users")
async def list_users(
    _: Reader,
    session: SessionDep,
    page: PageParamsDep,
    include_deleted: IncludeDeletedDep,
    role: Role | None = None,
    department_id: uuid.UUID | None = None,
    customer_id: uuid.UUID | None = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Email or name contains.")
    ] = None,
) -> Page[UserRead]:
    """Users of the caller's organization (staff and customer users), oldest first.
    Filters combine with AND; `q` matches part of the email or name.

    **Who:** agents, managers and admins (`users:read`). `include_deleted=true` adds
    soft-deleted users and is for admins (`deleted:read`), 403 for others.

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.
    """
    filters = UserFilters(role=role, department_id=department_id, customer_id=customer_id, q=q)
    result = await users.list_users(session, filters, page, include_deleted=include_deleted)
    return Page.of(result, UserRead.model_validate)


@router.post("", response_model=UserRead, status_code=201, summary="Create a user")
async def create_user(
    body: Annotated[UserCreate, Body(openapi_examples=USER_CREATE_EXAMPLES)],
    principal: Writer,
    session: SessionDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> UserRead:
    """Creates a staff or customer user in the caller's organization. Without a
    `password` the user cannot log in until one is set.

    **Who:** managers and admins (`users:write`). Nobody hands out a role above their own
    and only admins create admins: 403. API keys cannot set a password (403).

    - `email` is unique among the organization's live users, ignoring case: 409.
    - `customer_id` (a live customer account) is for customer users only, and
      `department_id` must be a live department: 422 otherwise.
    - Send an `Idempotency-Key` header to make retries safe: the same key with the same
      request within 24 h returns the first response and creates nothing; with another
      request it is a 409.
    """
    idempotency = await claim_idempotency(request, principal, session, idempotency_key)
    created = UserRead.model_validate(await users.create_user(session, principal, body))
    await idempotency.complete(201, created)
    return created


async def _me_read(session: PrincipalSessionDep, principal: Principal, user: User) -> MeRead:
    permissions = await users.effective_permissions(session, principal)
    return MeRead.model_validate(
        {**UserRead.model_validate(user).model_dump(), "permissions": permissions}
    )


@router.get("/me", response_model=MeRead, summary="Get your own profile")
async def get_me(principal: UserPrincipal, session: PrincipalSessionDep) -> MeRead:
    """The signed-in user, with `permissions`: what they may do now, their role's
    permissions plus unexpired grants.

    **Who:** any signed-in user, platform superusers included (`role` null,
    `organization_id` null). API keys have no profile: 403.
    """
    return await _me_read(session, principal, await users.get_user(session, principal.id))


@router.patch("/me", response_model=MeRead, summary="Update your own profile")
async def update_me(
    body: Annotated[UserSelfUpdate, Body(openapi_examples=USER_SELF_UPDATE_EXAMPLES)],
    principal: UserPrincipal,
    session: PrincipalSessionDep,
) -> MeRead:
    """Changes the fields sent and keeps the others; role, email and organization are not
    yours to change (`PATCH /users/{user_id}`, by a manager or admin). `phone` may be
    cleared with `null`.

    **Who:** any signed-in user; API keys get 403.

    - A new `password` needs `current_password`: 422 when it is wrong. The change ends
      your other sessions; this one stays signed in.
    """
    return await _me_read(session, principal, await users.update_me(session, principal, body))


@router.get("/{user_id}", response_model=UserRead, summary="Get a user")
async def get_user(user_id: uuid.UUID, _: Reader, session: SessionDep) -> User:
    """One user of the organization.

    **Who:** agents, managers and admins (`users:read`).

    **Errors:** 404 for another organization's user, a missing or a deleted one.
    """
    return await users.get_user(session, user_id)


@router.patch("/{user_id}", response_model=UserRead, summary="Update a user")
async def update_user(
    user_id: uuid.UUID,
    body: Annotated[UserUpdate, Body(openapi_examples=USER_UPDATE_EXAMPLES)],
    principal: Writer,
    session: SessionDep,
) -> User:
    """Changes the fields sent and keeps the others; `phone`, `customer_id` and
    `department_id` may be cleared with `null`.

    **Who:** managers and admins (`users:write`). Admins manage everyone; a manager
    manages agents, customers and themselves, never an admin (403).

    - A new `role` is at most the caller's own; only admins make admins (403). Demoting
      the organization's last admin who can log in is a 409.
    - Setting `password` or `email`, or resetting a lost second factor with
      `two_factor_enabled: false`, hands over the account: people only (API keys get 403),
      and a manager only for users without grants (403). A new password or a 2FA reset
      ends every session of the user. Your own password and second factor go through
      `/users/me` and `/auth/totp/*` (422 here).
    - 409 when the email is taken by another live user; 422 for an unknown customer
      account or department, or a `customer_id` on a staff user.
    - 404 for another organization's user, a missing or a deleted one.
    """
    return await users.update_user(session, principal, user_id, body)


@router.delete("/me", include_in_schema=False)
async def delete_me() -> None:
    """`/users/me` is the caller's own profile, which is not deleted: a 405 naming the
    methods it has, rather than `/{user_id}` refusing "me" as an id."""
    raise HTTPException(status_code=405)


@router.delete("/{user_id}", status_code=204, summary="Delete a user (soft)")
async def delete_user(user_id: uuid.UUID, principal: Writer, session: SessionDep) -> None:
    """Soft-deletes the user and ends all their sessions; their tickets and comments
    stay. `POST /users/{user_id}/restore` brings them back (they log in again).

    **Who:** managers and admins (`users:write`). Admins manage everyone; a manager
    manages agents, customers and themselves, never an admin (403).

    **Errors:** 409 for the organization's last admin who can log in; 404 for another
    organization's user, a missing or an already deleted one.
    """
    await users.delete_user(session, principal, user_id)


@router.post("/{user_id}/restore", response_model=UserRead, summary="Restore a user")
async def restore_user(user_id: uuid.UUID, principal: Writer, session: SessionDep) -> User:
    """Undoes a soft delete; a live user is returned unchanged.

    **Who:** managers and admins (`users:write`). Admins manage everyone; a manager
    manages agents, customers and themselves, never an admin (403).

    **Errors:** 409 when a live user took the email meanwhile; 404 for another
    organization's user or a missing one.
    """
    return await users.restore_user(session, principal, user_id)


@router.get(
    "/{user_id}/permissions", response_model=Page[GrantRead], summary="List a user's grants"
)
async def list_grants(
    user_id: uuid.UUID, _: GrantManager, session: SessionDep, page: PageParamsDep
) -> Page[GrantRead]:
    """The permissions granted to a user on top of their role, newest first, revoked and
    expired ones included (`is_effective` tells which are in force).

    **Who:** admins (`permissions:manage`), as people: API keys get 403.

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.

    **Errors:** 404 for another organization's user, a missing or a deleted one.
    """
    result = await users.list_grants(session, user_id, page)
    return Page.of(result, GrantRead.model_validate)


@router.post(
    "/{user_id}/permissions",
    response_model=GrantRead,
    status_code=201,
    summary="Grant a permission",
)
async def grant_permission(
    user_id: uuid.UUID, body: GrantCreate, principal: GrantManager, session: SessionDep
) -> UserPermission:
    """Grants one permission to a user on top of their role, until `expires_at` (or
    until revoked). It takes effect on the user's next request.

    **Who:** admins (`permissions:manage`), as people: API keys get 403.

    - Only a permission the granter's role holds (403), never `organizations:manage`
      (422), never to yourself (403); `expires_at` must be in the future (422).
    - 409 when the user already holds the permission by a grant in force (revoke it to
      change it); an expired grant is replaced.
    - 404 for another organization's user, a missing or a deleted one.
    """
    return await users.grant_permission(session, principal, user_id, body)


@router.delete("/{user_id}/permissions/{grant_id}", status_code=204, summary="Revoke a grant")
async def revoke_grant(
    user_id: uuid.UUID, grant_id: uuid.UUID, _: GrantManager, session: SessionDep
) -> None:
    """Ends a grant at once; it stays in the user's list as inactive. Revoking a revoked
    grant changes nothing.

    **Who:** admins (`permissions:manage`), as people: API keys get 403.

    **Errors:** 404 when the grant is not one of this user's, or the user is another
    organization's.
    """
    await users.revoke_grant(session, user_id, grant_id)
