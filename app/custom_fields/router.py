"""/custom-fields: definitions CRUD + restore.

Anyone of the organization who reads tickets reads the definitions (a customer's form
needs them to show the fields); only holders of `custom_fields:manage` change them.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.auth.dependencies import IdempotencyKey, IncludeDeletedDep, claim_idempotency, require
from app.auth.permissions import Permission
from app.auth.principal import Principal
from app.custom_fields import service as custom_fields
from app.custom_fields.schemas import CustomFieldCreate, CustomFieldRead, CustomFieldUpdate
from app.db.dependencies import SessionDep
from app.kit.pagination import Page, PageParamsDep
from app.models.custom_field import CustomField, EntityType

router = APIRouter(prefix="/custom-fields", tags=["custom fields"])

Reader = Annotated[Principal, Depends(require(Permission.TICKETS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.CUSTOM_FIELDS_MANAGE))]


@router.get("", response_model=Page[CustomFieldRead])
async def list_custom_fields(
    _: Reader,
    session: SessionDep,
    page: PageParamsDep,
    include_deleted: IncludeDeletedDep,
    entity_type: Annotated[
        EntityType | None, Query(description="Only the fields of this kind of record.")
    ] = None,
) -> Page[CustomFieldRead]:
    result = await custom_fields.list_custom_fields(
        session, page, entity_type=entity_type, include_deleted=include_deleted
    )
    return Page.of(result, CustomFieldRead.model_validate)


@router.post("", response_model=CustomFieldRead, status_code=201)
async def create_custom_field(
    body: CustomFieldCreate,
    principal: Writer,
    session: SessionDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> CustomFieldRead:
    idempotency = await claim_idempotency(request, principal, session, idempotency_key)
    created = CustomFieldRead.model_validate(await custom_fields.create_custom_field(session, body))
    await idempotency.complete(201, created)
    return created


@router.get("/{field_id}", response_model=CustomFieldRead)
async def get_custom_field(field_id: uuid.UUID, _: Reader, session: SessionDep) -> CustomField:
    return await custom_fields.get_custom_field(session, field_id)


@router.patch("/{field_id}", response_model=CustomFieldRead)
async def update_custom_field(
    field_id: uuid.UUID, body: CustomFieldUpdate, _: Writer, session: SessionDep
) -> CustomField:
    return await custom_fields.update_custom_field(session, field_id, body)


@router.delete("/{field_id}", status_code=204)
async def delete_custom_field(field_id: uuid.UUID, _: Writer, session: SessionDep) -> None:
    await custom_fields.delete_custom_field(session, field_id)


@router.post("/{field_id}/restore", response_model=CustomFieldRead)
async def restore_custom_field(field_id: uuid.UUID, _: Writer, session: SessionDep) -> CustomField:
    return await custom_fields.restore_custom_field(session, field_id)
