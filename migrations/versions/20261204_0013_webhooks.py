"""Outbound webhooks: a subscription's previous secret during a rotation's overlap; a
delivery's ticket (the order its events go out in), its retry window (its start, the
attempts made before it) and its newest attempt; the indexes a subscription's delivery job claims by (its due
deliveries, and the oldest pending one of each ticket)

The tables and their row-level security exist since 0001; every new column is nullable
or has a default, so SQLite adds (and drops) them in place as PostgreSQL does.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 18:02:41.552310
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")
DELIVERY_COLUMNS = (
    "aggregate_id",
    "retrying_since",
    "attempts_before_window",
    "last_attempt_at",
    "last_status_code",
    "last_error",
)


def upgrade() -> None:
    op.add_column(
        "webhook_subscriptions", sa.Column("previous_secret", sa.String(length=128), nullable=True)
    )
    op.add_column(
        "webhook_subscriptions",
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("webhook_deliveries", sa.Column("aggregate_id", sa.Uuid(), nullable=True))
    op.add_column(
        "webhook_deliveries",
        sa.Column("retrying_since", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "webhook_deliveries",
        sa.Column("attempts_before_window", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "webhook_deliveries",
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column("webhook_deliveries", sa.Column("last_status_code", sa.Integer(), nullable=True))
    op.add_column("webhook_deliveries", sa.Column("last_error", sa.Text(), nullable=True))
    op.create_index(
        "ix_webhook_deliveries_subscription_due",
        "webhook_deliveries",
        ["organization_id", "subscription_id", "next_attempt_at"],
        unique=False,
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.create_index(
        "ix_webhook_deliveries_aggregate_order",
        "webhook_deliveries",
        ["organization_id", "subscription_id", "aggregate_id", "event_id"],
        unique=False,
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_webhook_deliveries_aggregate_order",
        table_name="webhook_deliveries",
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    op.drop_index(
        "ix_webhook_deliveries_subscription_due",
        table_name="webhook_deliveries",
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )
    for column in reversed(DELIVERY_COLUMNS):
        op.drop_column("webhook_deliveries", column)
    op.drop_column("webhook_subscriptions", "previous_secret_expires_at")
    op.drop_column("webhook_subscriptions", "previous_secret")
