"""Ticket aggregate: Ticket, TicketComment, TicketAttachment, TicketHistory, the change
feed and the SLA event log."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, CreatedAtMixin, TimestampMixin
from app.db.tenancy import SoftDeleteMixin, TenantMixin, tenant_fk
from app.db.types import str_enum
from app.sla.clock import EscalationAction
from app.sla.clock import EventKind as SLAEventKind
from app.sla.clock import Target as SLATarget

if TYPE_CHECKING:
    from app.models.user import User


class TicketStatus(enum.StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Priority(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


PRIORITY_RANK = {Priority.LOW: 1, Priority.MEDIUM: 2, Priority.HIGH: 3, Priority.URGENT: 4}


class TicketChannel(enum.StrEnum):
    WEB = "web"
    EMAIL = "email"
    CHAT = "chat"
    PHONE = "phone"
    API = "api"


class SLAStatus(enum.StrEnum):
    FIRST_RESPONSE_DUE = "first_response_due"
    RESOLUTION_DUE = "resolution_due"
    PAUSED = "paused"
    BREACHED = "breached"
    FULFILLED = "fulfilled"


class CommentType(enum.StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"


class ReplyDelivery(enum.StrEnum):
    """Where a staff reply going out to the customer stands (`app.channels.outgoing`)."""

    QUEUED = "queued"  # waiting for its next attempt (the first, or a retry)
    SENT = "sent"
    FAILED = "failed"  # given up: a permanent refusal, or every retry failed


# Full-text search (PostgreSQL) reads `search_document`: a stored generated tsvector
# column of tickets and of comments ('simple' config: no stemming, tenants write in
# every language), with GIN indexes led by organization_id — all created by migration
# 0007 and deliberately not mapped here (SQLite has no tsvector; it searches with LIKE).
# A stored column, unlike an expression index, lets the app role's queries use the
# index under row-level security (see the migration).


def _live(table: str, *extra: str) -> dict[str, Any]:
    clause = sa.text(" AND ".join((f"{table}.deleted_at IS NULL", *extra)))
    return {"postgresql_where": clause, "sqlite_where": clause}


class Ticket(TenantMixin, SoftDeleteMixin, TimestampMixin, Base):
    """A customer request.

    On delete (hard, i.e. retention or tenant removal only): the customer's tickets go
    with the customer (CASCADE); a removed agent, creator, department or SLA policy
    leaves the ticket in place with the reference nulled (SET NULL). `version` is the
    optimistic-concurrency counter, with one mechanism: every change of a ticket's row
    is `TicketRepository.write`, one UPDATE that names the version its writer read
    (under the row lock) and bumps it; `If-Match` and `ETag` speak of it. Each list
    filter and sort of the contract has an index that leads with `organization_id` and
    skips deleted rows."""

    __tablename__ = "tickets"
    __table_args__ = (
        sa.Index("uq_tickets_ticket_number", "organization_id", "ticket_number", unique=True),
        sa.Index("ix_tickets_created", "organization_id", "created_at", "id", **_live("tickets")),
        sa.Index("ix_tickets_updated", "organization_id", "updated_at", "id", **_live("tickets")),
        sa.Index(
            "ix_tickets_status", "organization_id", "status", "created_at", **_live("tickets")
        ),
        sa.Index(
            "ix_tickets_priority",
            "organization_id",
            "priority_rank",
            "created_at",
            **_live("tickets"),
        ),
        sa.Index(
            "ix_tickets_channel", "organization_id", "channel", "created_at", **_live("tickets")
        ),
        sa.Index(
            "ix_tickets_assigned_agent",
            "organization_id",
            "assigned_agent_id",
            "created_at",
            **_live("tickets"),
        ),
        sa.Index(
            "ix_tickets_customer",
            "organization_id",
            "customer_id",
            "created_at",
            **_live("tickets"),
        ),
        sa.Index(
            "ix_tickets_department",
            "organization_id",
            "department_id",
            "created_at",
            **_live("tickets"),
        ),
        sa.Index(
            "ix_tickets_sla_breach",
            "organization_id",
            "created_at",
            **_live("tickets", "sla_breach"),
        ),
        sa.Index(
            "ix_tickets_resolution_due",
            "organization_id",
            "resolution_due_at",
            **_live("tickets"),
        ),
        # The SLA timer queue: workers claim the earliest due rows of it.
        sa.Index(
            "ix_tickets_sla_next_deadline",
            "sla_next_deadline",
            "organization_id",
            postgresql_where=sa.text("sla_next_deadline IS NOT NULL AND deleted_at IS NULL"),
            sqlite_where=sa.text("sla_next_deadline IS NOT NULL AND deleted_at IS NULL"),
        ),
        sa.Index(
            "ix_tickets_tags",
            "tags",
            postgresql_using="gin",
            postgresql_ops={"tags": "jsonb_path_ops"},
        ).ddl_if(dialect="postgresql"),
        sa.Index(
            "ix_tickets_subject_trgm",
            "organization_id",
            "subject",
            postgresql_using="gin",
            postgresql_ops={"subject": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
        sa.CheckConstraint("length(trim(subject)) > 0", name="subject_not_blank"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
        sa.CheckConstraint(
            "resolved_at IS NULL OR status IN ('resolved', 'closed')", name="resolved_at_status"
        ),
        sa.CheckConstraint("closed_at IS NULL OR status = 'closed'", name="closed_at_status"),
        tenant_fk("customer_id", "users"),
        tenant_fk("assigned_agent_id", "users", ondelete="SET NULL"),
        tenant_fk("created_by_id", "users", ondelete="SET NULL"),
        tenant_fk("department_id", "departments", ondelete="SET NULL"),
        tenant_fk("sla_policy_id", "sla_policies", ondelete="SET NULL"),
    )

    ticket_number: Mapped[str] = mapped_column(sa.String(20))
    subject: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    status: Mapped[TicketStatus] = mapped_column(
        str_enum(TicketStatus, "ticket_status"),
        default=TicketStatus.NEW,
        server_default=TicketStatus.NEW.value,
    )
    priority: Mapped[Priority] = mapped_column(
        str_enum(Priority, "ticket_priority"),
        default=Priority.MEDIUM,
        server_default=Priority.MEDIUM.value,
    )
    # Sorting by priority means by urgency, not alphabetically; derived by the database
    # so it can never disagree with `priority`.
    priority_rank: Mapped[int] = mapped_column(
        sa.SmallInteger,
        sa.Computed(
            "CASE priority WHEN 'low' THEN 1 WHEN 'medium' THEN 2 "
            "WHEN 'high' THEN 3 WHEN 'urgent' THEN 4 END",
            persisted=True,
        ),
    )
    channel: Mapped[TicketChannel] = mapped_column(
        str_enum(TicketChannel, "ticket_channel"),
        default=TicketChannel.WEB,
        server_default=TicketChannel.WEB.value,
    )
    customer_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    assigned_agent_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    department_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    sla_policy_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    tags: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    sla_breach: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    sla_status: Mapped[SLAStatus | None] = mapped_column(str_enum(SLAStatus, "sla_status"))
    first_response_due_at: Mapped[datetime | None]
    next_reply_due_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    time_to_first_response: Mapped[int | None] = mapped_column(sa.Integer)
    time_to_resolution: Mapped[int | None] = mapped_column(sa.Integer)
    # The earliest breach or escalation point not yet acted on (`app.sla`); null when
    # none is pending. Derived from the SLA event log, like the due fields above.
    sla_next_deadline: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    __mapper_args__ = {"eager_defaults": True}

    comments: Mapped[list[TicketComment]] = relationship(
        primaryjoin="Ticket.id == TicketComment.ticket_id",
        foreign_keys="TicketComment.ticket_id",
        back_populates="ticket",
        lazy="raise",
        order_by="TicketComment.created_at",
    )
    attachments: Mapped[list[TicketAttachment]] = relationship(
        primaryjoin="Ticket.id == TicketAttachment.ticket_id",
        foreign_keys="TicketAttachment.ticket_id",
        back_populates="ticket",
        lazy="raise",
    )
    history: Mapped[list[TicketHistory]] = relationship(
        primaryjoin="Ticket.id == TicketHistory.ticket_id",
        foreign_keys="TicketHistory.ticket_id",
        back_populates="ticket",
        lazy="raise",
        order_by="TicketHistory.created_at",
    )
    customer: Mapped[User] = relationship(
        primaryjoin="Ticket.customer_id == User.id",
        foreign_keys=[customer_id],
        lazy="raise",
        viewonly=True,
    )


class TicketComment(TenantMixin, TimestampMixin, Base):
    """A reply or an internal note. Comments are never deleted on their own (the thread is
    a record); they go with their ticket. The author's removal takes their comments
    (seed: CASCADE) — users are soft-deleted in practice, so authors stay."""

    __tablename__ = "ticket_comments"
    __table_args__ = (
        sa.Index("ix_ticket_comments_ticket", "organization_id", "ticket_id", "created_at"),
        sa.CheckConstraint("length(content) > 0", name="content_not_empty"),
        # The replies whose next attempt is due; the sweep reads every tenant's, and the
        # index holds queued replies only, so reading all of it stays cheap.
        sa.Index(
            "ix_ticket_comments_delivery_due",
            "organization_id",
            "delivery_next_attempt_at",
            postgresql_where=sa.text("delivery_status = 'queued'"),
            sqlite_where=sa.text("delivery_status = 'queued'"),
        ),
        tenant_fk("ticket_id", "tickets"),
        tenant_fk("author_id", "users"),
    )

    ticket_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    author_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    content: Mapped[str] = mapped_column(sa.Text)
    comment_type: Mapped[CommentType] = mapped_column(
        str_enum(CommentType, "comment_type"),
        default=CommentType.PUBLIC,
        server_default=CommentType.PUBLIC.value,
    )
    has_attachments: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # A staff reply sent to the customer by the ticket's channel; null when the comment
    # leaves nothing (internal notes, customers' comments, tickets of no channel).
    delivery_status: Mapped[ReplyDelivery | None] = mapped_column(
        str_enum(ReplyDelivery, "delivery_status")
    )
    delivery_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    delivery_error: Mapped[str | None] = mapped_column(sa.Text)
    delivery_sent_at: Mapped[datetime | None]
    delivery_next_attempt_at: Mapped[datetime | None]
    # The mail's own Message-ID, chosen at its first attempt and kept for every retry.
    outgoing_message_id: Mapped[str | None] = mapped_column(sa.String(998))

    ticket: Mapped[Ticket] = relationship(
        primaryjoin="Ticket.id == TicketComment.ticket_id",
        foreign_keys=[ticket_id],
        back_populates="comments",
        lazy="raise",
    )
    author: Mapped[User] = relationship(
        primaryjoin="TicketComment.author_id == User.id",
        foreign_keys=[author_id],
        lazy="raise",
        viewonly=True,
    )


class TicketAttachment(TenantMixin, TimestampMixin, Base):
    """A stored file. `storage_key` is generated by us; the client's `file_name` is kept
    for display only and never used as a path. `content_type` is sniffed from the bytes."""

    __tablename__ = "ticket_attachments"
    __table_args__ = (
        sa.Index("ix_ticket_attachments_ticket", "organization_id", "ticket_id", "created_at"),
        sa.UniqueConstraint("organization_id", "storage_key"),
        sa.CheckConstraint("file_size >= 0", name="file_size_nonneg"),
        sa.CheckConstraint("download_count >= 0", name="download_count_nonneg"),
        tenant_fk("ticket_id", "tickets"),
        tenant_fk("comment_id", "ticket_comments"),
        tenant_fk("uploaded_by_id", "users"),
    )

    ticket_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    comment_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    uploaded_by_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    file_name: Mapped[str] = mapped_column(sa.String(255))
    file_size: Mapped[int] = mapped_column(sa.BigInteger)
    content_type: Mapped[str] = mapped_column(sa.String(255))
    storage_key: Mapped[str] = mapped_column(sa.String(255))
    sha256: Mapped[str] = mapped_column(sa.String(64))
    is_public: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    download_count: Mapped[int] = mapped_column(default=0, server_default="0")

    ticket: Mapped[Ticket] = relationship(
        primaryjoin="Ticket.id == TicketAttachment.ticket_id",
        foreign_keys=[ticket_id],
        back_populates="attachments",
        lazy="raise",
    )


class TicketHistory(TenantMixin, CreatedAtMixin, Base):
    """One row per change. Append-only. `user_id` is null for the system (SLA worker,
    automation); removing a user keeps the audit trail and nulls the actor (a cascade
    would erase history, which an audit log must not do)."""

    __tablename__ = "ticket_history"
    __table_args__ = (
        sa.Index("ix_ticket_history_ticket", "organization_id", "ticket_id", "created_at"),
        tenant_fk("ticket_id", "tickets"),
        tenant_fk("user_id", "users", ondelete="SET NULL"),
    )

    ticket_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    user_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    field: Mapped[str] = mapped_column(sa.String(100))
    old_value: Mapped[str | None] = mapped_column(sa.Text)
    new_value: Mapped[str | None] = mapped_column(sa.Text)

    ticket: Mapped[Ticket] = relationship(
        primaryjoin="Ticket.id == TicketHistory.ticket_id",
        foreign_keys=[ticket_id],
        back_populates="history",
        lazy="raise",
    )


class ChangeKind(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


class TicketChange(TenantMixin, CreatedAtMixin, Base):
    """The change feed: one row per write to a ticket, in the writing transaction.

    `xact_id` is the PostgreSQL transaction id of that write. The feed serves only rows
    of transactions older than every one still running (`pg_snapshot_xmin`), in
    (xact_id, id) order — so a transaction that commits late is never skipped by a
    cursor that has moved on. NULL on SQLite, where writers are serialised and the
    time-ordered id alone gives commit order."""

    __tablename__ = "ticket_changes"
    __table_args__ = (
        sa.Index("ix_ticket_changes_feed", "organization_id", "xact_id", "id"),
        tenant_fk("ticket_id", "tickets"),
    )

    ticket_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    change: Mapped[ChangeKind] = mapped_column(str_enum(ChangeKind, "ticket_change_kind"))
    xact_id: Mapped[int | None] = mapped_column(sa.BigInteger)


class TicketSLAEvent(TenantMixin, CreatedAtMixin, Base):
    """The SLA clock's log of a ticket (`app.sla.clock`): append-only. `at` is when the
    event takes effect; `target` and `cycle` name the clock (none for `recompute`);
    `done_key` makes each breach and escalation unique per ticket, which is what lets
    them happen exactly once; `details` explains (due time, lateness, reason)."""

    __tablename__ = "ticket_sla_events"
    __table_args__ = (
        sa.Index("ix_ticket_sla_events_ticket", "organization_id", "ticket_id", "at", "id"),
        sa.Index(
            "uq_ticket_sla_events_done",
            "organization_id",
            "ticket_id",
            "done_key",
            unique=True,
            postgresql_where=sa.text("done_key IS NOT NULL"),
            sqlite_where=sa.text("done_key IS NOT NULL"),
        ),
        sa.CheckConstraint("cycle >= 0", name="cycle_not_negative"),
        sa.CheckConstraint(
            "(kind = 'recompute') = (target IS NULL)", name="target_unless_recompute"
        ),
        tenant_fk("ticket_id", "tickets"),
    )

    ticket_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    kind: Mapped[SLAEventKind] = mapped_column(str_enum(SLAEventKind, "sla_event_kind"))
    target: Mapped[SLATarget | None] = mapped_column(str_enum(SLATarget, "sla_target"))
    cycle: Mapped[int] = mapped_column(default=0, server_default="0")
    at: Mapped[datetime]
    at_percent: Mapped[int | None] = mapped_column(sa.SmallInteger)
    action: Mapped[EscalationAction | None] = mapped_column(
        str_enum(EscalationAction, "sla_escalation_action")
    )
    done_key: Mapped[str | None] = mapped_column(sa.String(100))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
