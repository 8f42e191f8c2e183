"""Declarative base: naming convention, UUIDv7 ids, database-set timestamps."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from uuid_utils.compat import uuid7

from app.db.types import JSONType, UTCDateTime, UtcNow

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_id() -> uuid.UUID:
    """Time-ordered ids keep B-tree inserts at the right edge and never expose a count."""
    return uuid7()


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[str]: JSONType,
        list[dict[str, Any]]: JSONType,
    }

    id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, primary_key=True, default=new_id, sort_order=-100
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # Database-set values (created_at, updated_at, generated columns) come back with
        # the INSERT/UPDATE through RETURNING, instead of expiring and lazy-loading later
        # — which async code cannot do, e.g. while a response is being serialised.
        return {"eager_defaults": True}


class CreatedAtMixin:
    """For append-only rows (history, outbox, attempts): written once, never updated."""

    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(),
        default=UtcNow(),
        server_default=sa.func.now(),
        nullable=False,
        sort_order=100,
    )


class TimestampMixin(CreatedAtMixin):
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(),
        default=UtcNow(),
        server_default=sa.func.now(),
        onupdate=UtcNow(),
        nullable=False,
        sort_order=101,
    )
