"""/organizations (platform superusers) and /organizations/current (the tenant's own)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query

from app.auth.dependencies import require
from app.auth.permissions import Permission
from app.auth.principal import Principal
from app.db.dependencies import SessionDep, SystemSessionDep
from app.kit.pagination import Page, PageParamsDep
from app.models.organization import Organization
from app.organizations import service as organizations
from app.organizations.schemas import (
    CurrentOrganizationUpdate,
    OrganizationCreate,
    OrganizationCreated,
    OrganizationRead,
    OrganizationUpdate,
)
from app.users.schemas import UserRead

router = APIRouter(prefix="/organizations", tags=["organizations"])

Platform = Annotated[Principal, Depends(require(Permission.ORGANIZATIONS_MANAGE))]
OwnReader = Annotated[Principal, Depends(require(Permission.ORGANIZATION_READ))]
OwnWriter = Annotated[Principal, Depends(require(Permission.ORGANIZATION_WRITE))]


# /current is declared before /{organization_id} so it is never read as an id.
@router.get("/current", response_model=OrganizationRead, summary="Get your organization")
async def get_current(_: OwnReader, session: SessionDep) -> Organization:
    """The organization of the caller's credential.

    **Who:** agents, managers and admins (`organization:read`).
    """
    return await organizations.current_organization(session)


@router.patch("/current", response_model=OrganizationRead, summary="Update your organization")
async def update_current(
    body: CurrentOrganizationUpdate, _: OwnWriter, session: SessionDep
) -> Organization:
    """Changes the fields sent and keeps the others: `name`, `domain` (`null` clears it),
    `subscription_tier` and `settings` (replaced as a whole; at most 8 levels deep and
    64 KiB). The slug, the organization's login `client_id`, is the platform's to change.

    **Who:** admins (`organization:write`).
    """
    organization = await organizations.current_organization(session)
    return await organizations.update_organization(session, organization, body.changes())


@router.get("", response_model=Page[OrganizationRead], summary="List organizations (platform)")
async def list_organizations(
    _: Platform,
    system: SystemSessionDep,
    page: PageParamsDep,
    include_deleted: Annotated[bool, Query(description="List deleted ones too.")] = False,
) -> Page[OrganizationRead]:
    """Every organization of the platform, oldest first; `include_deleted=true` adds
    soft-deleted ones.

    **Who:** platform superusers (`organizations:manage`); 403 for everyone else.

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.
    """
    result = await organizations.list_organizations(system, page, include_deleted=include_deleted)
    return Page.of(result, OrganizationRead.model_validate)


@router.post(
    "",
    response_model=OrganizationCreated,
    status_code=201,
    summary="Create an organization (platform)",
)
async def create_organization(
    body: OrganizationCreate, _: Platform, system: SystemSessionDep
) -> OrganizationCreated:
    """Creates an organization and its first admin user in one step; the admin logs in
    with the organization's `slug` as `client_id`.

    **Who:** platform superusers (`organizations:manage`); 403 for everyone else.

    **Errors:** 409 when a live organization has the slug.
    """
    organization, admin = await organizations.create_organization(system, body)
    return OrganizationCreated(
        **OrganizationRead.model_validate(organization).model_dump(),
        admin=UserRead.model_validate(admin),
    )


@router.get(
    "/{organization_id}", response_model=OrganizationRead, summary="Get an organization (platform)"
)
async def get_organization(
    organization_id: uuid.UUID, _: Platform, system: SystemSessionDep
) -> Organization:
    """One organization.

    **Who:** platform superusers (`organizations:manage`); 403 for everyone else.

    **Errors:** 404 for a missing or soft-deleted organization.
    """
    return await organizations.get_organization(system, organization_id)


@router.patch(
    "/{organization_id}",
    response_model=OrganizationRead,
    summary="Update an organization (platform)",
)
async def update_organization(
    organization_id: uuid.UUID, body: OrganizationUpdate, _: Platform, system: SystemSessionDep
) -> Organization:
    """Changes the fields sent and keeps the others, the `slug` included: a new slug is
    the `client_id` every user of the organization logs in with from then on.

    **Who:** platform superusers (`organizations:manage`); 403 for everyone else.

    **Errors:** 409 when a live organization has the new slug; 404 for a missing or
    soft-deleted organization.
    """
    organization = await organizations.get_organization(system, organization_id)
    return await organizations.update_organization(system, organization, body.changes())


@router.delete("/current", include_in_schema=False)
async def delete_current() -> None:
    """The caller's own organization is not deleted through `/current`: a 405 naming the
    methods it has, rather than `/{organization_id}` refusing "current" as an id."""
    raise HTTPException(status_code=405)


@router.delete(
    "/{organization_id}", status_code=204, summary="Delete an organization (soft, platform)"
)
async def delete_organization(
    organization_id: uuid.UUID, _: Platform, system: SystemSessionDep
) -> None:
    """Soft-deletes the organization: every user and API key of it is locked out at once
    (their next request is a 401) and its data is kept.
    `POST /organizations/{organization_id}/restore` lets them back in.

    **Who:** platform superusers (`organizations:manage`); 403 for everyone else.

    **Errors:** 404 for a missing or already deleted organization.
    """
    await organizations.delete_organization(system, organization_id)


@router.post(
    "/{organization_id}/restore",
    response_model=OrganizationRead,
    summary="Restore an organization (platform)",
)
async def restore_organization(
    organization_id: uuid.UUID, _: Platform, system: SystemSessionDep
) -> Organization:
    """Undoes a soft delete: the organization's users and API keys work again. A live
    organization is returned unchanged.

    **Who:** platform superusers (`organizations:manage`); 403 for everyone else.

    **Errors:** 409 when a live organization took the slug meanwhile; 404 for a missing
    organization.
    """
    return await organizations.restore_organization(system, organization_id)
