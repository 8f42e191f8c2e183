"""People: users of every role, departments, customer accounts, sessions, grants, keys."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, CreatedAtMixin, TimestampMixin
from app.db.tenancy import SoftDeleteMixin, TenantMixin, not_deleted, tenant_fk
from app.db.types import UtcNow, str_enum


class Role(enum.StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    AGENT = "agent"
    CUSTOMER = "customer"


STAFF_ROLES = frozenset({Role.ADMIN, Role.MANAGER, Role.AGENT})


class CustomerTier(enum.StrEnum):
    BASIC = "basic"
    PREMIUM = "premium"
    ENTERPRISE = "enterprise"


class AvailabilityStatus(enum.StrEnum):
    ONLINE = "online"
    AWAY = "away"
    BUSY = "busy"
    OFFLINE = "offline"


class Department(TenantMixin, SoftDeleteMixin, TimestampMixin, Base):
    __tablename__ = "departments"
    __table_args__ = (
        sa.Index(
            "uq_departments_name",
            "organization_id",
            sa.text("lower(name)"),
            unique=True,
            postgresql_where=not_deleted("departments"),
            sqlite_where=not_deleted("departments"),
        ),
        tenant_fk("manager_id", "users", ondelete="SET NULL", use_alter=True),
    )

    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    email: Mapped[str | None] = mapped_column(sa.String(320))
    manager_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)


class Customer(TenantMixin, SoftDeleteMixin, TimestampMixin, Base):
    """A customer account (a company or a household) grouping customer users."""

    __tablename__ = "customers"
    __table_args__ = (
        sa.Index(
            "uq_customers_name",
            "organization_id",
            sa.text("lower(name)"),
            unique=True,
            postgresql_where=not_deleted("customers"),
            sqlite_where=not_deleted("customers"),
        ),
        sa.Index(
            "uq_customers_external_id",
            "organization_id",
            "external_id",
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL AND external_id IS NOT NULL"),
            sqlite_where=sa.text("deleted_at IS NULL AND external_id IS NOT NULL"),
        ),
    )

    name: Mapped[str] = mapped_column(sa.String(255))
    email: Mapped[str | None] = mapped_column(sa.String(320))
    phone: Mapped[str | None] = mapped_column(sa.String(50))
    domain: Mapped[str | None] = mapped_column(sa.String(255))
    address: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    notes: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    external_id: Mapped[str | None] = mapped_column(sa.String(255))
    customer_tier: Mapped[CustomerTier] = mapped_column(
        str_enum(CustomerTier, "customer_tier"),
        default=CustomerTier.BASIC,
        server_default=CustomerTier.BASIC.value,
    )


class User(TenantMixin, SoftDeleteMixin, TimestampMixin, Base):
    """Staff, customers and platform superusers.

    The one documented exception to a non-null `organization_id`: platform superusers
    belong to no organization (a CHECK ties the two together), so the tenant filter and
    RLS hide them from every tenant session. Soft deletion is `deleted_at`; a soft-deleted
    user can no longer authenticate, their tickets and
    comments stay. Email is stored in lower case (a CHECK) and unique per organization
    among non-deleted users (and among superusers). Look-ups compare the column itself:
    under row-level security an index is used only for leakproof conditions, and
    `lower()` is not one, so `lower(email) = :x` read every user of the organization."""

    __tablename__ = "users"
    __tenant_nullable__ = True
    __table_args__ = (
        sa.Index(
            "uq_users_email",
            "organization_id",
            "email",
            unique=True,
            postgresql_where=not_deleted("users"),
            sqlite_where=not_deleted("users"),
        ),
        sa.Index(
            "uq_users_superuser_email",
            "email",
            unique=True,
            postgresql_where=sa.text("deleted_at IS NULL AND organization_id IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL AND organization_id IS NULL"),
        ),
        sa.CheckConstraint("email = lower(email)", name="email_lowercase"),
        sa.Index("ix_users_organization_id_role", "organization_id", "role"),
        sa.CheckConstraint(
            "(is_superuser AND organization_id IS NULL) "
            "OR (NOT is_superuser AND organization_id IS NOT NULL)",
            name="superuser_has_no_organization",
        ),
        sa.CheckConstraint("max_concurrent_tickets >= 0", name="max_concurrent_tickets_nonneg"),
        sa.CheckConstraint(
            "customer_id IS NULL OR role = 'customer'", name="customer_account_role"
        ),
        tenant_fk("customer_id", "customers", ondelete="SET NULL"),
        tenant_fk("department_id", "departments", ondelete="SET NULL"),
    )

    organization_id: Mapped[uuid.UUID | None] = mapped_column(  # type: ignore[assignment]
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=True, sort_order=-90
    )
    email: Mapped[str] = mapped_column(sa.String(320))
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    first_name: Mapped[str] = mapped_column(sa.String(150), default="", server_default="")
    last_name: Mapped[str] = mapped_column(sa.String(150), default="", server_default="")
    phone: Mapped[str | None] = mapped_column(sa.String(50))
    is_superuser: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    role: Mapped[Role] = mapped_column(
        str_enum(Role, "user_role"), default=Role.CUSTOMER, server_default=Role.CUSTOMER.value
    )
    customer_tier: Mapped[CustomerTier] = mapped_column(
        str_enum(CustomerTier, "customer_tier"),
        default=CustomerTier.BASIC,
        server_default=CustomerTier.BASIC.value,
    )
    customer_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    department_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    timezone: Mapped[str] = mapped_column(sa.String(50), default="UTC", server_default="UTC")
    language: Mapped[str] = mapped_column(sa.String(10), default="en", server_default="en")
    skills: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    certifications: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    max_concurrent_tickets: Mapped[int] = mapped_column(default=10, server_default="10")
    availability_status: Mapped[AvailabilityStatus] = mapped_column(
        str_enum(AvailabilityStatus, "availability_status"),
        default=AvailabilityStatus.OFFLINE,
        server_default=AvailabilityStatus.OFFLINE.value,
    )
    email_notifications: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    sms_notifications: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    push_notifications: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    two_factor_enabled: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    totp_secret: Mapped[str | None] = mapped_column(sa.String(64))
    # The last 30-second step a one-time code was accepted for: a code works once.
    totp_last_used_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    last_login_at: Mapped[datetime | None]
    last_active_at: Mapped[datetime | None]
    last_login_ip: Mapped[str | None] = mapped_column(sa.String(45))


class UserSession(TenantMixin, TimestampMixin, Base):
    """A login: access tokens carry its id, so revoking it ends them on the next request.

    `refresh_token_hash` is the digest of the one refresh token currently valid; a
    refresh presenting any other token of this session is a replay and revokes it.
    Superusers' sessions have no organization, like their user row."""

    __tablename__ = "user_sessions"
    __tenant_nullable__ = True
    __table_args__ = (
        sa.Index("ix_user_sessions_organization_id_user_id", "organization_id", "user_id"),
        tenant_fk("user_id", "users"),
    )

    organization_id: Mapped[uuid.UUID | None] = mapped_column(  # type: ignore[assignment]
        sa.ForeignKey("organizations.id", ondelete="CASCADE"), nullable=True, sort_order=-90
    )
    # The plain FK keeps superusers' sessions (no organization, so the composite FK is
    # not checked under MATCH SIMPLE) tied to a real user too.
    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    ip_address: Mapped[str | None] = mapped_column(sa.String(45))
    user_agent: Mapped[str] = mapped_column(sa.String(512), default="", server_default="")
    last_activity_at: Mapped[datetime] = mapped_column(
        default=UtcNow(), server_default=sa.func.now()
    )
    expires_at: Mapped[datetime]
    refresh_token_hash: Mapped[str] = mapped_column(sa.String(64))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    revoked_at: Mapped[datetime | None]


