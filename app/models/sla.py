"""SLA policies and the business-hours calendars their clocks run on."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, TimestampMixin
from app.db.tenancy import SoftDeleteMixin, TenantMixin, not_deleted, tenant_fk


class BusinessHours(TenantMixin, SoftDeleteMixin, TimestampMixin, Base):
    """A calendar: IANA `timezone`, weekly `intervals`
    (`[{"weekday": 0-6, "start": "HH:MM", "end": "HH:MM"}]`), explicit `holidays`
    (local ISO dates) and optionally a country's public holidays (`holidays` package)."""

    __tablename__ = "business_hours"
    __table_args__ = (
        sa.Index(
            "uq_business_hours_name",
            "organization_id",
            sa.text("lower(name)"),
            unique=True,
            postgresql_where=not_deleted("business_hours"),
            sqlite_where=not_deleted("business_hours"),
        ),
    )

    name: Mapped[str] = mapped_column(sa.String(255))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC", server_default="UTC")
    intervals: Mapped[list[dict[str, Any]]] = mapped_column(default=list, server_default="[]")
    holidays: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    holiday_country: Mapped[str | None] = mapped_column(sa.String(2))
    holiday_subdivision: Mapped[str | None] = mapped_column(sa.String(10))


class SLAPolicy(TenantMixin, SoftDeleteMixin, TimestampMixin, Base):
    """Targets a ticket must meet. The first active policy by `position` whose
    `conditions` match a ticket applies. `is_active` switches a policy off without
    deleting it (a business flag, separate from soft deletion). Removing a calendar
    leaves the policy on 24/7 time."""

    __tablename__ = "sla_policies"
    __table_args__ = (
        sa.Index(
            "ix_sla_policies_matching",
            "organization_id",
            "position",
            postgresql_where=sa.text("sla_policies.deleted_at IS NULL AND is_active"),
            sqlite_where=sa.text("sla_policies.deleted_at IS NULL AND is_active"),
        ),
        sa.CheckConstraint("first_response_minutes >= 1", name="first_response_positive"),
        sa.CheckConstraint("resolution_minutes >= 1", name="resolution_positive"),
        sa.CheckConstraint(
            "next_reply_minutes IS NULL OR next_reply_minutes >= 1", name="next_reply_positive"
        ),
        tenant_fk("business_hours_id", "business_hours", ondelete="SET NULL"),
    )

    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    position: Mapped[int] = mapped_column(default=0, server_default="0")
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    conditions: Mapped[dict[str, Any]] = mapped_column(
        default=lambda: {"priorities": [], "customer_tiers": [], "channels": []},
        server_default='{"priorities": [], "customer_tiers": [], "channels": []}',
    )
    first_response_minutes: Mapped[int]
    next_reply_minutes: Mapped[int | None]
    resolution_minutes: Mapped[int]
    business_hours_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    escalations: Mapped[list[dict[str, Any]]] = mapped_column(default=list, server_default="[]")
