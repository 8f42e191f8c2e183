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


@router.get("", response_model=Page[DepartmentRead])
async def list_departments(
    _: Reader,
    session: SessionDep,
    page: PageParamsDep,
    include_deleted: IncludeDeletedDep,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Name contains.")
    ] = None,
) -> Page[DepartmentRead]:
    result = await departments.list_departments(session, page, q=q, include_deleted=include_deleted)
    return Page.of(result, DepartmentRead.model_validate)


@router.post("", response_model=DepartmentRead, status_code=201)
async def create_department(
    body: DepartmentCreate,
    principal: Writer,
    session: SessionDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> DepartmentRead:
    idempotency = await claim_idempotency(request, principal, session, idempotency_key)
    created = DepartmentRead.model_validate(await departments.create_department(session, body))
    await idempotency.complete(201, created)
    return created


@router.get("/{department_id}", response_model=DepartmentRead)
async def get_department(department_id: uuid.UUID, _: Reader, session: SessionDep) -> Department:
    return await departments.get_department(session, department_id)


@router.patch("/{department_id}", response_model=DepartmentRead)
async def update_department(
    department_id: uuid.UUID, body: DepartmentUpdate, _: Writer, session: SessionDep
) -> Department:
    return await departments.update_department(session, department_id, body)


@router.delete("/{department_id}", status_code=204)
async def delete_department(department_id: uuid.UUID, _: Writer, session: SessionDep) -> None:
    await departments.delete_department(session, department_id)


@router.post("/{department_id}/restore", response_model=DepartmentRead)
async def restore_department(
    department_id: uuid.UUID, _: Writer, session: SessionDep
) -> Department:
    return await departments.restore_department(session, department_id)
