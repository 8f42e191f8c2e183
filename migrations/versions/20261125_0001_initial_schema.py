"""initial schema: every table of the domain, tenant keys, row-level security

Hand-edited after autogenerate:
* PostgreSQL-only pieces are guarded (slug regex CHECK, the GIN index on tags);
* departments.manager_id → users is added after both tables exist (they reference
  each other); SQLite takes it inline, as it does not check targets at CREATE time;
* the tail creates the app role, grants it DML, and turns on FORCE row-level security
  with a tenant policy on every tenant table (see `_enable_row_level_security`).

Revision ID: 0001
Revises:
Create Date: 2026-11-25 16:25:56.513505
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.config import get_settings

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TENANT_TABLES = (
    "api_keys",
    "automation_rules",
    "business_hours",
    "channels",
    "custom_fields",
    "customers",
    "data_retention_policies",
    "departments",
    "inbound_messages",
    "kb_articles",
    "kb_categories",
    "outbox_events",
    "sequence_counters",
    "sla_policies",
    "technicians",
    "ticket_attachments",
    "ticket_comments",
    "ticket_history",
    "tickets",
    "user_permissions",
    "user_sessions",
    "users",
    "visual_workflow_versions",
    "visual_workflows",
    "webhook_deliveries",
    "webhook_delivery_attempts",
    "webhook_subscriptions",
    "work_orders",
)
CURRENT_ORG = "NULLIF(current_setting('app.organization_id', true), '')::uuid"
PLATFORM = "current_setting('app.platform', true) = 'on'"


def _is_pg() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _app_role() -> str:
    return get_settings().database_app_role


def _department_manager_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["organization_id", "manager_id"],
        ["users.organization_id", "users.id"],
        name=op.f("fk_departments_organization_id_manager_id_users"),
        ondelete="SET NULL (manager_id)",
    )


def _enable_row_level_security() -> None:
    """The database's own tenant wall.

    Tenant transactions run as the app role (no BYPASSRLS, not the owner) and set
    `app.organization_id` with `set_config(..., true)`; the policy shows and accepts only
    that organization's rows, so an unset organization sees nothing. FORCE makes the
    owner subject to the policies too; the owner's explicit system session (and these
    migrations) set `app.platform = on`, honoured only for the owner's own role.
    """
    role = _app_role()
    op.execute(f"""
        DO $$ BEGIN
            CREATE ROLE {role} NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$""")
    op.execute(f"GRANT {role} TO CURRENT_USER")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
    op.execute(f"REVOKE ALL ON alembic_version FROM {role}")
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"
    )
    for table, key in [("organizations", "id"), *((t, "organization_id") for t in TENANT_TABLES)]:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} "
            f"USING ({key} = {CURRENT_ORG}) WITH CHECK ({key} = {CURRENT_ORG})"
        )
        op.execute(
            f"CREATE POLICY platform_access ON {table} TO CURRENT_USER "
            f"USING ({PLATFORM}) WITH CHECK ({PLATFORM})"
        )


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=True),
        sa.Column(
            "subscription_tier",
            sa.Enum(
                "basic",
                "professional",
                "enterprise",
                name="subscription_tier",
                native_enum=False,
                create_constraint=True,
            ),
            server_default="basic",
            nullable=False,
        ),
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        *(
            [
                sa.CheckConstraint(
                    "slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'", name=op.f("ck_organizations_slug_format")
                )
            ]
            if _is_pg()
            else []
        ),
        sa.CheckConstraint("length(trim(name)) > 0", name=op.f("ck_organizations_name_not_blank")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
    )
    op.create_index(
        "uq_organizations_slug",
        "organizations",
        ["slug"],
        unique=True,
        postgresql_where=sa.text("organizations.deleted_at IS NULL"),
        sqlite_where=sa.text("organizations.deleted_at IS NULL"),
    )
    op.create_table(
        "automation_rules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "trigger_type",
            sa.Enum(
                "ticket_created",
                "ticket_updated",
                "comment_added",
                "sla_breached",
                "time_elapsed",
                name="trigger_type",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "conditions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default='{"all": [], "any": []}',
            nullable=False,
        ),
        sa.Column(
            "actions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("execution_order", sa.Integer(), server_default="0", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("execution_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("success_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("failure_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "execution_count >= 0 AND success_count >= 0 AND failure_count >= 0",
            name=op.f("ck_automation_rules_counters_nonneg"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_automation_rules_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_rules")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_automation_rules_organization_id_id")
        ),
    )
    op.create_index(
        "ix_automation_rules_trigger",
        "automation_rules",
        ["organization_id", "trigger_type", "execution_order"],
        unique=False,
        postgresql_where=sa.text("automation_rules.deleted_at IS NULL AND is_active"),
        sqlite_where=sa.text("automation_rules.deleted_at IS NULL AND is_active"),
    )
    op.create_table(
        "business_hours",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column(
            "intervals",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "holidays",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("holiday_country", sa.String(length=2), nullable=True),
        sa.Column("holiday_subdivision", sa.String(length=10), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_business_hours_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_hours")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_business_hours_organization_id_id")
        ),
    )
    op.create_index(
        "uq_business_hours_name",
        "business_hours",
        ["organization_id", sa.literal_column("lower(name)")],
        unique=True,
        postgresql_where=sa.text("business_hours.deleted_at IS NULL"),
        sqlite_where=sa.text("business_hours.deleted_at IS NULL"),
    )
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
        sa.Column(
            "settings",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
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
    op.create_table(
        "custom_fields",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=255), server_default="", nullable=False),
        sa.Column(
            "field_type",
            sa.Enum(
                "text",
                "textarea",
                "number",
                "email",
                "url",
                "date",
                "datetime",
                "boolean",
                "choice",
                "multi_choice",
                "file",
                "image",
                "json",
                name="field_type",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "entity_type",
            sa.Enum(
                "ticket",
                "user",
                "customer",
                "work_order",
                name="entity_type",
                native_enum=False,
                create_constraint=True,
            ),
            server_default="ticket",
            nullable=False,
        ),
        sa.Column("is_required", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("is_unique", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "choices",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "validation_rules",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("help_text", sa.Text(), server_default="", nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_custom_fields_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_custom_fields")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_custom_fields_organization_id_id")
        ),
    )
    op.create_index(
        "uq_custom_fields_name",
        "custom_fields",
        ["organization_id", "entity_type", "name"],
        unique=True,
        postgresql_where=sa.text("custom_fields.deleted_at IS NULL"),
        sqlite_where=sa.text("custom_fields.deleted_at IS NULL"),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=50), nullable=True),
        sa.Column("domain", sa.String(length=255), nullable=True),
        sa.Column("address", sa.Text(), server_default="", nullable=False),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column(
            "customer_tier",
            sa.Enum(
                "basic",
                "premium",
                "enterprise",
                name="customer_tier",
                native_enum=False,
                create_constraint=True,
            ),
            server_default="basic",
            nullable=False,
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_customers_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("organization_id", "id", name=op.f("uq_customers_organization_id_id")),
    )
    op.create_index(
        "uq_customers_external_id",
        "customers",
        ["organization_id", "external_id"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL AND external_id IS NOT NULL"),
        sqlite_where=sa.text("deleted_at IS NULL AND external_id IS NOT NULL"),
    )
    op.create_index(
        "uq_customers_name",
        "customers",
        ["organization_id", sa.literal_column("lower(name)")],
        unique=True,
        postgresql_where=sa.text("customers.deleted_at IS NULL"),
        sqlite_where=sa.text("customers.deleted_at IS NULL"),
    )
    op.create_table(
        "data_retention_policies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column(
            "retention_type",
            sa.Enum(
                "tickets",
                "comments",
                "attachments",
                "logs",
                "notifications",
                "reports",
                name="retention_type",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("retention_period_days", sa.Integer(), nullable=False),
        sa.Column(
            "archive_before_delete", sa.Boolean(), server_default=sa.text("true"), nullable=False
        ),
        sa.Column(
            "anonymize_personal_data", sa.Boolean(), server_default=sa.text("true"), nullable=False
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "retention_period_days >= 1", name=op.f("ck_data_retention_policies_period_positive")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_data_retention_policies_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_retention_policies")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_data_retention_policies_organization_id_id")
        ),
    )
    op.create_index(
        "uq_data_retention_policies_type",
        "data_retention_policies",
        ["organization_id", "retention_type"],
        unique=True,
        postgresql_where=sa.text("data_retention_policies.deleted_at IS NULL"),
        sqlite_where=sa.text("data_retention_policies.deleted_at IS NULL"),
    )
    op.create_table(
        "departments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("manager_id", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        *([] if _is_pg() else [_department_manager_fk()]),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_departments_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_departments")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_departments_organization_id_id")
        ),
    )
    op.create_index(
        "uq_departments_name",
        "departments",
        ["organization_id", sa.literal_column("lower(name)")],
        unique=True,
        postgresql_where=sa.text("departments.deleted_at IS NULL"),
        sqlite_where=sa.text("departments.deleted_at IS NULL"),
    )
    op.create_table(
        "kb_categories",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("slug", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("is_public", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "parent_id IS NULL OR parent_id <> id", name=op.f("ck_kb_categories_not_own_parent")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "parent_id"],
            ["kb_categories.organization_id", "kb_categories.id"],
            name=op.f("fk_kb_categories_organization_id_parent_id_kb_categories"),
            ondelete="SET NULL (parent_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_kb_categories_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_categories")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_kb_categories_organization_id_id")
        ),
    )
    op.create_index(
        "uq_kb_categories_slug",
        "kb_categories",
        ["organization_id", "slug"],
        unique=True,
        postgresql_where=sa.text("kb_categories.deleted_at IS NULL"),
        sqlite_where=sa.text("kb_categories.deleted_at IS NULL"),
    )
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("aggregate_type", sa.String(length=50), nullable=False),
        sa.Column("aggregate_id", sa.Uuid(), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_outbox_events_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_outbox_events_organization_id_id")
        ),
    )
    op.create_index(
        "ix_outbox_events_aggregate",
        "outbox_events",
        ["organization_id", "aggregate_type", "aggregate_id"],
        unique=False,
    )
    op.create_index(
        "ix_outbox_events_undispatched",
        "outbox_events",
        ["organization_id", "id"],
        unique=False,
        postgresql_where=sa.text("dispatched_at IS NULL"),
        sqlite_where=sa.text("dispatched_at IS NULL"),
    )
    op.create_table(
        "sequence_counters",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_sequence_counters_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequence_counters")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_sequence_counters_organization_id_id")
        ),
        sa.UniqueConstraint(
            "organization_id", "name", name=op.f("uq_sequence_counters_organization_id_name")
        ),
    )
    op.create_table(
        "visual_workflows",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "workflow_type",
            sa.Enum(
                "ticket",
                "work_order",
                "approval",
                name="workflow_type",
                native_enum=False,
                create_constraint=True,
            ),
            server_default="ticket",
            nullable=False,
        ),
        sa.Column(
            "definition",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "nodes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "connections",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "triggers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("is_published", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("published_version", sa.Integer(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("version >= 1", name=op.f("ck_visual_workflows_version_positive")),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_visual_workflows_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visual_workflows")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_visual_workflows_organization_id_id")
        ),
    )
    op.create_index(
        "uq_visual_workflows_name",
        "visual_workflows",
        ["organization_id", sa.literal_column("lower(name)")],
        unique=True,
        postgresql_where=sa.text("visual_workflows.deleted_at IS NULL"),
        sqlite_where=sa.text("visual_workflows.deleted_at IS NULL"),
    )
    op.create_table(
        "sla_policies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "conditions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default='{"priorities": [], "customer_tiers": [], "channels": []}',
            nullable=False,
        ),
        sa.Column("first_response_minutes", sa.Integer(), nullable=False),
        sa.Column("next_reply_minutes", sa.Integer(), nullable=True),
        sa.Column("resolution_minutes", sa.Integer(), nullable=False),
        sa.Column("business_hours_id", sa.Uuid(), nullable=True),
        sa.Column(
            "escalations",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "first_response_minutes >= 1", name=op.f("ck_sla_policies_first_response_positive")
        ),
        sa.CheckConstraint(
            "next_reply_minutes IS NULL OR next_reply_minutes >= 1",
            name=op.f("ck_sla_policies_next_reply_positive"),
        ),
        sa.CheckConstraint(
            "resolution_minutes >= 1", name=op.f("ck_sla_policies_resolution_positive")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "business_hours_id"],
            ["business_hours.organization_id", "business_hours.id"],
            name=op.f("fk_sla_policies_organization_id_business_hours_id_business_hours"),
            ondelete="SET NULL (business_hours_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_sla_policies_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_sla_policies_organization_id_id")
        ),
    )
    op.create_index(
        "ix_sla_policies_matching",
        "sla_policies",
        ["organization_id", "position"],
        unique=False,
        postgresql_where=sa.text("sla_policies.deleted_at IS NULL AND is_active"),
        sqlite_where=sa.text("sla_policies.deleted_at IS NULL AND is_active"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("first_name", sa.String(length=150), server_default="", nullable=False),
        sa.Column("last_name", sa.String(length=150), server_default="", nullable=False),
        sa.Column("phone", sa.String(length=50), nullable=True),
        sa.Column("is_superuser", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "manager",
                "agent",
                "customer",
                name="user_role",
                native_enum=False,
                create_constraint=True,
            ),
            server_default="customer",
            nullable=False,
        ),
        sa.Column(
            "customer_tier",
            sa.Enum(
                "basic",
                "premium",
                "enterprise",
                name="customer_tier",
                native_enum=False,
                create_constraint=True,
            ),
            server_default="basic",
            nullable=False,
        ),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("department_id", sa.Uuid(), nullable=True),
        sa.Column("timezone", sa.String(length=50), server_default="UTC", nullable=False),
        sa.Column("language", sa.String(length=10), server_default="en", nullable=False),
        sa.Column(
            "skills",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "certifications",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("max_concurrent_tickets", sa.Integer(), server_default="10", nullable=False),
        sa.Column(
            "availability_status",
            sa.Enum(
                "online",
                "away",
                "busy",
                "offline",
                name="availability_status",
                native_enum=False,
                create_constraint=True,
            ),
            server_default="offline",
            nullable=False,
        ),
        sa.Column(
            "email_notifications", sa.Boolean(), server_default=sa.text("true"), nullable=False
        ),
        sa.Column(
            "sms_notifications", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column(
            "push_notifications", sa.Boolean(), server_default=sa.text("true"), nullable=False
        ),
        sa.Column(
            "two_factor_enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("totp_secret", sa.String(length=64), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_active_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login_ip", sa.String(length=45), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "customer_id IS NULL OR role = 'customer'", name=op.f("ck_users_customer_account_role")
        ),
        sa.CheckConstraint(
            "(is_superuser AND organization_id IS NULL) OR (NOT is_superuser AND organization_id IS NOT NULL)",
            name=op.f("ck_users_superuser_has_no_organization"),
        ),
        sa.CheckConstraint(
            "max_concurrent_tickets >= 0", name=op.f("ck_users_max_concurrent_tickets_nonneg")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "customer_id"],
            ["customers.organization_id", "customers.id"],
            name=op.f("fk_users_organization_id_customer_id_customers"),
            ondelete="SET NULL (customer_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "department_id"],
            ["departments.organization_id", "departments.id"],
            name=op.f("fk_users_organization_id_department_id_departments"),
            ondelete="SET NULL (department_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_users_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("organization_id", "id", name=op.f("uq_users_organization_id_id")),
    )
    op.create_index(
        "ix_users_organization_id_role", "users", ["organization_id", "role"], unique=False
    )
    op.create_index(
        "uq_users_email",
        "users",
        ["organization_id", sa.literal_column("lower(email)")],
        unique=True,
        postgresql_where=sa.text("users.deleted_at IS NULL"),
        sqlite_where=sa.text("users.deleted_at IS NULL"),
    )
    op.create_index(
        "uq_users_superuser_email",
        "users",
        [sa.literal_column("lower(email)")],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL AND organization_id IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL AND organization_id IS NULL"),
    )
    if _is_pg():
        op.create_foreign_key(
            op.f("fk_departments_organization_id_manager_id_users"),
            "departments",
            "users",
            ["organization_id", "manager_id"],
            ["organization_id", "id"],
            ondelete="SET NULL (manager_id)",
        )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "manager",
                "agent",
                "customer",
                name="api_key_role",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("role <> 'customer'", name=op.f("ck_api_keys_role_not_customer")),
        sa.ForeignKeyConstraint(
            ["organization_id", "created_by_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_api_keys_organization_id_created_by_id_users"),
            ondelete="SET NULL (created_by_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_api_keys_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("organization_id", "id", name=op.f("uq_api_keys_organization_id_id")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_table(
        "kb_articles",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("category_id", sa.Uuid(), nullable=True),
        sa.Column("author_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("slug", sa.String(length=255), nullable=False),
        sa.Column("summary", sa.Text(), server_default="", nullable=False),
        sa.Column("content", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("is_published", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("view_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("helpful_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("not_helpful_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "view_count >= 0 AND helpful_count >= 0 AND not_helpful_count >= 0",
            name=op.f("ck_kb_articles_counters_nonneg"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "author_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_kb_articles_organization_id_author_id_users"),
            ondelete="SET NULL (author_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "category_id"],
            ["kb_categories.organization_id", "kb_categories.id"],
            name=op.f("fk_kb_articles_organization_id_category_id_kb_categories"),
            ondelete="SET NULL (category_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_kb_articles_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_articles")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_kb_articles_organization_id_id")
        ),
    )
    op.create_index(
        "ix_kb_articles_category",
        "kb_articles",
        ["organization_id", "category_id"],
        unique=False,
        postgresql_where=sa.text("kb_articles.deleted_at IS NULL"),
        sqlite_where=sa.text("kb_articles.deleted_at IS NULL"),
    )
    op.create_index(
        "uq_kb_articles_slug",
        "kb_articles",
        ["organization_id", "slug"],
        unique=True,
        postgresql_where=sa.text("kb_articles.deleted_at IS NULL"),
        sqlite_where=sa.text("kb_articles.deleted_at IS NULL"),
    )
    op.create_table(
        "technicians",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("employee_id", sa.String(length=50), nullable=True),
        sa.Column(
            "skills",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "certifications",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "service_areas",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("hourly_rate", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("is_available", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("max_daily_work_orders", sa.Integer(), server_default="8", nullable=False),
        sa.Column("latitude", sa.Numeric(precision=9, scale=6), nullable=True),
        sa.Column("longitude", sa.Numeric(precision=9, scale=6), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "hourly_rate IS NULL OR hourly_rate >= 0", name=op.f("ck_technicians_rate_nonneg")
        ),
        sa.CheckConstraint(
            "latitude IS NULL OR latitude BETWEEN -90 AND 90", name=op.f("ck_technicians_latitude")
        ),
        sa.CheckConstraint(
            "longitude IS NULL OR longitude BETWEEN -180 AND 180",
            name=op.f("ck_technicians_longitude"),
        ),
        sa.CheckConstraint(
            "max_daily_work_orders >= 1", name=op.f("ck_technicians_max_daily_positive")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_technicians_organization_id_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_technicians_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_technicians")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_technicians_organization_id_id")
        ),
    )
    op.create_index(
        "uq_technicians_user",
        "technicians",
        ["organization_id", "user_id"],
        unique=True,
        postgresql_where=sa.text("technicians.deleted_at IS NULL"),
        sqlite_where=sa.text("technicians.deleted_at IS NULL"),
    )
    op.create_table(
        "tickets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("ticket_number", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "new",
                "open",
                "pending",
                "resolved",
                "closed",
                "cancelled",
                name="ticket_status",
                native_enum=False,
                create_constraint=True,
            ),
            server_default="new",
            nullable=False,
        ),
        sa.Column(
            "priority",
            sa.Enum(
                "low",
                "medium",
                "high",
                "urgent",
                name="ticket_priority",
                native_enum=False,
                create_constraint=True,
            ),
            server_default="medium",
            nullable=False,
        ),
        sa.Column(
            "priority_rank",
            sa.SmallInteger(),
            sa.Computed(
                "CASE priority WHEN 'low' THEN 1 WHEN 'medium' THEN 2 WHEN 'high' THEN 3 WHEN 'urgent' THEN 4 END",
                persisted=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "channel",
            sa.Enum(
                "web",
                "email",
                "chat",
                "phone",
                "api",
                name="ticket_channel",
                native_enum=False,
                create_constraint=True,
            ),
            server_default="web",
            nullable=False,
        ),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("assigned_agent_id", sa.Uuid(), nullable=True),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("department_id", sa.Uuid(), nullable=True),
        sa.Column("sla_policy_id", sa.Uuid(), nullable=True),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "custom_fields",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("sla_breach", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "sla_status",
            sa.Enum(
                "first_response_due",
                "resolution_due",
                "paused",
                "breached",
                "fulfilled",
                name="sla_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column("first_response_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_reply_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("time_to_first_response", sa.Integer(), nullable=True),
        sa.Column("time_to_resolution", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "closed_at IS NULL OR status = 'closed'", name=op.f("ck_tickets_closed_at_status")
        ),
        sa.CheckConstraint(
            "resolved_at IS NULL OR status IN ('resolved', 'closed')",
            name=op.f("ck_tickets_resolved_at_status"),
        ),
        sa.CheckConstraint("length(trim(subject)) > 0", name=op.f("ck_tickets_subject_not_blank")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_tickets_version_positive")),
        sa.ForeignKeyConstraint(
            ["organization_id", "assigned_agent_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_tickets_organization_id_assigned_agent_id_users"),
            ondelete="SET NULL (assigned_agent_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "created_by_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_tickets_organization_id_created_by_id_users"),
            ondelete="SET NULL (created_by_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "customer_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_tickets_organization_id_customer_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "department_id"],
            ["departments.organization_id", "departments.id"],
            name=op.f("fk_tickets_organization_id_department_id_departments"),
            ondelete="SET NULL (department_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "sla_policy_id"],
            ["sla_policies.organization_id", "sla_policies.id"],
            name=op.f("fk_tickets_organization_id_sla_policy_id_sla_policies"),
            ondelete="SET NULL (sla_policy_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_tickets_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
        sa.UniqueConstraint("organization_id", "id", name=op.f("uq_tickets_organization_id_id")),
    )
    op.create_index(
        "ix_tickets_assigned_agent",
        "tickets",
        ["organization_id", "assigned_agent_id", "created_at"],
        unique=False,
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    op.create_index(
        "ix_tickets_channel",
        "tickets",
        ["organization_id", "channel", "created_at"],
        unique=False,
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    op.create_index(
        "ix_tickets_created",
        "tickets",
        ["organization_id", "created_at", "id"],
        unique=False,
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    op.create_index(
        "ix_tickets_customer",
        "tickets",
        ["organization_id", "customer_id", "created_at"],
        unique=False,
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    op.create_index(
        "ix_tickets_department",
        "tickets",
        ["organization_id", "department_id", "created_at"],
        unique=False,
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    op.create_index(
        "ix_tickets_priority",
        "tickets",
        ["organization_id", "priority_rank", "created_at"],
        unique=False,
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    op.create_index(
        "ix_tickets_resolution_due",
        "tickets",
        ["organization_id", "resolution_due_at"],
        unique=False,
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    op.create_index(
        "ix_tickets_sla_breach",
        "tickets",
        ["organization_id", "created_at"],
        unique=False,
        postgresql_where=sa.text("tickets.deleted_at IS NULL AND sla_breach"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL AND sla_breach"),
    )
    op.create_index(
        "ix_tickets_status",
        "tickets",
        ["organization_id", "status", "created_at"],
        unique=False,
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    if _is_pg():
        op.create_index(
            "ix_tickets_tags",
            "tickets",
            ["tags"],
            unique=False,
            postgresql_using="gin",
            postgresql_ops={"tags": "jsonb_path_ops"},
        )
    op.create_index(
        "ix_tickets_updated",
        "tickets",
        ["organization_id", "updated_at", "id"],
        unique=False,
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    op.create_index(
        "uq_tickets_ticket_number", "tickets", ["organization_id", "ticket_number"], unique=True
    )
    op.create_table(
        "user_permissions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("permission", sa.String(length=100), nullable=False),
        sa.Column("granted_by_id", sa.Uuid(), nullable=True),
        sa.Column(
            "granted_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "granted_by_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_user_permissions_organization_id_granted_by_id_users"),
            ondelete="SET NULL (granted_by_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_user_permissions_organization_id_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_user_permissions_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_permissions")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_user_permissions_organization_id_id")
        ),
    )
    op.create_index(
        "uq_user_permissions_active_grant",
        "user_permissions",
        ["organization_id", "user_id", "permission"],
        unique=True,
        postgresql_where=sa.text("is_active"),
        sqlite_where=sa.text("is_active"),
    )
    op.create_table(
        "user_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=512), server_default="", nullable=False),
        sa.Column(
            "last_activity_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("refresh_token_hash", sa.String(length=64), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_user_sessions_organization_id_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_user_sessions_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_sessions")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_user_sessions_organization_id_id")
        ),
    )
    op.create_index(
        "ix_user_sessions_organization_id_user_id",
        "user_sessions",
        ["organization_id", "user_id"],
        unique=False,
    )
    op.create_table(
        "visual_workflow_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("workflow_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "definition",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "nodes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "connections",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "triggers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("published_by_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "published_by_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_visual_workflow_versions_organization_id_published_by_id_users"),
            ondelete="SET NULL (published_by_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "workflow_id"],
            ["visual_workflows.organization_id", "visual_workflows.id"],
            name=op.f("fk_visual_workflow_versions_organization_id_workflow_id_visual_workflows"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_visual_workflow_versions_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visual_workflow_versions")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_visual_workflow_versions_organization_id_id")
        ),
        sa.UniqueConstraint(
            "organization_id",
            "workflow_id",
            "version",
            name=op.f("uq_visual_workflow_versions_organization_id_workflow_id_version"),
        ),
    )
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "events",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "created_by_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_webhook_subscriptions_organization_id_created_by_id_users"),
            ondelete="SET NULL (created_by_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_webhook_subscriptions_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_webhook_subscriptions_organization_id_id")
        ),
    )
    op.create_index(
        "ix_webhook_subscriptions_active",
        "webhook_subscriptions",
        ["organization_id"],
        unique=False,
        postgresql_where=sa.text(
            "webhook_subscriptions.deleted_at IS NULL AND is_active AND disabled_at IS NULL"
        ),
        sqlite_where=sa.text(
            "webhook_subscriptions.deleted_at IS NULL AND is_active AND disabled_at IS NULL"
        ),
    )
    op.create_table(
        "ticket_comments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column(
            "comment_type",
            sa.Enum(
                "public", "internal", name="comment_type", native_enum=False, create_constraint=True
            ),
            server_default="public",
            nullable=False,
        ),
        sa.Column("has_attachments", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "length(content) > 0", name=op.f("ck_ticket_comments_content_not_empty")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "author_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_ticket_comments_organization_id_author_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "ticket_id"],
            ["tickets.organization_id", "tickets.id"],
            name=op.f("fk_ticket_comments_organization_id_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_ticket_comments_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_comments")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_ticket_comments_organization_id_id")
        ),
    )
    op.create_index(
        "ix_ticket_comments_ticket",
        "ticket_comments",
        ["organization_id", "ticket_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "ticket_history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("field", sa.String(length=100), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "ticket_id"],
            ["tickets.organization_id", "tickets.id"],
            name=op.f("fk_ticket_history_organization_id_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "user_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_ticket_history_organization_id_user_id_users"),
            ondelete="SET NULL (user_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_ticket_history_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_history")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_ticket_history_organization_id_id")
        ),
    )
    op.create_index(
        "ix_ticket_history_ticket",
        "ticket_history",
        ["organization_id", "ticket_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "succeeded",
                "failed",
                name="delivery_status",
                native_enum=False,
                create_constraint=True,
            ),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("attempt_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "attempt_count >= 0", name=op.f("ck_webhook_deliveries_attempt_count_nonneg")
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "subscription_id"],
            ["webhook_subscriptions.organization_id", "webhook_subscriptions.id"],
            name=op.f(
                "fk_webhook_deliveries_organization_id_subscription_id_webhook_subscriptions"
            ),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_webhook_deliveries_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_webhook_deliveries_organization_id_id")
        ),
        sa.UniqueConstraint(
            "organization_id",
            "subscription_id",
            "event_id",
            name=op.f("uq_webhook_deliveries_organization_id_subscription_id_event_id"),
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        "ix_webhook_deliveries_subscription",
        "webhook_deliveries",
        ["organization_id", "subscription_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "work_orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("work_order_number", sa.String(length=20), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "scheduled",
                "in_progress",
                "on_hold",
                "completed",
                "cancelled",
                name="work_order_status",
                native_enum=False,
                create_constraint=True,
            ),
            server_default="pending",
            nullable=False,
        ),
        sa.Column(
            "priority",
            sa.Enum(
                "low",
                "medium",
                "high",
                "urgent",
                name="work_order_priority",
                native_enum=False,
                create_constraint=True,
            ),
            server_default="medium",
            nullable=False,
        ),
        sa.Column("ticket_id", sa.Uuid(), nullable=True),
        sa.Column("technician_id", sa.Uuid(), nullable=True),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("address", sa.Text(), server_default="", nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scheduled_end_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("estimated_duration_minutes", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "completed_at IS NULL OR status = 'completed'",
            name=op.f("ck_work_orders_completed_at_status"),
        ),
        sa.CheckConstraint(
            "estimated_duration_minutes IS NULL OR estimated_duration_minutes > 0",
            name=op.f("ck_work_orders_duration_positive"),
        ),
        sa.CheckConstraint(
            "scheduled_end_at IS NULL OR scheduled_at IS NULL OR scheduled_end_at > scheduled_at",
            name=op.f("ck_work_orders_schedule_order"),
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "customer_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_work_orders_organization_id_customer_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "technician_id"],
            ["technicians.organization_id", "technicians.id"],
            name=op.f("fk_work_orders_organization_id_technician_id_technicians"),
            ondelete="SET NULL (technician_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "ticket_id"],
            ["tickets.organization_id", "tickets.id"],
            name=op.f("fk_work_orders_organization_id_ticket_id_tickets"),
            ondelete="SET NULL (ticket_id)",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_work_orders_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_orders")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_work_orders_organization_id_id")
        ),
    )
    op.create_index(
        "ix_work_orders_customer", "work_orders", ["organization_id", "customer_id"], unique=False
    )
    op.create_index(
        "ix_work_orders_status",
        "work_orders",
        ["organization_id", "status", "created_at"],
        unique=False,
        postgresql_where=sa.text("work_orders.deleted_at IS NULL"),
        sqlite_where=sa.text("work_orders.deleted_at IS NULL"),
    )
    op.create_index(
        "ix_work_orders_technician_schedule",
        "work_orders",
        ["organization_id", "technician_id", "scheduled_at"],
        unique=False,
        postgresql_where=sa.text("work_orders.deleted_at IS NULL"),
        sqlite_where=sa.text("work_orders.deleted_at IS NULL"),
    )
    op.create_index(
        "ix_work_orders_ticket", "work_orders", ["organization_id", "ticket_id"], unique=False
    )
    op.create_index(
        "uq_work_orders_number",
        "work_orders",
        ["organization_id", "work_order_number"],
        unique=True,
    )
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
            sa.Enum(
                "received",
                "created",
                "threaded",
                "ignored",
                "failed",
                name="inbound_status",
                native_enum=False,
                create_constraint=True,
            ),
            server_default="received",
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=True),
        sa.Column("comment_id", sa.Uuid(), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
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
    op.create_table(
        "ticket_attachments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("ticket_id", sa.Uuid(), nullable=False),
        sa.Column("comment_id", sa.Uuid(), nullable=True),
        sa.Column("uploaded_by_id", sa.Uuid(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("file_size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("is_public", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("download_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "download_count >= 0", name=op.f("ck_ticket_attachments_download_count_nonneg")
        ),
        sa.CheckConstraint("file_size >= 0", name=op.f("ck_ticket_attachments_file_size_nonneg")),
        sa.ForeignKeyConstraint(
            ["organization_id", "comment_id"],
            ["ticket_comments.organization_id", "ticket_comments.id"],
            name=op.f("fk_ticket_attachments_organization_id_comment_id_ticket_comments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "ticket_id"],
            ["tickets.organization_id", "tickets.id"],
            name=op.f("fk_ticket_attachments_organization_id_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "uploaded_by_id"],
            ["users.organization_id", "users.id"],
            name=op.f("fk_ticket_attachments_organization_id_uploaded_by_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_ticket_attachments_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_attachments")),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_ticket_attachments_organization_id_id")
        ),
        sa.UniqueConstraint(
            "organization_id",
            "storage_key",
            name=op.f("uq_ticket_attachments_organization_id_storage_key"),
        ),
    )
    op.create_index(
        "ix_ticket_attachments_ticket",
        "ticket_attachments",
        ["organization_id", "ticket_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "webhook_delivery_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("attempt_number", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_excerpt", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column(
            "headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "delivery_id"],
            ["webhook_deliveries.organization_id", "webhook_deliveries.id"],
            name=op.f(
                "fk_webhook_delivery_attempts_organization_id_delivery_id_webhook_deliveries"
            ),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_webhook_delivery_attempts_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_delivery_attempts")),
        sa.UniqueConstraint(
            "organization_id",
            "delivery_id",
            "attempt_number",
            name=op.f("uq_webhook_delivery_attempts_organization_id_delivery_id_attempt_number"),
        ),
        sa.UniqueConstraint(
            "organization_id", "id", name=op.f("uq_webhook_delivery_attempts_organization_id_id")
        ),
    )
    if _is_pg():
        _enable_row_level_security()


def downgrade() -> None:
    if _is_pg():
        op.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {_app_role()}"
        )
        op.drop_constraint(
            op.f("fk_departments_organization_id_manager_id_users"),
            "departments",
            type_="foreignkey",
        )
    op.drop_table("webhook_delivery_attempts")
    op.drop_index("ix_ticket_attachments_ticket", table_name="ticket_attachments")
    op.drop_table("ticket_attachments")
    op.drop_index(
        "ix_inbound_messages_failed",
        table_name="inbound_messages",
        postgresql_where=sa.text("status = 'failed'"),
        sqlite_where=sa.text("status = 'failed'"),
    )
    op.drop_index("ix_inbound_messages_external_id", table_name="inbound_messages")
    op.drop_index("ix_inbound_messages_conversation", table_name="inbound_messages")
    op.drop_table("inbound_messages")
    op.drop_index("uq_work_orders_number", table_name="work_orders")
    op.drop_index("ix_work_orders_ticket", table_name="work_orders")
    op.drop_index(
        "ix_work_orders_technician_schedule",
        table_name="work_orders",
        postgresql_where=sa.text("work_orders.deleted_at IS NULL"),
        sqlite_where=sa.text("work_orders.deleted_at IS NULL"),
    )
    op.drop_index(
        "ix_work_orders_status",
        table_name="work_orders",
        postgresql_where=sa.text("work_orders.deleted_at IS NULL"),
        sqlite_where=sa.text("work_orders.deleted_at IS NULL"),
    )
    op.drop_index("ix_work_orders_customer", table_name="work_orders")
    op.drop_table("work_orders")
    op.drop_index("ix_webhook_deliveries_subscription", table_name="webhook_deliveries")
    op.drop_index(
        "ix_webhook_deliveries_due",
        table_name="webhook_deliveries",
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_ticket_history_ticket", table_name="ticket_history")
    op.drop_table("ticket_history")
    op.drop_index("ix_ticket_comments_ticket", table_name="ticket_comments")
    op.drop_table("ticket_comments")
    op.drop_index(
        "ix_webhook_subscriptions_active",
        table_name="webhook_subscriptions",
        postgresql_where=sa.text(
            "webhook_subscriptions.deleted_at IS NULL AND is_active AND disabled_at IS NULL"
        ),
        sqlite_where=sa.text(
            "webhook_subscriptions.deleted_at IS NULL AND is_active AND disabled_at IS NULL"
        ),
    )
    op.drop_table("webhook_subscriptions")
    op.drop_table("visual_workflow_versions")
    op.drop_index("ix_user_sessions_organization_id_user_id", table_name="user_sessions")
    op.drop_table("user_sessions")
    op.drop_index(
        "uq_user_permissions_active_grant",
        table_name="user_permissions",
        postgresql_where=sa.text("is_active"),
        sqlite_where=sa.text("is_active"),
    )
    op.drop_table("user_permissions")
    op.drop_index("uq_tickets_ticket_number", table_name="tickets")
    op.drop_index(
        "ix_tickets_updated",
        table_name="tickets",
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    if _is_pg():
        op.drop_index(
            "ix_tickets_tags",
            table_name="tickets",
            postgresql_using="gin",
            postgresql_ops={"tags": "jsonb_path_ops"},
        )
    op.drop_index(
        "ix_tickets_status",
        table_name="tickets",
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    op.drop_index(
        "ix_tickets_sla_breach",
        table_name="tickets",
        postgresql_where=sa.text("tickets.deleted_at IS NULL AND sla_breach"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL AND sla_breach"),
    )
    op.drop_index(
        "ix_tickets_resolution_due",
        table_name="tickets",
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    op.drop_index(
        "ix_tickets_priority",
        table_name="tickets",
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    op.drop_index(
        "ix_tickets_department",
        table_name="tickets",
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    op.drop_index(
        "ix_tickets_customer",
        table_name="tickets",
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    op.drop_index(
        "ix_tickets_created",
        table_name="tickets",
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    op.drop_index(
        "ix_tickets_channel",
        table_name="tickets",
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    op.drop_index(
        "ix_tickets_assigned_agent",
        table_name="tickets",
        postgresql_where=sa.text("tickets.deleted_at IS NULL"),
        sqlite_where=sa.text("tickets.deleted_at IS NULL"),
    )
    op.drop_table("tickets")
    op.drop_index(
        "uq_technicians_user",
        table_name="technicians",
        postgresql_where=sa.text("technicians.deleted_at IS NULL"),
        sqlite_where=sa.text("technicians.deleted_at IS NULL"),
    )
    op.drop_table("technicians")
    op.drop_index(
        "uq_kb_articles_slug",
        table_name="kb_articles",
        postgresql_where=sa.text("kb_articles.deleted_at IS NULL"),
        sqlite_where=sa.text("kb_articles.deleted_at IS NULL"),
    )
    op.drop_index(
        "ix_kb_articles_category",
        table_name="kb_articles",
        postgresql_where=sa.text("kb_articles.deleted_at IS NULL"),
        sqlite_where=sa.text("kb_articles.deleted_at IS NULL"),
    )
    op.drop_table("kb_articles")
    op.drop_table("api_keys")
    op.drop_index(
        "uq_users_superuser_email",
        table_name="users",
        postgresql_where=sa.text("deleted_at IS NULL AND organization_id IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL AND organization_id IS NULL"),
    )
    op.drop_index(
        "uq_users_email",
        table_name="users",
        postgresql_where=sa.text("users.deleted_at IS NULL"),
        sqlite_where=sa.text("users.deleted_at IS NULL"),
    )
    op.drop_index("ix_users_organization_id_role", table_name="users")
    op.drop_table("users")
    op.drop_index(
        "ix_sla_policies_matching",
        table_name="sla_policies",
        postgresql_where=sa.text("sla_policies.deleted_at IS NULL AND is_active"),
        sqlite_where=sa.text("sla_policies.deleted_at IS NULL AND is_active"),
    )
    op.drop_table("sla_policies")
    op.drop_index(
        "uq_visual_workflows_name",
        table_name="visual_workflows",
        postgresql_where=sa.text("visual_workflows.deleted_at IS NULL"),
        sqlite_where=sa.text("visual_workflows.deleted_at IS NULL"),
    )
    op.drop_table("visual_workflows")
    op.drop_table("sequence_counters")
    op.drop_index(
        "ix_outbox_events_undispatched",
        table_name="outbox_events",
        postgresql_where=sa.text("dispatched_at IS NULL"),
        sqlite_where=sa.text("dispatched_at IS NULL"),
    )
    op.drop_index("ix_outbox_events_aggregate", table_name="outbox_events")
    op.drop_table("outbox_events")
    op.drop_index(
        "uq_kb_categories_slug",
        table_name="kb_categories",
        postgresql_where=sa.text("kb_categories.deleted_at IS NULL"),
        sqlite_where=sa.text("kb_categories.deleted_at IS NULL"),
    )
    op.drop_table("kb_categories")
    op.drop_index(
        "uq_departments_name",
        table_name="departments",
        postgresql_where=sa.text("departments.deleted_at IS NULL"),
        sqlite_where=sa.text("departments.deleted_at IS NULL"),
    )
    op.drop_table("departments")
    op.drop_index(
        "uq_data_retention_policies_type",
        table_name="data_retention_policies",
        postgresql_where=sa.text("data_retention_policies.deleted_at IS NULL"),
        sqlite_where=sa.text("data_retention_policies.deleted_at IS NULL"),
    )
    op.drop_table("data_retention_policies")
    op.drop_index(
        "uq_customers_name",
        table_name="customers",
        postgresql_where=sa.text("customers.deleted_at IS NULL"),
        sqlite_where=sa.text("customers.deleted_at IS NULL"),
    )
    op.drop_index(
        "uq_customers_external_id",
        table_name="customers",
        postgresql_where=sa.text("deleted_at IS NULL AND external_id IS NOT NULL"),
        sqlite_where=sa.text("deleted_at IS NULL AND external_id IS NOT NULL"),
    )
    op.drop_table("customers")
    op.drop_index(
        "uq_custom_fields_name",
        table_name="custom_fields",
        postgresql_where=sa.text("custom_fields.deleted_at IS NULL"),
        sqlite_where=sa.text("custom_fields.deleted_at IS NULL"),
    )
    op.drop_table("custom_fields")
    op.drop_index(
        "uq_channels_address",
        table_name="channels",
        postgresql_where=sa.text("channels.deleted_at IS NULL AND address IS NOT NULL"),
        sqlite_where=sa.text("channels.deleted_at IS NULL AND address IS NOT NULL"),
    )
    op.drop_table("channels")
    op.drop_index(
        "uq_business_hours_name",
        table_name="business_hours",
        postgresql_where=sa.text("business_hours.deleted_at IS NULL"),
        sqlite_where=sa.text("business_hours.deleted_at IS NULL"),
    )
    op.drop_table("business_hours")
    op.drop_index(
        "ix_automation_rules_trigger",
        table_name="automation_rules",
        postgresql_where=sa.text("automation_rules.deleted_at IS NULL AND is_active"),
        sqlite_where=sa.text("automation_rules.deleted_at IS NULL AND is_active"),
    )
    op.drop_table("automation_rules")
    op.drop_index(
        "uq_organizations_slug",
        table_name="organizations",
        postgresql_where=sa.text("organizations.deleted_at IS NULL"),
        sqlite_where=sa.text("organizations.deleted_at IS NULL"),
    )
    op.drop_table("organizations")
