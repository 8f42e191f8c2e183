"""Small, domain-free steps services repeat: fetch-or-404, apply a patch, restore."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import Base
from app.kit.errors import Conflict, NotFound

ModelT = TypeVar("ModelT", bound=Base)


async def get_or_404(
    session: AsyncSession,
    model: type[ModelT],
    record_id: uuid.UUID,
    *,
    include_deleted: bool = False,
    label: str | None = None,
) -> ModelT:
    """Through a query (not `session.get`), so the tenant and soft-delete rules apply;
    another organization's row is exactly as missing as a nonexistent one."""
    statement = sa.select(model).where(model.id == record_id)
    if include_deleted:
        statement = statement.execution_options(include_deleted=True)
    record = await session.scalar(statement)
    if record is None:
        raise NotFound(f"No such {label or model.__name__.lower()}.")
    return record


def apply_changes(record: Base, changes: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Set the given attributes; returns {field: (old, new)} for those that changed."""
    changed: dict[str, tuple[Any, Any]] = {}
    for name, value in changes.items():
        old = getattr(record, name)
        if old != value:
            setattr(record, name, value)
            changed[name] = (old, value)
    return changed


def field_error(
    field: str | tuple[str, ...], message: str, *, location: str = "body"
) -> dict[str, Any]:
    """One entry of a 422's `errors`, shaped like FastAPI's own (a nested field is a
    tuple: ("custom_fields", "sku"))."""
    path = list(field) if isinstance(field, tuple) else [field]
    return {"loc": [location, *path], "msg": message, "type": "value_error"}


async def check_unique(
    session: AsyncSession,
    model: type[Base],
    *criteria: sa.ColumnElement[bool],
    exclude: uuid.UUID | None = None,
    detail: str,
) -> None:
    """409 before the flush rather than an IntegrityError after it: the message can say
    which value clashes. Live rows only (the unique indexes are partial too); the
    database's index still settles a race between two requests."""
    statement = sa.select(model.id).where(*criteria)
    if exclude is not None:
        statement = statement.where(model.id != exclude)
    if await session.scalar(statement.limit(1)) is not None:
        raise Conflict(detail)
