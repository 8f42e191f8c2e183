"""Knowledge base: categories (a tree) and articles."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, TimestampMixin
from app.db.tenancy import SoftDeleteMixin, TenantMixin, not_deleted, tenant_fk


class KBCategory(TenantMixin, SoftDeleteMixin, TimestampMixin, Base):
    """Removing a parent category lifts its children to the top level (SET NULL)."""

    __tablename__ = "kb_categories"
    __table_args__ = (
        sa.Index(
            "uq_kb_categories_slug",
            "organization_id",
            "slug",
            unique=True,
            postgresql_where=not_deleted("kb_categories"),
            sqlite_where=not_deleted("kb_categories"),
        ),
        sa.CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
        tenant_fk("parent_id", "kb_categories", ondelete="SET NULL"),
    )

    name: Mapped[str] = mapped_column(sa.String(255))
    slug: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    parent_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    position: Mapped[int] = mapped_column(default=0, server_default="0")
    is_public: Mapped[bool] = mapped_column(default=True, server_default=sa.true())


class KBArticle(TenantMixin, SoftDeleteMixin, TimestampMixin, Base):
    """An article outlives its category and its author (both SET NULL)."""

    __tablename__ = "kb_articles"
    __table_args__ = (
        sa.Index(
            "uq_kb_articles_slug",
            "organization_id",
            "slug",
            unique=True,
            postgresql_where=not_deleted("kb_articles"),
            sqlite_where=not_deleted("kb_articles"),
        ),
        sa.Index(
            "ix_kb_articles_category",
            "organization_id",
            "category_id",
            postgresql_where=not_deleted("kb_articles"),
            sqlite_where=not_deleted("kb_articles"),
        ),
        sa.CheckConstraint(
            "view_count >= 0 AND helpful_count >= 0 AND not_helpful_count >= 0",
            name="counters_nonneg",
        ),
        tenant_fk("category_id", "kb_categories", ondelete="SET NULL"),
        tenant_fk("author_id", "users", ondelete="SET NULL"),
    )

    category_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    author_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    title: Mapped[str] = mapped_column(sa.String(255))
    slug: Mapped[str] = mapped_column(sa.String(255))
    summary: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    content: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    tags: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    is_published: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    published_at: Mapped[datetime | None]
    view_count: Mapped[int] = mapped_column(default=0, server_default="0")
    helpful_count: Mapped[int] = mapped_column(default=0, server_default="0")
    not_helpful_count: Mapped[int] = mapped_column(default=0, server_default="0")
