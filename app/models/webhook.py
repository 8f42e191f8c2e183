"""Outbound webhooks: subscriptions, one delivery per (subscription, event), attempts."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, CreatedAtMixin, TimestampMixin
from app.db.tenancy import SoftDeleteMixin, TenantMixin, tenant_fk
from app.db.types import str_enum


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WebhookSubscription(TenantMixin, SoftDeleteMixin, TimestampMixin, Base):
    """`failing_since` marks the first failure of the current streak; a streak of a day
    disables the endpoint (`disabled_at`), which is separate from deletion. `events`
    holds event types, or `*` for every one. During a rotation's overlap
    (`previous_secret_expires_at`) deliveries carry a signature by the previous secret
    too, so a receiver can switch at its own pace."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (
        sa.Index(
            "ix_webhook_subscriptions_active",
            "organization_id",
            postgresql_where=sa.text(
                "webhook_subscriptions.deleted_at IS NULL AND is_active AND disabled_at IS NULL"
            ),
            sqlite_where=sa.text(
                "webhook_subscriptions.deleted_at IS NULL AND is_active AND disabled_at IS NULL"
            ),
        ),
        tenant_fk("created_by_id", "users", ondelete="SET NULL"),
    )

    url: Mapped[str] = mapped_column(sa.String(2048))
    description: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    events: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    secret: Mapped[str] = mapped_column(sa.String(128))
    previous_secret: Mapped[str | None] = mapped_column(sa.String(128))
    previous_secret_expires_at: Mapped[datetime | None]
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    failing_since: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)


class WebhookDelivery(TenantMixin, TimestampMixin, Base):
    """One event for one subscription. `payload` is the exact body sent (and signed).

    A `pending` delivery is due at `next_attempt_at`; a worker sending it pushes that
    forward by a lease first, so nobody else takes it meanwhile. `aggregate_id` (the
    ticket) orders delivery: of one subscription's pending deliveries of one ticket,
    only the one of the oldest event (`event_id`, time-ordered) may be sent.
    `retrying_since` starts the retry window (creation, or the last replay) and
    `attempts_before_window` counts the attempts made before it, so a replay's retries
    start the backoff over; the `last_*` columns repeat the newest attempt for lists."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "subscription_id", "event_id"),
        sa.Index(
            "ix_webhook_deliveries_subscription", "organization_id", "subscription_id", "created_at"
        ),
        sa.Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
        sa.Index(
            "ix_webhook_deliveries_subscription_due",
            "organization_id",
            "subscription_id",
            "next_attempt_at",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
        sa.Index(
            "ix_webhook_deliveries_aggregate_order",
            "organization_id",
            "subscription_id",
            "aggregate_id",
            "event_id",
            postgresql_where=sa.text("status = 'pending'"),
            sqlite_where=sa.text("status = 'pending'"),
        ),
        sa.CheckConstraint("attempt_count >= 0", name="attempt_count_nonneg"),
        tenant_fk("subscription_id", "webhook_subscriptions"),
    )

    subscription_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    # No foreign key to the outbox: events are pruned after relay, deliveries are kept.
    event_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    event_type: Mapped[str] = mapped_column(sa.String(100))
    aggregate_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    payload: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus, "delivery_status"),
        default=DeliveryStatus.PENDING,
        server_default=DeliveryStatus.PENDING.value,
    )
    attempt_count: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    retrying_since: Mapped[datetime | None]
    attempts_before_window: Mapped[int] = mapped_column(default=0, server_default="0")
    last_attempt_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(sa.Text)


class WebhookDeliveryAttempt(TenantMixin, CreatedAtMixin, Base):
    __tablename__ = "webhook_delivery_attempts"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "delivery_id", "attempt_number"),
        tenant_fk("delivery_id", "webhook_deliveries"),
    )

    delivery_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    attempt_number: Mapped[int]
    status_code: Mapped[int | None]
    response_excerpt: Mapped[str | None] = mapped_column(sa.Text)
    error: Mapped[str | None] = mapped_column(sa.Text)
    duration_ms: Mapped[int | None]
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
