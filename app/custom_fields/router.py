"""/custom-fields: definitions CRUD + restore.

Anyone of the organization who reads tickets reads the definitions (a customer's form
needs them to show the fields); only holders of `custom_fields:manage` change them.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request

from app.auth.dependencies import IdempotencyKey, IncludeDeletedDep, claim_idempotency, require
from app.auth.permissions import Permission
from app.auth.principal import Principal
from app.custom_fields import service as custom_fields
from app.custom_fields.schemas import (
    CUSTOM_FIELD_CREATE_EXAMPLES,
    CustomFieldCreate,
    CustomFieldRead,
    CustomFieldUpdate,
)
from app.db.dependencies import SessionDep
from app.kit.pagination import Page, PageParamsDep
from app.models.custom_field import CustomField, EntityType

router = APIRouter(prefix="/custom-fields", tags=["custom fields"])

Reader = Annotated[Principal, Depends(require(Permission.TICKETS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.CUSTOM_FIELDS_MANAGE))]


@router.get("", response_model=Page[CustomFieldRead], summary="List custom field definitions")
async def list_custom_fields(
    _: Reader,
    session: SessionDep,
    page: PageParamsDep,
    include_deleted: IncludeDeletedDep,
    entity_type: Annotated[
        EntityType | None, Query(description="Only the fields of this kind of record.")
    ] = None,
) -> Page[CustomFieldRead]:
    """The organization's custom field definitions, ordered by `position`, then by
    creation.

    **Who:** every role (`tickets:read`): a customer's ticket form needs them.
    `include_deleted=true` adds deleted definitions and is for admins (`deleted:read`),
    403 for others.

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.
    """
    result = await custom_fields.list_custom_fields(
        session, page, entity_type=entity_type, include_deleted=include_deleted
    )
    return Page.of(result, CustomFieldRead.model_validate)


@router.post("", response_model=CustomFieldRead, status_code=201, summary="Define a custom field")
async def create_custom_field(
    body: Annotated[CustomFieldCreate, Body(openapi_examples=CUSTOM_FIELD_CREATE_EXAMPLES)],
    principal: Writer,
    session: SessionDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> CustomFieldRead:
    """Adds a field to a kind of record (`entity_type`, default `ticket`); records then
    carry its value under `name` in their `custom_fields`.

    **Who:** admins (`custom_fields:manage`).

    - `name` is unique per organization and entity type among live definitions: 409.
    - `choice` and `multi_choice` fields need `choices`; other types take none. Rules must
      fit the type: `min`/`max` for `number`; `min_length`, `max_length` and `regex` (RE2
      syntax, matched against the whole value) for `text`, `textarea`, `email` and `url`.
      Otherwise 422.
    - Values by type: text as strings, `number` a JSON number, `date` `YYYY-MM-DD`,
      `datetime` RFC 3339 with an offset (stored in UTC), `boolean`, `choice` one of the
      choices, `multi_choice` a list of them, `file`/`image` an attachment id, `json` any
      JSON up to 16 KiB.
    - `field_type` and `entity_type` cannot change later. `is_unique` is enforced for
      tickets.
    - Send an `Idempotency-Key` header to make retries safe: the same key with the same
      request within 24 h returns the first response and creates nothing; with another
      request it is a 409.
    """
    idempotency = await claim_idempotency(request, principal, session, idempotency_key)
    created = CustomFieldRead.model_validate(await custom_fields.create_custom_field(session, body))
    await idempotency.complete(201, created)
    return created


@router.get("/{field_id}", response_model=CustomFieldRead, summary="Get a custom field")
async def get_custom_field(field_id: uuid.UUID, _: Reader, session: SessionDep) -> CustomField:
    """One definition.

    **Who:** every role (`tickets:read`).

    **Errors:** 404 for another organization's definition, a missing or a deleted one.
    """
    return await custom_fields.get_custom_field(session, field_id)


@router.patch("/{field_id}", response_model=CustomFieldRead, summary="Update a custom field")
async def update_custom_field(
    field_id: uuid.UUID, body: CustomFieldUpdate, _: Writer, session: SessionDep
) -> CustomField:
    """Changes the fields sent and keeps the others; `validation_rules` replaces the
    rules as a whole (`{}` clears them). `field_type` and `entity_type` cannot change: a
    field of another type is a new field.

    **Who:** admins (`custom_fields:manage`).

    - New choices and rules apply to values written from now on; values records already
      hold are not checked again until they change.
    - 409 when `name` is taken by another live definition of the entity type; 422 when the
      choices or rules do not fit the field's type.
    - 404 for another organization's definition, a missing or a deleted one.
    """
    return await custom_fields.update_custom_field(session, field_id, body)


@router.delete("/{field_id}", status_code=204, summary="Delete a custom field (soft)")
async def delete_custom_field(field_id: uuid.UUID, _: Writer, session: SessionDep) -> None:
    """Soft-deletes the definition: it leaves lists and reads, and records keep their
    values under its name, carried along unchecked (a value may still be removed with
    `null`). `POST /custom-fields/{field_id}/restore` brings it back into use.

    **Who:** admins (`custom_fields:manage`).

    **Errors:** 404 for another organization's definition, a missing or an already deleted
    one.
    """
    await custom_fields.delete_custom_field(session, field_id)


@router.post(
    "/{field_id}/restore", response_model=CustomFieldRead, summary="Restore a custom field"
)
async def restore_custom_field(field_id: uuid.UUID, _: Writer, session: SessionDep) -> CustomField:
    """Undoes a soft delete; a live definition is returned unchanged.

    **Who:** admins (`custom_fields:manage`).

    **Errors:** 409 when another live definition took its name meanwhile; 404 for another
    organization's definition or a missing one.
    """
    return await custom_fields.restore_custom_field(session, field_id)
