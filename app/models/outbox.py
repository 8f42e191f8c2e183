"""The transactional outbox: domain events written in the same transaction as the change."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, CreatedAtMixin
from app.db.tenancy import TenantMixin

HELD = sa.text("dispatched_at IS NULL AND relay_after IS NOT NULL")


class OutboxEvent(TenantMixin, CreatedAtMixin, Base):
    """An event is durable the moment its transaction commits; relays read undispatched
    rows in id (UUIDv7, i.e. time) order and stamp `dispatched_at` when done.

    An event whose handlers fail is held back, not dropped: `relay_error` says why,
    `relay_attempts` counts the failures and `relay_after` is when the relay tries it
    again; until then later events of its aggregate wait too, so their order holds."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        sa.Index(
            "ix_outbox_events_undispatched",
            "organization_id",
            "id",
            postgresql_where=sa.text("dispatched_at IS NULL"),
            sqlite_where=sa.text("dispatched_at IS NULL"),
        ),
        sa.Index("ix_outbox_events_aggregate", "organization_id", "aggregate_type", "aggregate_id"),
        sa.Index(
            "ix_outbox_events_held",
            "organization_id",
            "aggregate_id",
            "id",
            postgresql_where=HELD,
            sqlite_where=HELD,
        ),
    )

    event_type: Mapped[str] = mapped_column(sa.String(100))
    aggregate_type: Mapped[str] = mapped_column(sa.String(50))
    aggregate_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    dispatched_at: Mapped[datetime | None]
    # A server default only: journal rows chained as CTEs get no Python-side defaults.
    relay_attempts: Mapped[int] = mapped_column(server_default="0")
    relay_after: Mapped[datetime | None]
    relay_error: Mapped[str | None] = mapped_column(sa.Text)
