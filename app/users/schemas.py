"""User and permission-grant bodies. Never a password hash or a TOTP secret out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from app.auth.permissions import Permission
from app.kit.schemas import (
    Email,
    InputModel,
    Instant,
    Labels,
    Language,
    Name,
    Password,
    PatchModel,
    Phone,
    ReadModel,
    Timezone,
)
from app.models.user import AvailabilityStatus, CustomerTier, Role


class SuperuserCreate(InputModel):
    email: Email
    password: Password


class UserCreate(InputModel):
    email: Email
    password: Password | None = Field(
        default=None, description="Omit for users who never log in (yet)."
    )
    first_name: Name = ""
    last_name: Name = ""
    phone: Phone | None = None
    role: Role
    customer_tier: CustomerTier = CustomerTier.BASIC
    customer_id: uuid.UUID | None = Field(
        default=None, description="The customer account (customers only)."
    )
    department_id: uuid.UUID | None = None
    timezone: Timezone = "UTC"
    language: Language = "en"
    skills: Labels = Field(default_factory=list)
    certifications: Labels = Field(default_factory=list)
    max_concurrent_tickets: int = Field(default=10, ge=0, le=1000)
    availability_status: AvailabilityStatus = AvailabilityStatus.OFFLINE
    email_notifications: bool = True
    sms_notifications: bool = False
    push_notifications: bool = True


class UserUpdate(PatchModel):
    """What admins and managers may change on a user of their organization."""

    __nullable__: ClassVar[frozenset[str]] = frozenset({"phone", "customer_id", "department_id"})

    email: Email | None = None
    password: Password | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    phone: Phone | None = None
    role: Role | None = None
    customer_tier: CustomerTier | None = None
    customer_id: uuid.UUID | None = None
    department_id: uuid.UUID | None = None
    timezone: Timezone | None = None
    language: Language | None = None
    skills: Labels | None = None
    certifications: Labels | None = None
    max_concurrent_tickets: int | None = Field(default=None, ge=0, le=1000)
    availability_status: AvailabilityStatus | None = None
    email_notifications: bool | None = None
    sms_notifications: bool | None = None
    push_notifications: bool | None = None
    two_factor_enabled: Literal[False] | None = Field(
        default=None, description="false: reset a user's lost second factor (admins)."
    )


class UserSelfUpdate(PatchModel):
    """What anyone may change on their own profile: not role, email or organization."""

    __nullable__: ClassVar[frozenset[str]] = frozenset({"phone"})

    first_name: Name | None = None
    last_name: Name | None = None
    phone: Phone | None = None
    timezone: Timezone | None = None
    language: Language | None = None
    availability_status: AvailabilityStatus | None = None
    email_notifications: bool | None = None
    sms_notifications: bool | None = None
    push_notifications: bool | None = None
    password: Password | None = Field(default=None, description="Needs `current_password`.")
    current_password: str | None = Field(default=None, max_length=1024)


class UserRead(ReadModel):
    id: uuid.UUID
    organization_id: uuid.UUID | None
    email: str
    first_name: str
    last_name: str
    phone: str | None
    role: Role | None = Field(description="null for platform superusers.")
    is_superuser: bool
    customer_tier: CustomerTier
    customer_id: uuid.UUID | None
    department_id: uuid.UUID | None
    timezone: str
    language: str
    skills: list[str]
    certifications: list[str]
    max_concurrent_tickets: int
    availability_status: AvailabilityStatus
    email_notifications: bool
    sms_notifications: bool
    push_notifications: bool
    two_factor_enabled: bool
    last_login_at: datetime | None
    last_active_at: datetime | None
    last_login_ip: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    @model_validator(mode="after")
    def _superusers_have_no_tenant_role(self) -> UserRead:
        if self.is_superuser:
            self.role = None
        return self


class MeRead(UserRead):
    permissions: list[Permission] = Field(
        description="Effective permissions: the role's plus unexpired grants."
    )


class GrantCreate(InputModel):
    permission: Permission
    expires_at: Instant | None = Field(default=None, description="Omit for no expiry.")


class GrantRead(ReadModel):
    id: uuid.UUID
    user_id: uuid.UUID
    permission: str
    granted_by_id: uuid.UUID | None
    granted_at: datetime
    expires_at: datetime | None
    is_active: bool
    is_effective: bool = Field(description="Active and not expired: in force right now.")
