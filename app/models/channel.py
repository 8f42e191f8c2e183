"""Inbound channels (email, chat) and the inbox of raw payloads they receive."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, TimestampMixin
from app.db.tenancy import SoftDeleteMixin, TenantMixin, tenant_fk
from app.db.types import str_enum


class ChannelType(enum.StrEnum):
    EMAIL = "email"
    CHAT = "chat"


class InboundStatus(enum.StrEnum):
    RECEIVED = "received"
    CREATED = "created"
    THREADED = "threaded"
    IGNORED = "ignored"
    FAILED = "failed"


class Channel(TenantMixin, SoftDeleteMixin, TimestampMixin, Base):
    """An inbound endpoint. `secret` verifies Standard Webhooks signatures, so it must be
    kept readable (an HMAC key cannot be hashed); `previous_secret` stays valid until
    `previous_secret_expires_at` so senders can rotate without downtime."""

    __tablename__ = "channels"
    __table_args__ = (
        sa.Index(
            "uq_channels_address",
            "organization_id",
            "type",
            sa.text("lower(address)"),
            unique=True,
            postgresql_where=sa.text("channels.deleted_at IS NULL AND address IS NOT NULL"),
            sqlite_where=sa.text("channels.deleted_at IS NULL AND address IS NOT NULL"),
        ),
    )

    type: Mapped[ChannelType] = mapped_column(str_enum(ChannelType, "channel_type"))
    name: Mapped[str] = mapped_column(sa.String(255))
    address: Mapped[str | None] = mapped_column(sa.String(320))
    secret: Mapped[str] = mapped_column(sa.String(128))
    previous_secret: Mapped[str | None] = mapped_column(sa.String(128))
    previous_secret_expires_at: Mapped[datetime | None]
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")


class InboundMessage(TenantMixin, TimestampMixin, Base):
    """The inbox: every accepted payload, stored and committed before it is processed,
    so nothing accepted is ever lost. `external_id` (email Message-ID, chat event id)
    makes redelivery a no-op; the message ids also thread replies into tickets."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "channel_id", "external_id"),
        sa.Index("ix_inbound_messages_external_id", "organization_id", "external_id"),
        sa.Index(
            "ix_inbound_messages_conversation",
            "organization_id",
            "channel_id",
            "conversation_id",
        ),
        sa.Index(
            "ix_inbound_messages_failed",
            "organization_id",
            "created_at",
            postgresql_where=sa.text("status = 'failed'"),
            sqlite_where=sa.text("status = 'failed'"),
        ),
        sa.CheckConstraint("attempts >= 0", name="attempts_nonneg"),
        tenant_fk("channel_id", "channels"),
        tenant_fk("ticket_id", "tickets", ondelete="SET NULL"),
        tenant_fk("comment_id", "ticket_comments", ondelete="SET NULL"),
    )

    channel_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    external_id: Mapped[str] = mapped_column(sa.String(998))
    conversation_id: Mapped[str | None] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(255))
    raw_body: Mapped[bytes] = mapped_column(sa.LargeBinary)
    status: Mapped[InboundStatus] = mapped_column(
        str_enum(InboundStatus, "inbound_status"),
        default=InboundStatus.RECEIVED,
        server_default=InboundStatus.RECEIVED.value,
    )
    error: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    comment_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    processed_at: Mapped[datetime | None]
