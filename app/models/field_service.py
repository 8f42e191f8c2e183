"""Field service: technicians and the work orders they carry out."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, TimestampMixin
from app.db.tenancy import SoftDeleteMixin, TenantMixin, not_deleted, tenant_fk
from app.db.types import str_enum
from app.models.ticket import Priority


class WorkOrderStatus(enum.StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Technician(TenantMixin, SoftDeleteMixin, TimestampMixin, Base):
    """A field profile of a staff user (one per user among non-deleted profiles)."""

    __tablename__ = "technicians"
    __table_args__ = (
        sa.Index(
            "uq_technicians_user",
            "organization_id",
            "user_id",
            unique=True,
            postgresql_where=not_deleted("technicians"),
            sqlite_where=not_deleted("technicians"),
        ),
        sa.CheckConstraint("max_daily_work_orders >= 1", name="max_daily_positive"),
        sa.CheckConstraint("hourly_rate IS NULL OR hourly_rate >= 0", name="rate_nonneg"),
        sa.CheckConstraint("latitude IS NULL OR latitude BETWEEN -90 AND 90", name="latitude"),
        sa.CheckConstraint("longitude IS NULL OR longitude BETWEEN -180 AND 180", name="longitude"),
        tenant_fk("user_id", "users"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    employee_id: Mapped[str | None] = mapped_column(sa.String(50))
    skills: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    certifications: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    service_areas: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    hourly_rate: Mapped[Decimal | None] = mapped_column(sa.Numeric(10, 2))
    is_available: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    max_daily_work_orders: Mapped[int] = mapped_column(default=8, server_default="8")
    latitude: Mapped[Decimal | None] = mapped_column(sa.Numeric(9, 6))
    longitude: Mapped[Decimal | None] = mapped_column(sa.Numeric(9, 6))


class WorkOrder(TenantMixin, SoftDeleteMixin, TimestampMixin, Base):
    """An on-site job, optionally raised from a ticket. It outlives its ticket and its
    technician (SET NULL); it goes with its customer (CASCADE), like a ticket does."""

    __tablename__ = "work_orders"
    __table_args__ = (
        sa.Index("uq_work_orders_number", "organization_id", "work_order_number", unique=True),
        sa.Index(
            "ix_work_orders_technician_schedule",
            "organization_id",
            "technician_id",
            "scheduled_at",
            postgresql_where=not_deleted("work_orders"),
            sqlite_where=not_deleted("work_orders"),
        ),
        sa.Index(
            "ix_work_orders_status",
            "organization_id",
            "status",
            "created_at",
            postgresql_where=not_deleted("work_orders"),
            sqlite_where=not_deleted("work_orders"),
        ),
        sa.Index("ix_work_orders_ticket", "organization_id", "ticket_id"),
        sa.Index("ix_work_orders_customer", "organization_id", "customer_id"),
        sa.CheckConstraint(
            "scheduled_end_at IS NULL OR scheduled_at IS NULL OR scheduled_end_at > scheduled_at",
            name="schedule_order",
        ),
        sa.CheckConstraint(
            "estimated_duration_minutes IS NULL OR estimated_duration_minutes > 0",
            name="duration_positive",
        ),
        sa.CheckConstraint(
            "completed_at IS NULL OR status = 'completed'", name="completed_at_status"
        ),
        tenant_fk("ticket_id", "tickets", ondelete="SET NULL"),
        tenant_fk("technician_id", "technicians", ondelete="SET NULL"),
        tenant_fk("customer_id", "users"),
    )

    work_order_number: Mapped[str] = mapped_column(sa.String(20))
    title: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    status: Mapped[WorkOrderStatus] = mapped_column(
        str_enum(WorkOrderStatus, "work_order_status"),
        default=WorkOrderStatus.PENDING,
        server_default=WorkOrderStatus.PENDING.value,
    )
    priority: Mapped[Priority] = mapped_column(
        str_enum(Priority, "work_order_priority"),
        default=Priority.MEDIUM,
        server_default=Priority.MEDIUM.value,
    )
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    technician_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    customer_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    address: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    scheduled_at: Mapped[datetime | None]
    scheduled_end_at: Mapped[datetime | None]
    estimated_duration_minutes: Mapped[int | None]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    notes: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
