"""SLA clock: each ticket's SLA event log, and the earliest pending deadline as a column
with a partial index (the timer queue the workers claim from)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:40:57.840957
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT_ORG = "NULLIF(current_setting('app.organization_id', true), '')::uuid"
PLATFORM = "current_setting('app.platform', true) = 'on'"


def upgrade() -> None:
    op.create_table(
        "ticket_sla_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "start",
                "pause",
                "resume",
                "fulfil",
                "stop",
                "breach",
                "escalate",
                "recompute",
                name="sla_event_kind",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "target",
            sa.Enum(
                "first_response",
                "next_reply",
                "resolution",
                name="sla_target",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("cycle", sa.Integer(), server_default="0", nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("at_percent", sa.SmallInteger(), nullable=True),
        sa.Column(
            "action",
            sa.Enum(
                "notify",
                "reassign",
                "raise_priority",
                name="sla_escalation_action",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("done_key", sa.String(length=100), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(kind = 'recompute') = (target IS NULL)",
            name=op.f("ck_ticket_sla_events_target_unless_recompute"),
        ),
        sa.CheckConstraint("cycle >= 0", name=op.f("ck_ticket_sla_events_cycle_not_negative")),
        sa.ForeignKeyConstraint(
            ["organization_id", "ticket_id"],
            ["tickets.organization_id", "tickets.id"],
            name=op.f("fk_ticket_sla_events_organization_id_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_ticket_sla_events_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_sla_events")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_ticket_sla_events_organization_id_id")
        ),
    )
    op.create_index(
        "ix_ticket_sla_events_ticket",
        "ticket_sla_events",
        ["organization_id", "ticket_id", "at", "id"],
        unique=False,
    )
    op.create_index(
        "uq_ticket_sla_events_done",
        "ticket_sla_events",
        ["organization_id", "ticket_id", "done_key"],
        unique=True,
        postgresql_where=sa.text("done_key IS NOT NULL"),
        sqlite_where=sa.text("done_key IS NOT NULL"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE ticket_sla_events ENABLE ROW LEVEL SECURITY")
        op.execute("ALTER TABLE ticket_sla_events FORCE ROW LEVEL SECURITY")
        op.execute(
            "CREATE POLICY tenant_isolation ON ticket_sla_events "
            f"USING (organization_id = {CURRENT_ORG}) WITH CHECK (organization_id = {CURRENT_ORG})"
        )
        op.execute(
            "CREATE POLICY platform_access ON ticket_sla_events TO CURRENT_USER "
            f"USING ({PLATFORM}) WITH CHECK ({PLATFORM})"
        )
    op.add_column(
        "tickets", sa.Column("sla_next_deadline", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_tickets_sla_next_deadline",
        "tickets",
        ["sla_next_deadline", "organization_id"],
        unique=False,
        postgresql_where=sa.text("sla_next_deadline IS NOT NULL AND deleted_at IS NULL"),
        sqlite_where=sa.text("sla_next_deadline IS NOT NULL AND deleted_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_tickets_sla_next_deadline",
        table_name="tickets",
        postgresql_where=sa.text("sla_next_deadline IS NOT NULL AND deleted_at IS NULL"),
        sqlite_where=sa.text("sla_next_deadline IS NOT NULL AND deleted_at IS NULL"),
    )
    op.drop_column("tickets", "sla_next_deadline")
    op.drop_index(
        "uq_ticket_sla_events_done",
        table_name="ticket_sla_events",
        postgresql_where=sa.text("done_key IS NOT NULL"),
        sqlite_where=sa.text("done_key IS NOT NULL"),
    )
    op.drop_index("ix_ticket_sla_events_ticket", table_name="ticket_sla_events")
    op.drop_table("ticket_sla_events")
