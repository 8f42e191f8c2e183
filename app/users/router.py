"""/users, /users/me, /users/{id}/permissions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

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


@router.get("", response_model=Page[UserRead], summary="Users of the organization")
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
    filters = UserFilters(role=role, department_id=department_id, customer_id=customer_id, q=q)
    result = await users.list_users(session, filters, page, include_deleted=include_deleted)
    return Page.of(result, UserRead.model_validate)


@router.post("", response_model=UserRead, status_code=201)
async def create_user(
    body: UserCreate,
    principal: Writer,
    session: SessionDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> UserRead:
    idempotency = await claim_idempotency(request, principal, session, idempotency_key)
    created = UserRead.model_validate(await users.create_user(session, principal, body))
    await idempotency.complete(201, created)
    return created


async def _me_read(session: PrincipalSessionDep, principal: Principal, user: User) -> MeRead:
    permissions = await users.effective_permissions(session, principal)
    return MeRead.model_validate(
        {**UserRead.model_validate(user).model_dump(), "permissions": permissions}
    )


@router.get("/me", response_model=MeRead, summary="The signed-in user, with effective permissions")
async def get_me(principal: UserPrincipal, session: PrincipalSessionDep) -> MeRead:
    return await _me_read(session, principal, await users.get_user(session, principal.id))


@router.patch("/me", response_model=MeRead, summary="Edit your own profile")
async def update_me(
    body: UserSelfUpdate, principal: UserPrincipal, session: PrincipalSessionDep
) -> MeRead:
    return await _me_read(session, principal, await users.update_me(session, principal, body))


@router.get("/{user_id}", response_model=UserRead)
async def get_user(user_id: uuid.UUID, _: Reader, session: SessionDep) -> User:
    return await users.get_user(session, user_id)


@router.patch("/{user_id}", response_model=UserRead)
async def update_user(
    user_id: uuid.UUID, body: UserUpdate, principal: Writer, session: SessionDep
) -> User:
    return await users.update_user(session, principal, user_id, body)


@router.delete("/{user_id}", status_code=204)
async def delete_user(user_id: uuid.UUID, principal: Writer, session: SessionDep) -> None:
    await users.delete_user(session, principal, user_id)


@router.post("/{user_id}/restore", response_model=UserRead)
async def restore_user(user_id: uuid.UUID, principal: Writer, session: SessionDep) -> User:
    return await users.restore_user(session, principal, user_id)


@router.get("/{user_id}/permissions", response_model=Page[GrantRead], summary="Grants of a user")
async def list_grants(
    user_id: uuid.UUID, _: GrantManager, session: SessionDep, page: PageParamsDep
) -> Page[GrantRead]:
    result = await users.list_grants(session, user_id, page)
    return Page.of(result, GrantRead.model_validate)


@router.post("/{user_id}/permissions", response_model=GrantRead, status_code=201)
async def grant_permission(
    user_id: uuid.UUID, body: GrantCreate, principal: GrantManager, session: SessionDep
) -> UserPermission:
    return await users.grant_permission(session, principal, user_id, body)


@router.delete("/{user_id}/permissions/{grant_id}", status_code=204)
async def revoke_grant(
    user_id: uuid.UUID, grant_id: uuid.UUID, _: GrantManager, session: SessionDep
) -> None:
    await users.revoke_grant(session, user_id, grant_id)
