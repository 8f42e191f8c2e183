"""Inbound channels (email, chat), the inbox of raw payloads they receive, and the
message ids that thread mail into tickets."""

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
from app.models.ticket import Priority


class ChannelType(enum.StrEnum):
    EMAIL = "email"
    CHAT = "chat"


class InboundStatus(enum.StrEnum):
    RECEIVED = "received"  # stored and committed, not processed yet (or being processed)
    CREATED = "created"
    THREADED = "threaded"
    DUPLICATE = "duplicate"  # the same message reached the organization another way
    IGNORED = "ignored"
    FAILED = "failed"


class ThreadReason(enum.StrEnum):
    """Which rule placed a message, in the order the rules are tried."""

    IN_REPLY_TO = "in_reply_to"
    REFERENCES = "references"
    SUBJECT_NUMBER = "subject_number"
    CONVERSATION = "conversation"
    NEW = "new"


class MessageDirection(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class Channel(TenantMixin, SoftDeleteMixin, TimestampMixin, Base):
    """An inbound endpoint. `secret` verifies Standard Webhooks signatures, so it must be
    kept readable (an HMAC key cannot be hashed); `previous_secret` stays valid until
    `previous_secret_expires_at` so senders can rotate without downtime. New tickets get
    `default_department_id` and `default_priority`; a deleted department leaves the
    channel without one (SET NULL on a hard delete)."""

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
        sa.CheckConstraint(
            "new_tickets_per_sender_per_hour BETWEEN 1 AND 10000",
            name="new_tickets_per_sender_per_hour_range",
        ),
        tenant_fk("default_department_id", "departments", ondelete="SET NULL"),
    )

    type: Mapped[ChannelType] = mapped_column(str_enum(ChannelType, "channel_type"))
    name: Mapped[str] = mapped_column(sa.String(255))
    address: Mapped[str | None] = mapped_column(sa.String(320))
    secret: Mapped[str] = mapped_column(sa.String(128))
    previous_secret: Mapped[str | None] = mapped_column(sa.String(128))
    previous_secret_expires_at: Mapped[datetime | None]
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    default_department_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    default_priority: Mapped[Priority] = mapped_column(
        str_enum(Priority, "channel_priority"),
        default=Priority.MEDIUM,
        server_default=Priority.MEDIUM.value,
    )
    # Where a chat ticket's public replies will be POSTed (the outbound half).
    reply_url: Mapped[str | None] = mapped_column(sa.String(2048))
    accept_unknown_senders: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    new_tickets_per_sender_per_hour: Mapped[int] = mapped_column(default=20, server_default="20")


class InboundMessage(TenantMixin, TimestampMixin, Base):
    """The inbox: every accepted payload, stored and committed before it is processed,
    so nothing accepted is ever lost; `created_at` is when it was received. The unique
    `external_id` (email Message-ID, or one derived from the message; chat event id)
    makes redelivery a no-op. `raw_body` is the payload exactly as signed; what
    processing made of it is `status`, `reason`, `thread_reason` and the ticket and
    comment (a follow-up of a closed ticket names it in `follow_up_of_ticket_id`)."""

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
        # Messages stored and never placed, for the inbox sweep.
        sa.Index(
            "ix_inbound_messages_received",
            "organization_id",
            "created_at",
            postgresql_where=sa.text("status = 'received'"),
            sqlite_where=sa.text("status = 'received'"),
        ),
        # The admin's inbox list, newest first, optionally by status.
        sa.Index("ix_inbound_messages_channel", "organization_id", "channel_id", "id"),
        sa.Index(
            "ix_inbound_messages_channel_status",
            "organization_id",
            "channel_id",
            "status",
            "id",
        ),
        # A ticket's messages: the channel and conversation its replies go out through.
        sa.Index("ix_inbound_messages_ticket", "organization_id", "ticket_id", "id"),
        # New tickets per sender and hour (the channel's limit).
        sa.Index(
            "ix_inbound_messages_sender_created",
            "organization_id",
            "channel_id",
            "sender_email",
            "created_at",
            postgresql_where=sa.text("status = 'created'"),
            sqlite_where=sa.text("status = 'created'"),
        ),
        sa.CheckConstraint("attempts >= 0", name="attempts_nonneg"),
        tenant_fk("channel_id", "channels"),
        tenant_fk("ticket_id", "tickets", ondelete="SET NULL"),
        tenant_fk("comment_id", "ticket_comments", ondelete="SET NULL"),
        tenant_fk("follow_up_of_ticket_id", "tickets", ondelete="SET NULL"),
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
    reason: Mapped[str | None] = mapped_column(sa.Text)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    comment_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    processed_at: Mapped[datetime | None]
    thread_reason: Mapped[ThreadReason | None] = mapped_column(
        str_enum(ThreadReason, "inbound_thread_reason")
    )
    follow_up_of_ticket_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    sender_email: Mapped[str | None] = mapped_column(sa.String(320))
    subject: Mapped[str | None] = mapped_column(sa.Text)
    # The threading headers as received (ids without angle brackets).
    message_id: Mapped[str | None] = mapped_column(sa.String(998))
    in_reply_to: Mapped[str | None] = mapped_column(sa.String(998))
    reference_ids: Mapped[list[str]] = mapped_column(default=list, server_default="[]")


class TicketMessageId(TenantMixin, CreatedAtMixin, Base):
    """Which ticket a mail Message-ID belongs to: every message an inbound channel put
    on a ticket (`inbound`), and the outgoing mail of agents' replies (`outbound`), so
    a reply naming either in In-Reply-To or References threads into that ticket, and
    our own mail coming back is recognised. One ticket per id and organization. Goes
    with its ticket on a hard delete."""

    __tablename__ = "ticket_message_ids"
    __table_args__ = (
        sa.UniqueConstraint("organization_id", "message_id"),
        sa.Index("ix_ticket_message_ids_ticket", "organization_id", "ticket_id"),
        tenant_fk("ticket_id", "tickets"),
        tenant_fk("comment_id", "ticket_comments", ondelete="SET NULL"),
        tenant_fk("inbound_message_id", "inbound_messages", ondelete="SET NULL"),
    )

    message_id: Mapped[str] = mapped_column(sa.String(998))
    ticket_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    comment_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    inbound_message_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    direction: Mapped[MessageDirection] = mapped_column(
        str_enum(MessageDirection, "message_direction")
    )
