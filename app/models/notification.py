"""In-app notifications: what the system tells one user (an SLA escalation today)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, CreatedAtMixin
from app.db.tenancy import TenantMixin, tenant_fk


class Notification(TenantMixin, CreatedAtMixin, Base):
    """One message for one user, listed newest first at `GET /notifications` until the
    user marks it read (`read_at`). `data` carries what the message is about (for an
    escalation: the ticket, target, due time). Deleted with its user; a deleted ticket
    leaves the message without its link."""

    __tablename__ = "notifications"
    __table_args__ = (
        sa.Index("ix_notifications_user", "organization_id", "user_id", "id"),
        sa.Index(
            "ix_notifications_unread",
            "organization_id",
            "user_id",
            "id",
            postgresql_where=sa.text("read_at IS NULL"),
            sqlite_where=sa.text("read_at IS NULL"),
        ),
        tenant_fk("user_id", "users"),
        tenant_fk("ticket_id", "tickets", ondelete="SET NULL"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    kind: Mapped[str] = mapped_column(sa.String(50))
    title: Mapped[str] = mapped_column(sa.String(255))
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    read_at: Mapped[datetime | None]
