"""/departments: CRUD + restore."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.auth.dependencies import IdempotencyKey, IncludeDeletedDep, claim_idempotency, require
from app.auth.permissions import Permission
from app.auth.principal import Principal
from app.db.dependencies import SessionDep
from app.departments import service as departments
from app.departments.schemas import DepartmentCreate, DepartmentRead, DepartmentUpdate
from app.kit.pagination import Page, PageParamsDep
from app.models.user import Department

router = APIRouter(prefix="/departments", tags=["departments"])

Reader = Annotated[Principal, Depends(require(Permission.DEPARTMENTS_READ))]
Writer = Annotated[Principal, Depends(require(Permission.DEPARTMENTS_WRITE))]


@router.get("", response_model=Page[DepartmentRead], summary="List departments")
async def list_departments(
    _: Reader,
    session: SessionDep,
    page: PageParamsDep,
    include_deleted: IncludeDeletedDep,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Name contains.")
    ] = None,
) -> Page[DepartmentRead]:
    """The organization's departments, oldest first. `q` matches part of the name.

    **Who:** agents, managers and admins (`departments:read`). `include_deleted=true` adds
    soft-deleted departments and is for admins (`deleted:read`), 403 for others.

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.
    """
    result = await departments.list_departments(session, page, q=q, include_deleted=include_deleted)
    return Page.of(result, DepartmentRead.model_validate)


@router.post("", response_model=DepartmentRead, status_code=201, summary="Create a department")
async def create_department(
    body: DepartmentCreate,
    principal: Writer,
    session: SessionDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> DepartmentRead:
    """Creates a department; staff join it through their `department_id` and tickets are
    routed to it through theirs.

    **Who:** managers and admins (`departments:write`).

    - `name` is unique among live departments, ignoring case: 409.
    - `manager_id` must be an agent, manager or admin of the organization: 422.
    - Send an `Idempotency-Key` header to make retries safe: the same key with the same
      request within 24 h returns the first response and creates nothing; with another
      request it is a 409.
    """
    idempotency = await claim_idempotency(request, principal, session, idempotency_key)
    created = DepartmentRead.model_validate(await departments.create_department(session, body))
    await idempotency.complete(201, created)
    return created


@router.get("/{department_id}", response_model=DepartmentRead, summary="Get a department")
async def get_department(department_id: uuid.UUID, _: Reader, session: SessionDep) -> Department:
    """One department.

    **Who:** agents, managers and admins (`departments:read`).

    **Errors:** 404 for another organization's department, a missing or a deleted one.
    """
    return await departments.get_department(session, department_id)


@router.patch("/{department_id}", response_model=DepartmentRead, summary="Update a department")
async def update_department(
    department_id: uuid.UUID, body: DepartmentUpdate, _: Writer, session: SessionDep
) -> Department:
    """Changes the fields sent and keeps the others; `email` and `manager_id` may be
    cleared with `null`.

    **Who:** managers and admins (`departments:write`).

    **Errors:** 409 when another live department has the name (ignoring case); 422 when
    `manager_id` is not a staff user of the organization; 404 for another organization's
    department, a missing or a deleted one.
    """
    return await departments.update_department(session, department_id, body)


@router.delete("/{department_id}", status_code=204, summary="Delete a department (soft)")
async def delete_department(department_id: uuid.UUID, _: Writer, session: SessionDep) -> None:
    """Soft-deletes the department: it leaves lists and reads, while its members and
    tickets keep their `department_id` and reappear under it on restore
    (`POST /departments/{department_id}/restore`).

    **Who:** managers and admins (`departments:write`).

    **Errors:** 404 for another organization's department, a missing or an already deleted
    one.
    """
    await departments.delete_department(session, department_id)


@router.post(
    "/{department_id}/restore", response_model=DepartmentRead, summary="Restore a department"
)
async def restore_department(
    department_id: uuid.UUID, _: Writer, session: SessionDep
) -> Department:
    """Undoes a soft delete; a live department is returned unchanged.

    **Who:** managers and admins (`departments:write`).

    **Errors:** 409 when a live department took its name meanwhile; 404 for another
    organization's department or a missing one.
    """
    return await departments.restore_department(session, department_id)
