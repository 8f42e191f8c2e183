"""The inbox sweep's index: inbound messages stored and never placed (`received`), which
the sweep places when their request died between storing and placing them

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECEIVED = sa.text("status = 'received'")


def upgrade() -> None:
    op.create_index(
        "ix_inbound_messages_received",
        "inbound_messages",
        ["organization_id", "created_at"],
        unique=False,
        postgresql_where=RECEIVED,
        sqlite_where=RECEIVED,
    )


def downgrade() -> None:
    op.drop_index("ix_inbound_messages_received", table_name="inbound_messages")
