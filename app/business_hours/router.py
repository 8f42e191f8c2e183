"""/business-hours: the calendars SLA clocks run on, CRUD + restore."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.auth.dependencies import IdempotencyKey, IncludeDeletedDep, claim_idempotency, require
from app.auth.permissions import Permission
from app.auth.principal import Principal
from app.business_hours import service as business_hours
from app.business_hours.schemas import BusinessHoursCreate, BusinessHoursRead, BusinessHoursUpdate
from app.db.dependencies import SessionDep, UnitOfWorkDep
from app.kit.pagination import Page, PageParamsDep
from app.models.sla import BusinessHours

router = APIRouter(prefix="/business-hours", tags=["business hours"])

Reader = Annotated[Principal, Depends(require(Permission.SLA_READ))]
Writer = Annotated[Principal, Depends(require(Permission.SLA_MANAGE))]


@router.get("", response_model=Page[BusinessHoursRead], summary="List business hours calendars")
async def list_business_hours(
    _: Reader,
    session: SessionDep,
    page: PageParamsDep,
    include_deleted: IncludeDeletedDep,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Name contains.")
    ] = None,
) -> Page[BusinessHoursRead]:
    """The organization's business hours calendars, oldest first. `q` matches part of the
    name.

    **Who:** agents, managers and admins (`sla:read`). `include_deleted=true` adds
    soft-deleted calendars and is for admins (`deleted:read`), 403 for others.

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.
    """
    result = await business_hours.list_business_hours(
        session, page, q=q, include_deleted=include_deleted
    )
    return Page.of(result, BusinessHoursRead.model_validate)


@router.post(
    "",
    response_model=BusinessHoursRead,
    status_code=201,
    summary="Create a business hours calendar",
)
async def create_business_hours(
    body: BusinessHoursCreate,
    principal: Writer,
    session: SessionDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> BusinessHoursRead:
    """Creates a calendar: the time SLA policies that name it count in. Business time is
    the real time inside an interval, on a day that is not closed.

    **Who:** admins (`sla:manage`).

    - `name` is unique among live calendars, ignoring case: 409.
    - `timezone` is an IANA name (`Europe/Berlin`); the intervals and holidays are local
      to it.
    - `intervals`: at least one; `weekday` 0 (Monday) to 6 (Sunday), `start` and `end`
      as `HH:MM` with `end` after `start` (`24:00` ends at midnight; a night shift is two
      intervals). Intervals of one weekday may touch but not overlap. Returned sorted by
      weekday and start.
    - `holidays`: local ISO dates (`2025-12-24`) on which no interval counts; stored
      sorted, each once.
    - `holiday_country` (ISO 3166-1 alpha-2) adds that country's public holidays, observed
      days included; `holiday_subdivision` (e.g. `BY` in `DE`) its regional ones and
      needs the country.
    - Anything else wrong is a 422 whose `errors` name the field.
    - Send an `Idempotency-Key` header to make retries safe: the same key with the same
      request within 24 h returns the first response and creates nothing; with another
      request it is a 409.
    """
    idempotency = await claim_idempotency(request, principal, session, idempotency_key)
    created = BusinessHoursRead.model_validate(
        await business_hours.create_business_hours(session, body)
    )
    await idempotency.complete(201, created)
    return created


@router.get(
    "/{business_hours_id}",
    response_model=BusinessHoursRead,
    summary="Get a business hours calendar",
)
async def get_business_hours(
    business_hours_id: uuid.UUID, _: Reader, session: SessionDep
) -> BusinessHours:
    """One business hours calendar.

    **Who:** agents, managers and admins (`sla:read`).

    **Errors:** 404 for another organization's calendar, a missing or a deleted one.
    """
    return await business_hours.get_business_hours(session, business_hours_id)


@router.patch(
    "/{business_hours_id}",
    response_model=BusinessHoursRead,
    summary="Update a business hours calendar",
)
async def update_business_hours(
    business_hours_id: uuid.UUID, body: BusinessHoursUpdate, _: Writer, uow: UnitOfWorkDep
) -> BusinessHours:
    """Changes the fields sent and keeps the others; `intervals` and `holidays` are
    replaced whole. `holiday_country` and `holiday_subdivision` may be cleared with
    `null`.

    **Who:** admins (`sla:manage`).

    **Errors:** 422 for a field the create would refuse, and when the subdivision left
    by the change (the one sent, or the stored one) is not one of the holiday country's
    or has no country; 409 when another live calendar has the name (ignoring case); 404
    for another organization's calendar, a missing or a deleted one.

    A change of `timezone`, `intervals`, `holidays` or the holiday country is applied to
    the open tickets of every policy counting in the calendar right after the commit (a
    job), each with a `recompute` SLA event (`calendar_changed`).
    """
    return await business_hours.update_business_hours(uow, business_hours_id, body)


@router.delete(
    "/{business_hours_id}", status_code=204, summary="Delete a business hours calendar (soft)"
)
async def delete_business_hours(
    business_hours_id: uuid.UUID, _: Writer, uow: UnitOfWorkDep
) -> None:
    """Soft-deletes the calendar: it leaves lists and reads until it is restored
    (`POST /business-hours/{business_hours_id}/restore`); SLA policies that name it keep
    their `business_hours_id` and count 24/7 meanwhile, and their open tickets are
    recomputed after the commit (and again on restore).

    **Who:** admins (`sla:manage`).

    **Errors:** 404 for another organization's calendar, a missing or an already deleted
    one.
    """
    await business_hours.delete_business_hours(uow, business_hours_id)


@router.post(
    "/{business_hours_id}/restore",
    response_model=BusinessHoursRead,
    summary="Restore a business hours calendar",
)
async def restore_business_hours(
    business_hours_id: uuid.UUID, _: Writer, uow: UnitOfWorkDep
) -> BusinessHours:
    """Undoes a soft delete; a live calendar is returned unchanged.

    **Who:** admins (`sla:manage`).

    **Errors:** 409 when a live calendar took its name meanwhile; 404 for another
    organization's calendar or a missing one.
    """
    return await business_hours.restore_business_hours(uow, business_hours_id)
