"""Tenant and soft-delete building blocks for models.

Every tenant-owned model inherits `TenantMixin`: a non-null `organization_id` and a
`UNIQUE (organization_id, id)` that children reference through composite foreign keys
(`tenant_fk`), so the database itself refuses a comment pointing at another tenant's
ticket. The ORM-level filters live in `app.db.session`; the PostgreSQL row-level
security policies in the migrations.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from app.db.types import UTCDateTime


class TenantMixin:
    """A row that belongs to exactly one organization."""

    __tenant_nullable__: bool = False  # only users/sessions of platform superusers

    @declared_attr
    def organization_id(cls) -> Mapped[uuid.UUID]:
        # No index of its own: UNIQUE (organization_id, id) leads with it.
        return mapped_column(
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=cls.__tenant_nullable__,
            sort_order=-90,
        )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table = getattr(cls, "__table__", None)
        if isinstance(table, sa.Table) and "__table__" in cls.__dict__:
            # The target of every composite foreign key from a child table.
            table.append_constraint(sa.UniqueConstraint("organization_id", "id"))


class TenantRootMixin:
    """The tenant itself (Organization): visible to a tenant session only as its own row."""


class SoftDeleteMixin:
    """The one soft-delete pattern: a `deleted_at` instant, hidden by a global ORM rule.

    Unique constraints of soft-deletable tables are partial indexes
    (`WHERE deleted_at IS NULL`), so a deleted row's unique value can be reused.
    Soft deletion never cascades to children: their rows stay intact and reappear with
    the parent on restore. What a deleted parent means for its children is decided by
    the service (a deleted organization or user can no longer authenticate).
    """

    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None, sort_order=99)

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def soft_delete(self, at: datetime | None = None) -> None:
        self.deleted_at = at or datetime.now(UTC)

    def restore(self) -> None:
        self.deleted_at = None


def not_deleted(table_name: str) -> sa.TextClause:
    """The predicate of partial unique indexes on soft-deletable tables."""
    return sa.text(f"{table_name}.deleted_at IS NULL")


def tenant_fk(
    column: str,
    target_table: str,
    *,
    ondelete: str = "CASCADE",
    use_alter: bool = False,
) -> sa.ForeignKeyConstraint:
    """A foreign key `(organization_id, column) → target(organization_id, id)`.

    `ondelete="SET NULL"` nulls only `column`, never `organization_id`
    (PostgreSQL ≥ 15 `SET NULL (column)`). `use_alter` breaks a creation cycle
    (departments ↔ users) by adding the constraint after both tables exist.
    """
    if ondelete == "SET NULL":
        ondelete = f"SET NULL ({column})"
    return sa.ForeignKeyConstraint(
        ["organization_id", column],
        [f"{target_table}.organization_id", f"{target_table}.id"],
        ondelete=ondelete,
        use_alter=use_alter,
    )


@compiles(sa.ForeignKeyConstraint, "sqlite")
def _sqlite_foreign_key(constraint: sa.ForeignKeyConstraint, compiler: Any, **kw: Any) -> str:
    # SQLite has no `SET NULL (column)`: a plain SET NULL would also null organization_id
    # and fail NOT NULL. There the reference is left as NO ACTION, so hard-deleting a
    # referenced row is refused instead; rows are soft-deleted in normal operation.
    if constraint.ondelete and constraint.ondelete.startswith("SET NULL ("):
        saved = constraint.ondelete
        constraint.ondelete = None
        try:
            return str(compiler.visit_foreign_key_constraint(constraint, **kw))
        finally:
            constraint.ondelete = saved
    return str(compiler.visit_foreign_key_constraint(constraint, **kw))
