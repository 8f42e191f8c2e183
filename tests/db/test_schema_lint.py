"""Schema rules every tenant table must follow; exceptions are listed with their reason."""

from __future__ import annotations

import sqlalchemy as sa

from app.db.base import Base
from app.db.tenancy import TenantMixin

TENANT_TABLES = {
    m.local_table.name for m in Base.registry.mappers if issubclass(m.class_, TenantMixin)
}

# (table, columns) → why it may leave organization_id out
UNIQUE_EXCEPTIONS = {
    ("api_keys", ("prefix",)): "looked up before the organization is known",
    ("users", ("email",)): "superusers' emails: they have no organization",
}
FK_EXCEPTIONS = {
    ("user_sessions", ("user_id",)): "ties superusers' sessions (no organization) to a user",
}
INDEX_LEAD_EXCEPTIONS = {
    ("tickets", "ix_tickets_tags"): "GIN on tags; combined with the org index by the planner",
    ("webhook_deliveries", "ix_webhook_deliveries_due"): "platform sweep across tenants",
    ("users", "uq_users_superuser_email"): "superusers have no organization",
    ("api_keys", "uq_api_keys_prefix"): "global credential lookup",
    ("idempotency_keys", "ix_idempotency_keys_created_at"): "platform purge across tenants",
    ("tickets", "ix_tickets_sla_next_deadline"): "SLA timer queue, read by deadline first",
}


def _columns(index: sa.Index | sa.UniqueConstraint) -> tuple[str, ...]:
    return (
        tuple(
            e.name if isinstance(e, sa.Column) else str(e)
            for e in index.expressions  # type: ignore[union-attr]
        )
        if isinstance(index, sa.Index)
        else tuple(c.name for c in index.columns)
    )


def test_every_unique_constraint_includes_organization() -> None:
    offenders = []
    for table in (Base.metadata.tables[t] for t in TENANT_TABLES):
        uniques: list[sa.Index | sa.UniqueConstraint] = [
            c for c in table.constraints if isinstance(c, sa.UniqueConstraint)
        ]
        uniques += [i for i in table.indexes if i.unique]
        for unique in uniques:
            cols = _columns(unique)
            if "organization_id" not in cols and (table.name, cols) not in UNIQUE_EXCEPTIONS:
                offenders.append((table.name, cols))
    assert offenders == []


def test_every_foreign_key_between_tenant_tables_includes_organization() -> None:
    offenders = []
    for table in (Base.metadata.tables[t] for t in TENANT_TABLES):
        for fk in table.foreign_key_constraints:
            target = fk.referred_table.name
            cols = tuple(c.name for c in fk.columns)
            if target == "organizations":
                continue
            exempt = (table.name, cols) in FK_EXCEPTIONS
            if target in TENANT_TABLES and cols[0] != "organization_id" and not exempt:
                offenders.append((table.name, cols, target))
    assert offenders == []


def test_every_index_leads_with_organization() -> None:
    offenders = []
    for table in (Base.metadata.tables[t] for t in TENANT_TABLES):
        for index in table.indexes:
            first = _columns(index)[0]
            if first != "organization_id" and (table.name, index.name) not in INDEX_LEAD_EXCEPTIONS:
                offenders.append((table.name, index.name))
    assert offenders == []


def test_tenant_column_is_not_null_except_superuser_tables() -> None:
    nullable = {t for t in TENANT_TABLES if Base.metadata.tables[t].c.organization_id.nullable}
    assert nullable == {"users", "user_sessions"}


def test_exceptions_still_exist() -> None:
    # A stale exception would hide a future offender with the same name.
    for table, name in INDEX_LEAD_EXCEPTIONS:
        names = {i.name for i in Base.metadata.tables[table].indexes}
        names |= {c.name for c in Base.metadata.tables[table].constraints}
        assert name in names, (table, name)