class UserPermission(TenantMixin, CreatedAtMixin, Base):
    """A named permission granted on top of a user's role; `expires_at` ends it by itself
    (checked at use, no job needed), `is_active = false` revokes it early."""

    __tablename__ = "user_permissions"
    __table_args__ = (
        sa.Index(
            "uq_user_permissions_active_grant",
            "organization_id",
            "user_id",
            "permission",
            unique=True,
            postgresql_where=sa.text("is_active"),
            sqlite_where=sa.text("is_active"),
        ),
        tenant_fk("user_id", "users"),
        tenant_fk("granted_by_id", "users", ondelete="SET NULL"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    permission: Mapped[str] = mapped_column(sa.String(100))
    granted_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    granted_at: Mapped[datetime] = mapped_column(default=UtcNow(), server_default=sa.func.now())
    expires_at: Mapped[datetime | None]
    is_active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())

    @property
    def is_effective(self) -> bool:
        """In force right now: active and not expired."""
        return self.is_active and (self.expires_at is None or self.expires_at > datetime.now(UTC))


class ApiKey(TenantMixin, TimestampMixin, Base):
    """An integration credential acting as a named principal with a role.

    Only a SHA-256 digest of the secret is stored (the secret is 256 random bits, so a
    slow hash buys nothing). `prefix` is globally unique — the one documented exception
    to tenant-scoped uniqueness — because the key is looked up before its organization
    is known."""

    __tablename__ = "api_keys"
    __table_args__ = (
        sa.UniqueConstraint("prefix"),
        sa.CheckConstraint("role <> 'customer'", name="role_not_customer"),
        tenant_fk("created_by_id", "users", ondelete="SET NULL"),
    )

    name: Mapped[str] = mapped_column(sa.String(255))
    prefix: Mapped[str] = mapped_column(sa.String(16))
    key_hash: Mapped[str] = mapped_column(sa.String(64))
    role: Mapped[Role] = mapped_column(str_enum(Role, "api_key_role"), default=Role.AGENT)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
