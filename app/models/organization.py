"""Organization: the tenant. Everything else hangs off it."""

from __future__ import annotations

import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, TimestampMixin
from app.db.tenancy import SoftDeleteMixin, TenantMixin, TenantRootMixin, not_deleted
from app.db.types import str_enum


class SubscriptionTier(enum.StrEnum):
    """A closed set (default "basic"), safe for billing and feature gates; a new tier is
    one CHECK away."""

    BASIC = "basic"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"


class Organization(TenantRootMixin, SoftDeleteMixin, TimestampMixin, Base):
    """Soft-deleted through `deleted_at` (the one pattern): a soft-deleted organization
    locks out all its users at once; its rows stay intact.
    Hard deletion (retention, a tenant leaving) cascades to every tenant table."""

    __tablename__ = "organizations"
    __table_args__ = (
        sa.Index(
            "uq_organizations_slug",
            "slug",
            unique=True,
            postgresql_where=not_deleted("organizations"),
            sqlite_where=not_deleted("organizations"),
        ),
        sa.CheckConstraint("slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$'", name="slug_format").ddl_if(
            dialect="postgresql"
        ),
        sa.CheckConstraint("length(trim(name)) > 0", name="name_not_blank"),
    )

    name: Mapped[str] = mapped_column(sa.String(255))
    slug: Mapped[str] = mapped_column(sa.String(63))
    domain: Mapped[str | None] = mapped_column(sa.String(255))
    subscription_tier: Mapped[SubscriptionTier] = mapped_column(
        str_enum(SubscriptionTier, "subscription_tier"),
        default=SubscriptionTier.BASIC,
        server_default=SubscriptionTier.BASIC.value,
    )
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")


class SequenceCounter(TenantMixin, Base):
    """Per-organization counters for human-readable numbers (TK-000042, WO-000007).

    `UPDATE … SET value = value + 1 RETURNING value` takes a row lock, so concurrent
    creates in one organization get distinct numbers without retries, and different
    organizations never contend."""

    __tablename__ = "sequence_counters"
    __table_args__ = (sa.UniqueConstraint("organization_id", "name"),)

    name: Mapped[str] = mapped_column(sa.String(32))
    value: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
