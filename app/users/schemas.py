"""User and permission-grant bodies. Never a password hash or a TOTP secret out."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar, Literal

from fastapi.openapi.models import Example
from pydantic import ConfigDict, Field, model_validator

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

AGENT_ID = "0191a3c5-0e1f-7a2b-9c3d-4e5f6a7b8c92"
ADMIN_ID = "0191a3c4-5d70-7a81-8b2c-3d4e5f6a7b81"
ORGANIZATION_ID = "0191a3c4-5d6e-7f80-9a1b-2c3d4e5f6a70"
DEPARTMENT_ID = "0191a3c5-2a3b-7c4d-8e5f-6a7b8c9d0ec5"
CUSTOMER_ACCOUNT_ID = "0191a3c6-0a1b-7c2d-9e3f-4a5b6c7d8eb4"

USER_EXAMPLE: dict[str, Any] = {
    "id": AGENT_ID,
    "organization_id": ORGANIZATION_ID,
    "email": "dana.fischer@acme.example.com",
    "first_name": "Dana",
    "last_name": "Fischer",
    "phone": "+49 30 9876543",
    "role": "agent",
    "is_superuser": False,
    "customer_tier": "basic",
    "customer_id": None,
    "department_id": DEPARTMENT_ID,
    "timezone": "Europe/Berlin",
    "language": "de",
    "skills": ["printers", "networking"],
    "certifications": ["CompTIA A+"],
    "max_concurrent_tickets": 15,
    "availability_status": "online",
    "email_notifications": True,
    "sms_notifications": False,
    "push_notifications": True,
    "two_factor_enabled": True,
    "last_login_at": "2025-03-04T07:58:12Z",
    "last_active_at": "2025-03-04T09:02:10Z",
    "last_login_ip": "203.0.113.24",
    "created_at": "2024-11-04T09:30:00Z",
    "updated_at": "2025-02-11T15:20:31Z",
    "deleted_at": None,
}
# An agent's role permissions, as /users/me lists them (sorted).
AGENT_PERMISSIONS: list[Any] = [
    "changes:read",
    "comments:internal",
    "customers:read",
    "departments:read",
    "field_service:read",
    "kb:read",
    "kb:write",
    "organization:read",
    "tickets:create",
    "tickets:history",
    "tickets:read",
    "tickets:update",
    "users:read",
]
USER_CREATE_EXAMPLES: dict[str, Example] = {
    "agent": {
        "summary": "An agent who logs in with a password",
        "value": {
            "email": "dana.fischer@acme.example.com",
            "password": "correct-horse-battery-staple",
            "first_name": "Dana",
            "last_name": "Fischer",
            "role": "agent",
            "department_id": DEPARTMENT_ID,
            "timezone": "Europe/Berlin",
            "language": "de",
            "skills": ["printers", "networking"],
            "max_concurrent_tickets": 15,
        },
    },
    "customer": {
        "summary": "A customer user of a customer account, without a password (yet)",
        "value": {
            "email": "sam.ortiz@globex.example.com",
            "first_name": "Sam",
            "last_name": "Ortiz",
            "role": "customer",
            "customer_id": CUSTOMER_ACCOUNT_ID,
            "customer_tier": "premium",
        },
    },
}
USER_UPDATE_EXAMPLES: dict[str, Example] = {
    "promote": {
        "summary": "Change the role and the ticket limit",
        "value": {"role": "manager", "max_concurrent_tickets": 25},
    },
    "move": {
        "summary": "Move to another department",
        "description": "Send `null` as `department_id` to remove the user from it.",
        "value": {"department_id": DEPARTMENT_ID, "availability_status": "offline"},
    },
    "reset-2fa": {
        "summary": "Reset a lost second factor (admins)",
        "description": "Also ends every session of the user.",
        "value": {"two_factor_enabled": False},
    },
}
USER_SELF_UPDATE_EXAMPLES: dict[str, Example] = {
    "profile": {
        "summary": "Update availability and time zone",
        "value": {"availability_status": "away", "timezone": "Europe/Lisbon"},
    },
    "password": {
        "summary": "Change your password",
        "description": "Ends your other sessions; this one stays signed in.",
        "value": {
            "current_password": "correct-horse-battery-staple",
            "password": "a-new-and-longer-passphrase",
        },
    },
}


class SuperuserCreate(InputModel):
    email: Email
    password: Password


class UserCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [e["value"] for e in USER_CREATE_EXAMPLES.values()]}
    )

    email: Email
    password: Password | None = Field(
        default=None, description="Omit for users who never log in (yet)."
    )
    first_name: Name = ""
    last_name: Name = ""
    phone: Phone | None = None
    role: Role = Field(description="At most the caller's own role; only admins create admins.")
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

    model_config = ConfigDict(
        json_schema_extra={"examples": [e["value"] for e in USER_UPDATE_EXAMPLES.values()]}
    )

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

    model_config = ConfigDict(
        json_schema_extra={"examples": [e["value"] for e in USER_SELF_UPDATE_EXAMPLES.values()]}
    )

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
    model_config = ConfigDict(json_schema_extra={"examples": [USER_EXAMPLE]})

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
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**USER_EXAMPLE, "permissions": AGENT_PERMISSIONS}]}
    )

    permissions: list[Permission] = Field(
        description="Effective permissions: the role's plus unexpired grants."
    )


class GrantCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"permission": "tickets:delete", "expires_at": "2030-01-01T00:00:00Z"},
                {"permission": "customers:write"},
            ]
        }
    )

    permission: Permission = Field(
        description="One the granter's role holds; never the platform's `organizations:manage`."
    )
    expires_at: Instant | None = Field(default=None, description="Omit for no expiry.")


class GrantRead(ReadModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0191a3f2-7d8e-7f9a-8b0c-1d2e3f4a5b4d",
                    "user_id": AGENT_ID,
                    "permission": "tickets:delete",
                    "granted_by_id": ADMIN_ID,
                    "granted_at": "2025-03-01T12:00:00Z",
                    "expires_at": "2030-01-01T00:00:00Z",
                    "is_active": True,
                    "is_effective": True,
                }
            ]
        }
    )

    id: uuid.UUID
    user_id: uuid.UUID
    permission: str
    granted_by_id: uuid.UUID | None
    granted_at: datetime
    expires_at: datetime | None
    is_active: bool
    is_effective: bool = Field(description="Active and not expired: in force right now.")
