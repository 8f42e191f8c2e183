"""Departments: names unique per organization (case-insensitive, live rows); the
manager, when set, is a staff user of the same organization."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.departments.schemas import DepartmentCreate, DepartmentUpdate
from app.kit.errors import ValidationFailed
from app.kit.records import apply_changes, check_unique, field_error, get_or_404
from app.models.user import STAFF_ROLES, Department, User


def departments_query(
    *, q: str | None = None, include_deleted: bool = False
) -> sa.Select[Department]:
    statement = sa.select(Department)
    if q:
        statement = statement.where(
            sa.func.lower(Department.name).contains(q.lower(), autoescape=True)
        )
    if include_deleted:
        statement = statement.execution_options(include_deleted=True)
    return statement


async def get_department(
    session: AsyncSession, department_id: uuid.UUID, *, include_deleted: bool = False
) -> Department:
    return await get_or_404(session, Department, department_id, include_deleted=include_deleted)


async def create_department(session: AsyncSession, data: DepartmentCreate) -> Department:
    await _check_name_free(session, data.name)
    await _check_manager(session, data.manager_id)
    department = Department(**data.model_dump())
    session.add(department)
    await session.flush()
    return department


async def update_department(
    session: AsyncSession, department_id: uuid.UUID, data: DepartmentUpdate
) -> Department:
    department = await get_department(session, department_id)
    changes = data.changes()
    if "name" in changes:
        await _check_name_free(session, changes["name"], exclude=department.id)
    if changes.get("manager_id") is not None:
        await _check_manager(session, changes["manager_id"])
    apply_changes(department, changes)
    await session.flush()
    return department


async def delete_department(session: AsyncSession, department_id: uuid.UUID) -> None:
    """Members keep their `department_id`; they reappear under it on restore."""
    (await get_department(session, department_id)).soft_delete()
    await session.flush()


async def restore_department(session: AsyncSession, department_id: uuid.UUID) -> Department:
    department = await get_department(session, department_id, include_deleted=True)
    if department.is_deleted:
        await _check_name_free(session, department.name, exclude=department.id)
        department.restore()
        await session.flush()
    return department


async def _check_name_free(
    session: AsyncSession, name: str, *, exclude: uuid.UUID | None = None
) -> None:
    await check_unique(
        session,
        Department,
        sa.func.lower(Department.name) == name.lower(),
        exclude=exclude,
        detail=f"A department named '{name}' already exists.",
    )


async def _check_manager(session: AsyncSession, manager_id: uuid.UUID | None) -> None:
    if manager_id is None:
        return
    staff = await session.scalar(
        sa.select(User.id).where(User.id == manager_id, User.role.in_(STAFF_ROLES))
    )
    if staff is None:
        raise ValidationFailed(
            "The manager must be a staff user of this organization.",
            errors=[field_error("manager_id", "no such staff user")],
        )
