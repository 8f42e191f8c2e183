"""/sla-policies: the targets tickets must meet, CRUD + restore + a due-time preview."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.auth.dependencies import IdempotencyKey, IncludeDeletedDep, claim_idempotency, require
from app.auth.permissions import Permission
from app.auth.principal import Principal
from app.db.dependencies import SessionDep, UnitOfWorkDep
from app.kit.pagination import Page, PageParamsDep
from app.kit.schemas import Instant
from app.models.sla import SLAPolicy
from app.models.ticket import Priority
from app.sla_policies import service as sla_policies
from app.sla_policies.schemas import SLAPolicyCreate, SLAPolicyRead, SLAPolicyUpdate, SLAPreview

router = APIRouter(prefix="/sla-policies", tags=["SLA policies"])

Reader = Annotated[Principal, Depends(require(Permission.SLA_READ))]
Writer = Annotated[Principal, Depends(require(Permission.SLA_MANAGE))]


@router.get("", response_model=Page[SLAPolicyRead], summary="List SLA policies")
async def list_sla_policies(
    _: Reader,
    session: SessionDep,
    page: PageParamsDep,
    include_deleted: IncludeDeletedDep,
    is_active: Annotated[
        bool | None, Query(description="Only active (`true`) or inactive (`false`) policies.")
    ] = None,
) -> Page[SLAPolicyRead]:
    """The organization's SLA policies in the order tickets are matched against them:
    by `position`, then by creation.

    **Who:** agents, managers and admins (`sla:read`). `include_deleted=true` adds
    soft-deleted policies and is for admins (`deleted:read`), 403 for others.

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.
    """
    result = await sla_policies.list_sla_policies(
        session, page, is_active=is_active, include_deleted=include_deleted
    )
    return Page.of(result, SLAPolicyRead.model_validate)


@router.post("", response_model=SLAPolicyRead, status_code=201, summary="Create an SLA policy")
async def create_sla_policy(
    body: SLAPolicyCreate,
    principal: Writer,
    session: SessionDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> SLAPolicyRead:
    """Creates a policy. A ticket gets the first active policy by `position` whose
    `conditions` admit it.

    **Who:** admins (`sla:manage`).

    - `first_response_minutes`, `resolution_minutes` and the optional
      `next_reply_minutes` are whole minutes of business time, at least 1 (integers:
      `true` or `"60"` are refused).
    - `conditions`: `priorities`, `customer_tiers` and `channels`, each a list of their
      values without repeats; an empty or left-out list admits every value.
    - `business_hours_id` names a live business-hours calendar of the organization (422
      otherwise); without one the clock runs 24/7, as it does when the calendar is
      later deleted.
    - `escalations`: `{"at_percent": 1-100, "action": "notify" | "reassign" |
      "raise_priority", "target": "first_response" | "next_reply" | "resolution"}`,
      each (target, at_percent, action) once. `notify` tells the assignee (or the
      department), `reassign` returns the ticket to its department's queue,
      `raise_priority` raises it one step. An escalation on `next_reply` waits for a
      policy with `next_reply_minutes`.
    - Names need not be unique. `is_active=false` keeps a policy from matching without
      deleting it.
    - Anything else wrong is a 422 whose `errors` name the field.
    - Send an `Idempotency-Key` header to make retries safe: the same key with the same
      request within 24 h returns the first response and creates nothing; with another
      request it is a 409.
    """
    idempotency = await claim_idempotency(request, principal, session, idempotency_key)
    created = SLAPolicyRead.model_validate(await sla_policies.create_sla_policy(session, body))
    await idempotency.complete(201, created)
    return created


@router.get("/{sla_policy_id}", response_model=SLAPolicyRead, summary="Get an SLA policy")
async def get_sla_policy(sla_policy_id: uuid.UUID, _: Reader, session: SessionDep) -> SLAPolicy:
    """One SLA policy.

    **Who:** agents, managers and admins (`sla:read`).

    **Errors:** 404 for another organization's policy, a missing or a deleted one.
    """
    return await sla_policies.get_sla_policy(session, sla_policy_id)


@router.patch("/{sla_policy_id}", response_model=SLAPolicyRead, summary="Update an SLA policy")
async def update_sla_policy(
    sla_policy_id: uuid.UUID, body: SLAPolicyUpdate, _: Writer, uow: UnitOfWorkDep
) -> SLAPolicy:
    """Changes the fields sent and keeps the others; `conditions` and `escalations` are
    replaced whole. `next_reply_minutes` and `business_hours_id` may be cleared with
    `null`.

    **Who:** admins (`sla:manage`).

    **Errors:** 422 for a field the create would refuse, and for a `business_hours_id`
    that names no live calendar of the organization; 404 for another organization's
    policy, a missing or a deleted one.

    A change of `*_minutes`, `business_hours_id` or `escalations` is applied to the open
    tickets the policy measures right after the commit (a job): their due times move,
    and each ticket's SLA events gain a `recompute` event with the reason
    `policy_changed`.
    """
    return await sla_policies.update_sla_policy(uow, sla_policy_id, body)


@router.delete("/{sla_policy_id}", status_code=204, summary="Delete an SLA policy (soft)")
async def delete_sla_policy(sla_policy_id: uuid.UUID, _: Writer, session: SessionDep) -> None:
    """Soft-deletes the policy: it leaves lists, reads and matching until it is restored
    (`POST /sla-policies/{sla_policy_id}/restore`).

    **Who:** admins (`sla:manage`).

    **Errors:** 404 for another organization's policy, a missing or an already deleted
    one.
    """
    await sla_policies.delete_sla_policy(session, sla_policy_id)


@router.post(
    "/{sla_policy_id}/restore", response_model=SLAPolicyRead, summary="Restore an SLA policy"
)
async def restore_sla_policy(sla_policy_id: uuid.UUID, _: Writer, session: SessionDep) -> SLAPolicy:
    """Undoes a soft delete; a live policy is returned unchanged. Policy names are not
    unique, so a restore never clashes.

    **Who:** admins (`sla:manage`).

    **Errors:** 404 for another organization's policy or a missing one.
    """
    return await sla_policies.restore_sla_policy(session, sla_policy_id)


@router.get(
    "/{sla_policy_id}/preview",
    response_model=SLAPreview,
    response_model_exclude_unset=True,
    summary="Preview an SLA policy's due times",
)
async def preview_sla_policy(
    sla_policy_id: uuid.UUID,
    _: Reader,
    session: SessionDep,
    start: Annotated[
        Instant,
        Query(description="When the ticket would open: an ISO 8601 instant with an offset."),
    ],
    priority: Annotated[
        Priority | None,
        Query(description="Also answer `matches`: whether the policy admits this priority."),
    ] = None,
) -> SLAPreview:
    """The due times the policy would give a ticket opened at `start`, counted in its
    business-hours calendar — or 24/7 when it has none or the calendar was deleted.
    Inactive policies are previewed too. Nothing is written.

    - Each `*_due_at` is `start` plus the target's minutes of business time: a start
      outside hours waits for the next interval; a target used up exactly at an
      interval's end is due at that end. `next_reply_due_at` is null when the policy has
      no `next_reply_minutes`.
    - An escalation is due after `ceil(at_percent / 100 * target minutes)` minutes of
      business time (rounded **up** to a whole minute: 75 % of 10 minutes is 8). Its
      `due_at` is null when its target is `next_reply` and the policy has none.
    - A due time is null, too, when the calendar has no business time to reach it in
      (e.g. every interval on a closed date) within 30 years.
    - `priority` given: `matches` says whether the policy's priority condition admits it
      (customer tier and channel are not considered, nor `is_active`); without
      `priority` there is no `matches`.

    **Who:** agents, managers and admins (`sla:read`).

    **Errors:** 422 for a `start` without an offset; 404 for another organization's
    policy, a missing or a deleted one.
    """
    return await sla_policies.preview_sla_policy(session, sla_policy_id, start, priority)
