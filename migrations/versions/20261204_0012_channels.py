"""Inbound channels: each channel's routing settings, the inbox's record of what
processing made of a message (status `duplicate`, the reason, the threading rule, the
sender and threading headers, the closed ticket a follow-up continues), and
`ticket_message_ids`, the Message-IDs that thread mail into tickets (with row-level
security like every tenant table)

On SQLite the two existing tables are rebuilt rather than altered: SQLite cannot add a
foreign key or swap a CHECK in place, and no route wrote either table before this
revision (batch mode would also lose `uq_channels_address`, an expression index SQLite
does not reflect).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 16:23:11.034517
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('app.organization_id', true), '')::uuid"
PLATFORM = "current_setting('app.platform', true) = 'on'"

OLD_STATUSES = ("received", "created", "threaded", "ignored", "failed")
NEW_STATUSES = ("received", "created", "threaded", "duplicate", "ignored", "failed")
THREAD_REASONS = ("in_reply_to", "references", "subject_number", "conversation", "new")
PRIORITIES = ("low", "medium", "high", "urgent")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
SENDER_CREATED_WHERE = sa.text("status = 'created'")


def _is_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _check_in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    if _is_postgresql():
        _upgrade_channels()
        _upgrade_inbox()
    else:
        op.drop_table("inbound_messages")
        op.drop_table("channels")
        _create_channels(new=True)
        _create_inbox(new=True)
    _create_message_ids()


def downgrade() -> None:
    op.drop_index("ix_ticket_message_ids_ticket", table_name="ticket_message_ids")
    op.drop_table("ticket_message_ids")
    if _is_postgresql():
        _downgrade_inbox()
        _downgrade_channels()
    else:
        op.drop_table("inbound_messages")
        op.drop_table("channels")
        _create_channels(new=False)
        _create_inbox(new=False)


# --- PostgreSQL: altered in place --------------------------------------------------------


def _upgrade_channels() -> None:
    op.add_column("channels", sa.Column("default_department_id", sa.Uuid(), nullable=True))
    op.add_column(
        "channels",
        sa.Column(
            "default_priority",
            sa.Enum(
                *PRIORITIES, name="channel_priority", native_enum=False, create_constraint=True
            ),
            server_default="medium",
            nullable=False,
        ),
    )
    op.add_column("channels", sa.Column("reply_url", sa.String(length=2048), nullable=True))
    op.add_column(
        "channels",
        sa.Column(
            "accept_unknown_senders", sa.Boolean(), server_default=sa.text("true"), nullable=False
        ),
    )
    op.add_column(
        "channels",
        sa.Column(
            "new_tickets_per_sender_per_hour", sa.Integer(), server_default="20", nullable=False
        ),
    )
    op.create_check_constraint(
        op.f("ck_channels_new_tickets_per_sender_per_hour_range"),
        "channels",
        "new_tickets_per_sender_per_hour BETWEEN 1 AND 10000",
    )
    op.create_foreign_key(
        op.f("fk_channels_organization_id_default_department_id_departments"),
        "channels",
        "departments",
        ["organization_id", "default_department_id"],
        ["organization_id", "id"],
        ondelete="SET NULL (default_department_id)",
    )


def _downgrade_channels() -> None:
    op.drop_constraint(
        op.f("fk_channels_organization_id_default_department_id_departments"),
        "channels",
        type_="foreignkey",
    )
    op.drop_constraint(
        op.f("ck_channels_new_tickets_per_sender_per_hour_range"), "channels", type_="check"
    )
    for column in (
        "new_tickets_per_sender_per_hour",
        "accept_unknown_senders",
        "reply_url",
        "default_priority",
        "default_department_id",
    ):
        op.drop_column("channels", column)


def _upgrade_inbox() -> None:
    # `error` held failures only; the column now says why a message was ignored too.
    op.alter_column("inbound_messages", "error", new_column_name="reason")
    op.drop_constraint(
        op.f("ck_inbound_messages_inbound_status"), "inbound_messages", type_="check"
    )
    op.alter_column(
        "inbound_messages",
        "status",
        existing_type=sa.String(length=8),
        type_=sa.String(length=9),
        existing_nullable=False,
        existing_server_default=sa.text("'received'::character varying"),
    )
    op.create_check_constraint(
        op.f("ck_inbound_messages_inbound_status"),
        "inbound_messages",
        _check_in("status", NEW_STATUSES),
    )
    for column in _new_inbox_columns():
        op.add_column("inbound_messages", column)
    op.create_foreign_key(
        op.f("fk_inbound_messages_organization_id_follow_up_of_ticket_id_tickets"),
        "inbound_messages",
        "tickets",
        ["organization_id", "follow_up_of_ticket_id"],
        ["organization_id", "id"],
        ondelete="SET NULL (follow_up_of_ticket_id)",
    )
    _create_new_inbox_indexes()


def _downgrade_inbox() -> None:
    op.drop_index(
        "ix_inbound_messages_sender_created",
        table_name="inbound_messages",
        postgresql_where=SENDER_CREATED_WHERE,
        sqlite_where=SENDER_CREATED_WHERE,
    )
    op.drop_index("ix_inbound_messages_channel_status", table_name="inbound_messages")
    op.drop_index("ix_inbound_messages_channel", table_name="inbound_messages")
    op.drop_constraint(
        op.f("fk_inbound_messages_organization_id_follow_up_of_ticket_id_tickets"),
        "inbound_messages",
        type_="foreignkey",
    )
    for column in (
        "reference_ids",
        "in_reply_to",
        "message_id",
        "subject",
        "sender_email",
        "follow_up_of_ticket_id",
        "thread_reason",
    ):
        op.drop_column("inbound_messages", column)
    op.execute("UPDATE inbound_messages SET status = 'ignored' WHERE status = 'duplicate'")
    op.drop_constraint(
        op.f("ck_inbound_messages_inbound_status"), "inbound_messages", type_="check"
    )
    op.alter_column(
        "inbound_messages",
        "status",
        existing_type=sa.String(length=9),
        type_=sa.String(length=8),
        existing_nullable=False,
        existing_server_default=sa.text("'received'::character varying"),
    )
    op.create_check_constraint(
        op.f("ck_inbound_messages_inbound_status"),
        "inbound_messages",
        _check_in("status", OLD_STATUSES),
    )
    op.alter_column("inbound_messages", "reason", new_column_name="error")


# --- the shapes, created whole (SQLite) ----------------------------------------------------


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def _create_channels(*, new: bool) -> None:
    extra: list[sa.SchemaItem] = []
    if new:
        extra = [
            sa.Column("default_department_id", sa.Uuid(), nullable=True),
            sa.Column(
                "default_priority",
                sa.Enum(
                    *PRIORITIES, name="channel_priority", native_enum=False, create_constraint=True
                ),
                server_default="medium",
                nullable=False,
            ),
            sa.Column("reply_url", sa.String(length=2048), nullable=True),
            sa.Column(
                "accept_unknown_senders",
                sa.Boolean(),
                server_default=sa.text("true"),
                nullable=False,
            ),
            sa.Column(
                "new_tickets_per_sender_per_hour",
                sa.Integer(),
                server_default="20",
                nullable=False,
            ),
            sa.CheckConstraint(
                "new_tickets_per_sender_per_hour BETWEEN 1 AND 10000",
                name=op.f("ck_channels_new_tickets_per_sender_per_hour_range"),
            ),
            sa.ForeignKeyConstraint(
                ["organization_id", "default_department_id"],
                ["departments.organization_id", "departments.id"],
                name=op.f("fk_channels_organization_id_default_department_id_departments"),
                ondelete="SET NULL (default_department_id)",
            ),
        ]
    op.create_table(
        "channels",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column(
            "type",
            sa.Enum(
                "email", "chat", name="channel_type", native_enum=False, create_constraint=True
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("previous_secret", sa.String(length=128), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("settings", JSON, server_default="{}", nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        *extra,
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_channels_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channels")),
        sa.UniqueConstraint("organization_id", "id", name=op.f("uq_channels_organization_id_id")),
    )
    op.create_index(
        "uq_channels_address",
        "channels",
        ["organization_id", "type", sa.literal_column("lower(address)")],
        unique=True,
        postgresql_where=sa.text("channels.deleted_at IS NULL AND address IS NOT NULL"),
        sqlite_where=sa.text("channels.deleted_at IS NULL AND address IS NOT NULL"),
    )


def _new_inbox_columns() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "thread_reason",
            sa.Enum(
                *THREAD_REASONS,
                name="inbound_thread_reason",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("follow_up_of_ticket_id", sa.Uuid(), nullable=True),
        sa.Column("sender_email", sa.String(length=320), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=998), nullable=True),
        sa.Column("in_reply_to", sa.String(length=998), nullable=True),
        sa.Column("reference_ids", JSON, server_default="[]", nullable=False),
    ]


def _create_inbox(*, new: bool) -> None:
    statuses = NEW_STATUSES if new else OLD_STATUSES
    extra: list[sa.SchemaItem] = []
    if new:
        extra = [
            *_new_inbox_columns(),
            sa.ForeignKeyConstraint(
                ["organization_id", "follow_up_of_ticket_id"],
                ["tickets.organization_id", "tickets.id"],
                name=op.f("fk_inbound_messages_organization_id_follow_up_of_ticket_id_tickets"),
                ondelete="SET NULL (follow_up_of_ticket_id)",
            ),
        ]
    op.create_table(
        "inbound_messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=998), nullable=False),
        sa.Column("conversation_id", sa.String(length=255), nullable=True),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("raw_body", sa.LargeBinary(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(*statuses, name="inbound_status", native_enum=False, create_constraint=True),
            server_default="received",
            nullable=False,
        ),
        sa.Column("reason" if new else "error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=True),
        sa.Column("comment_id", sa.Uuid(), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        *extra,
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_inbound_messages_attempts_nonneg")),
        sa.ForeignKeyConstraint(
            ["organization_id", "channel_id"],
            ["channels.organization_id", "channels.id"],
            name=op.f("fk_inbound_messages_organization_id_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "comment_id"],
            ["ticket_comments.organization_id", "ticket_comments.id"],
            name=op.f("fk_inbound_messages_organization_id_comment_id_ticket_comments"),
            ondelete="SET NULL (comment_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "ticket_id"],
            ["tickets.organization_id", "tickets.id"],
            name=op.f("fk_inbound_messages_organization_id_ticket_id_tickets"),
            ondelete="SET NULL (ticket_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_inbound_messages_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint(
            "organization_id",
            "channel_id",
            "external_id",
            name=op.f("uq_inbound_messages_organization_id_channel_id_external_id"),
        ),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_inbound_messages_organization_id_id")
        ),
    )
    op.create_index(
        "ix_inbound_messages_conversation",
        "inbound_messages",
        ["organization_id", "channel_id", "conversation_id"],
        unique=False,
    )
    op.create_index(
        "ix_inbound_messages_external_id",
        "inbound_messages",
        ["organization_id", "external_id"],
        unique=False,
    )
    op.create_index(
        "ix_inbound_messages_failed",
        "inbound_messages",
        ["organization_id", "created_at"],
        unique=False,
        postgresql_where=sa.text("status = 'failed'"),
        sqlite_where=sa.text("status = 'failed'"),
    )
    if new:
        _create_new_inbox_indexes()


def _create_new_inbox_indexes() -> None:
    op.create_index(
        "ix_inbound_messages_channel",
        "inbound_messages",
        ["organization_id", "channel_id", "id"],
        unique=False,
    )
    op.create_index(
        "ix_inbound_messages_channel_status",
        "inbound_messages",
        ["organization_id", "channel_id", "status", "id"],
        unique=False,
    )
    op.create_index(
        "ix_inbound_messages_sender_created",
        "inbound_messages",
        ["organization_id", "channel_id", "sender_email", "created_at"],
        unique=False,
        postgresql_where=SENDER_CREATED_WHERE,
        sqlite_where=SENDER_CREATED_WHERE,
    )


# --- the message ids ---------------------------------------------------------------------


def _create_message_ids() -> None:
    op.create_table(
        "ticket_message_ids",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("comment_id", sa.Uuid(), nullable=True),
        sa.Column("inbound_message_id", sa.Uuid(), nullable=True),
        sa.Column(
            "direction",
            sa.Enum(
                "inbound",
                "outbound",
                name="message_direction",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "comment_id"],
            ["ticket_comments.organization_id", "ticket_comments.id"],
            name=op.f("fk_ticket_message_ids_organization_id_comment_id_ticket_comments"),
            ondelete="SET NULL (comment_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "inbound_message_id"],
            ["inbound_messages.organization_id", "inbound_messages.id"],
            name=op.f("fk_ticket_message_ids_organization_id_inbound_message_id_inbound_messages"),
            ondelete="SET NULL (inbound_message_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "ticket_id"],
            ["tickets.organization_id", "tickets.id"],
            name=op.f("fk_ticket_message_ids_organization_id_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_ticket_message_ids_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_message_ids")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_ticket_message_ids_organization_id_id")
        ),
        sa.UniqueConstraint(
            "organization_id",
            "message_id",
            name=op.f("uq_ticket_message_ids_organization_id_message_id"),
        ),
    )
    op.create_index(
        "ix_ticket_message_ids_ticket",
        "ticket_message_ids",
        ["organization_id", "ticket_id"],
        unique=False,
    )
    if _is_postgresql():
        op.execute("ALTER TABLE ticket_message_ids ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE ticket_message_ids FORCE ROW LEVEL SECURITY")
        op.execute(
            "CREATE POLICY tenant_isolation ON ticket_message_ids "
            f"USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})"
        )
        op.execute(
            "CREATE POLICY platform_access ON ticket_message_ids TO CURRENT_USER "
            f"USING ({PLATFORM}) WITH CHECK ({PLATFORM})"
        )
