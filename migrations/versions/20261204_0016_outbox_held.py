"""Outbox events whose handlers fail are held back and retried (`relay_attempts`,
`relay_after`, `relay_error`) instead of stopping their organization's relay

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04 19:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HELD = sa.text("dispatched_at IS NULL AND relay_after IS NOT NULL")


def upgrade() -> None:
    # Plain ADD COLUMNs (nullable, or a constant default): no table rewrite on
    # PostgreSQL, no table rebuild on SQLite.
    op.add_column(
        "outbox_events",
        sa.Column("relay_attempts", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("outbox_events", sa.Column("relay_after", sa.DateTime(timezone=True)))
    op.add_column("outbox_events", sa.Column("relay_error", sa.Text()))
    op.create_index(
        "ix_outbox_events_held",
        "outbox_events",
        ["organization_id", "aggregate_id", "id"],
        unique=False,
        postgresql_where=HELD,
        sqlite_where=HELD,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_events_held", table_name="outbox_events")
    with op.batch_alter_table("outbox_events") as batch:
        batch.drop_column("relay_error")
        batch.drop_column("relay_after")
        batch.drop_column("relay_attempts")
