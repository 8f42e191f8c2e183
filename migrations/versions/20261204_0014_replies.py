"""Replies going out: each comment's delivery to the customer (status, attempts, the last
error, when it was sent, when it is next tried, the mail's own Message-ID) with the
partial index the retry sweep reads, and an index of a ticket's inbound messages (the
channel and conversation a reply goes out through)

The delivery lives on the comment rather than in a table of its own: the comment reads
(`GET /tickets/{id}/comments`, the create answer) show it with no join, the comment's
insert writes it with no second statement, and a reply has one delivery.

Every new column is nullable or has a default: PostgreSQL adds them without rewriting
the table, and SQLite adds them in place; on SQLite the status's CHECK is part of the
column (it cannot add a table constraint to an existing table).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 17:13:28.955447
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS_CHECK = "delivery_status IN ('queued', 'sent', 'failed')"
QUEUED = sa.text("delivery_status = 'queued'")


def upgrade() -> None:
    op.create_index(
        "ix_inbound_messages_ticket",
        "inbound_messages",
        ["organization_id", "ticket_id", "id"],
        unique=False,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.add_column(
            "ticket_comments", sa.Column("delivery_status", sa.String(length=6), nullable=True)
        )
        op.create_check_constraint(
            op.f("ck_ticket_comments_delivery_status"), "ticket_comments", STATUS_CHECK
        )
    else:
        op.execute(
            "ALTER TABLE ticket_comments ADD COLUMN delivery_status VARCHAR(6) "
            f"CONSTRAINT ck_ticket_comments_delivery_status CHECK ({STATUS_CHECK})"
        )
    op.add_column(
        "ticket_comments",
        sa.Column("delivery_attempts", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("ticket_comments", sa.Column("delivery_error", sa.Text(), nullable=True))
    op.add_column(
        "ticket_comments",
        sa.Column("delivery_sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "ticket_comments",
        sa.Column("delivery_next_attempt_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "ticket_comments", sa.Column("outgoing_message_id", sa.String(length=998), nullable=True)
    )
    op.create_index(
        "ix_ticket_comments_delivery_due",
        "ticket_comments",
        ["organization_id", "delivery_next_attempt_at"],
        unique=False,
        postgresql_where=QUEUED,
        sqlite_where=QUEUED,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_ticket_comments_delivery_due",
        table_name="ticket_comments",
        postgresql_where=QUEUED,
        sqlite_where=QUEUED,
    )
    op.drop_column("ticket_comments", "outgoing_message_id")
    op.drop_column("ticket_comments", "delivery_next_attempt_at")
    op.drop_column("ticket_comments", "delivery_sent_at")
    op.drop_column("ticket_comments", "delivery_error")
    op.drop_column("ticket_comments", "delivery_attempts")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(
            op.f("ck_ticket_comments_delivery_status"), "ticket_comments", type_="check"
        )
    op.drop_column("ticket_comments", "delivery_status")
    op.drop_index("ix_inbound_messages_ticket", table_name="inbound_messages")
