"""Data retention: how long each kind of record is kept, and how it leaves."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, TimestampMixin
from app.db.tenancy import SoftDeleteMixin, TenantMixin, not_deleted
from app.db.types import str_enum


class RetentionType(enum.StrEnum):
    TICKETS = "tickets"
    COMMENTS = "comments"
    ATTACHMENTS = "attachments"
    LOGS = "logs"
    NOTIFICATIONS = "notifications"
    REPORTS = "reports"


class DataRetentionPolicy(TenantMixin, SoftDeleteMixin, TimestampMixin, Base):
    """One live policy per retention type and organization."""

    __tablename__ = "data_retention_policies"
    __table_args__ = (
        sa.Index(
            "uq_data_retention_policies_type",
            "organization_id",
            "retention_type",
            unique=True,
            postgresql_where=not_deleted("data_retention_policies"),
            sqlite_where=not_deleted("data_retention_policies"),
        ),
        sa.CheckConstraint("retention_period_days >= 1", name="period_positive"),
    )

    retention_type: Mapped[RetentionType] = mapped_column(str_enum(RetentionType, "retention_type"))
    retention_period_days: Mapped[int]
    archive_before_delete: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    anonymize_personal_data: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    last_run_at: Mapped[datetime | None]
