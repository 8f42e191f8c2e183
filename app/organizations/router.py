"""/organizations (platform superusers) and /organizations/current (the tenant's own)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

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
@router.get("/current", response_model=OrganizationRead, summary="The caller's organization")
async def get_current(_: OwnReader, session: SessionDep) -> Organization:
    return await organizations.current_organization(session)


@router.patch("/current", response_model=OrganizationRead)
async def update_current(
    body: CurrentOrganizationUpdate, _: OwnWriter, session: SessionDep
) -> Organization:
    organization = await organizations.current_organization(session)
    return await organizations.update_organization(session, organization, body.changes())


@router.get("", response_model=Page[OrganizationRead], summary="All organizations (platform)")
async def list_organizations(
    _: Platform,
    system: SystemSessionDep,
    page: PageParamsDep,
    include_deleted: Annotated[bool, Query(description="List deleted ones too.")] = False,
) -> Page[OrganizationRead]:
    result = await organizations.list_organizations(system, page, include_deleted=include_deleted)
    return Page.of(result, OrganizationRead.model_validate)


@router.post("", response_model=OrganizationCreated, status_code=201)
async def create_organization(
    body: OrganizationCreate, _: Platform, system: SystemSessionDep
) -> OrganizationCreated:
    organization, admin = await organizations.create_organization(system, body)
    return OrganizationCreated(
        **OrganizationRead.model_validate(organization).model_dump(),
        admin=UserRead.model_validate(admin),
    )


@router.get("/{organization_id}", response_model=OrganizationRead)
async def get_organization(
    organization_id: uuid.UUID, _: Platform, system: SystemSessionDep
) -> Organization:
    return await organizations.get_organization(system, organization_id)


@router.patch("/{organization_id}", response_model=OrganizationRead)
async def update_organization(
    organization_id: uuid.UUID, body: OrganizationUpdate, _: Platform, system: SystemSessionDep
) -> Organization:
    organization = await organizations.get_organization(system, organization_id)
    return await organizations.update_organization(system, organization, body.changes())


@router.delete("/{organization_id}", status_code=204, summary="Soft-delete: locks out its users")
async def delete_organization(
    organization_id: uuid.UUID, _: Platform, system: SystemSessionDep
) -> None:
    await organizations.delete_organization(system, organization_id)


@router.post("/{organization_id}/restore", response_model=OrganizationRead)
async def restore_organization(
    organization_id: uuid.UUID, _: Platform, system: SystemSessionDep
) -> Organization:
    return await organizations.restore_organization(system, organization_id)
