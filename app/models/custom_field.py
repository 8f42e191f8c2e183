"""Custom field definitions an organization adds to its tickets and other records."""

from __future__ import annotations

import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, TimestampMixin
from app.db.tenancy import SoftDeleteMixin, TenantMixin, not_deleted
from app.db.types import str_enum


class FieldType(enum.StrEnum):
    TEXT = "text"
    TEXTAREA = "textarea"
    NUMBER = "number"
    EMAIL = "email"
    URL = "url"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    MULTI_CHOICE = "multi_choice"
    FILE = "file"
    IMAGE = "image"
    JSON = "json"


class EntityType(enum.StrEnum):
    TICKET = "ticket"
    USER = "user"
    CUSTOMER = "customer"
    WORK_ORDER = "work_order"


class CustomField(TenantMixin, SoftDeleteMixin, TimestampMixin, Base):
    """`name` is the key in a record's `custom_fields` object, unique per organization
    and entity type among non-deleted definitions."""

    __tablename__ = "custom_fields"
    __table_args__ = (
        sa.Index(
            "uq_custom_fields_name",
            "organization_id",
            "entity_type",
            "name",
            unique=True,
            postgresql_where=not_deleted("custom_fields"),
            sqlite_where=not_deleted("custom_fields"),
        ),
    )

    name: Mapped[str] = mapped_column(sa.String(100))
    label: Mapped[str] = mapped_column(sa.String(255), default="", server_default="")
    field_type: Mapped[FieldType] = mapped_column(str_enum(FieldType, "field_type"))
    entity_type: Mapped[EntityType] = mapped_column(
        str_enum(EntityType, "entity_type"),
        default=EntityType.TICKET,
        server_default=EntityType.TICKET.value,
    )
    is_required: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    is_unique: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    choices: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    validation_rules: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    help_text: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    position: Mapped[int] = mapped_column(default=0, server_default="0")
