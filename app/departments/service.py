"""Departments: names unique per organization (case-insensitive, live rows); the
manager, when set, is a staff user of the same organization."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.departments.repository import DepartmentRepository
from app.departments.schemas import DepartmentCreate, DepartmentUpdate
from app.kit.errors import ValidationFailed
from app.kit.pagination import PageParams, PageResult
from app.kit.records import apply_changes, field_error
from app.kit.repository import Record
from app.models.user import Department


async def list_departments(
    session: AsyncSession, page: PageParams, *, q: str | None = None, include_deleted: bool = False
) -> PageResult[Record]:
    return await DepartmentRepository(session).list_page(page, q=q, include_deleted=include_deleted)


async def get_department(
    session: AsyncSession, department_id: uuid.UUID, *, include_deleted: bool = False
) -> Department:
    return await DepartmentRepository(session).get_or_404(
        department_id, include_deleted=include_deleted
    )


async def create_department(session: AsyncSession, data: DepartmentCreate) -> Department:
    departments = DepartmentRepository(session)
    await departments.check_name_free(data.name)
    await _check_manager(departments, data.manager_id)
    department = Department(**data.model_dump())
    session.add(department)
    await session.flush()
    return department


async def update_department(
    session: AsyncSession, department_id: uuid.UUID, data: DepartmentUpdate
) -> Department:
    departments = DepartmentRepository(session)
    department = await departments.get_or_404(department_id)
    changes = data.changes()
    if "name" in changes:
        await departments.check_name_free(changes["name"], exclude=department.id)
    if changes.get("manager_id") is not None:
        await _check_manager(departments, changes["manager_id"])
    apply_changes(department, changes)
    await session.flush()
    return department


async def delete_department(session: AsyncSession, department_id: uuid.UUID) -> None:
    """Members keep their `department_id`; they reappear under it on restore."""
    (await get_department(session, department_id)).soft_delete()
    await session.flush()


async def restore_department(session: AsyncSession, department_id: uuid.UUID) -> Department:
    departments = DepartmentRepository(session)
    department = await departments.get_or_404(department_id, include_deleted=True)
    if department.is_deleted:
        await departments.check_name_free(department.name, exclude=department.id)
        department.restore()
        await session.flush()
    return department


async def _check_manager(departments: DepartmentRepository, manager_id: uuid.UUID | None) -> None:
    if manager_id is None:
        return
    if not await departments.is_staff(manager_id):
        raise ValidationFailed(
            "The manager must be a staff user of this organization.",
            errors=[field_error("manager_id", "no such staff user")],
        )
