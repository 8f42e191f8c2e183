"""ticket change feed: one row per ticket write, ordered by transaction id

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 17:52:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('app.organization_id', true), '')::uuid"
PLATFORM = "current_setting('app.platform', true) = 'on'"


def upgrade() -> None:
    op.create_table(
        "ticket_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column(
            "change",
            sa.Enum(
                "created",
                "updated",
                "deleted",
                name="ticket_change_kind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("xact_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "ticket_id"],
            ["tickets.organization_id", "tickets.id"],
            name=op.f("fk_ticket_changes_organization_id_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_ticket_changes_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_changes")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_ticket_changes_organization_id_id")
        ),
    )
    op.create_index(
        "ix_ticket_changes_feed", "ticket_changes", ["organization_id", "xact_id", "id"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE ticket_changes ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE ticket_changes FORCE ROW LEVEL SECURITY")
        op.execute(
            "CREATE POLICY tenant_isolation ON ticket_changes "
            f"USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})"
        )
        op.execute(
            "CREATE POLICY platform_access ON ticket_changes TO CURRENT_USER "
            f"USING ({PLATFORM}) WITH CHECK ({PLATFORM})"
        )


def downgrade() -> None:
    op.drop_index("ix_ticket_changes_feed", table_name="ticket_changes")
    op.drop_table("ticket_changes")
