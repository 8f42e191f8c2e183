"""Organization bodies: the platform's view (superusers) and the tenant's own view."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from app.kit.schemas import (
    DomainName,
    Email,
    InputModel,
    JsonObject,
    Name,
    Password,
    PatchModel,
    ReadModel,
    Slug,
    Title,
)
from app.models.organization import SubscriptionTier
from app.users.schemas import ADMIN_ID, ORGANIZATION_ID, USER_EXAMPLE, UserRead

SETTINGS_EXAMPLE: dict[str, Any] = {
    "business_hours": {"timezone": "Europe/Berlin", "start": "08:00", "end": "18:00"}
}
ORGANIZATION_EXAMPLE: dict[str, Any] = {
    "id": ORGANIZATION_ID,
    "name": "Acme Corporation",
    "slug": "acme",
    "domain": "acme.example.com",
    "subscription_tier": "professional",
    "settings": SETTINGS_EXAMPLE,
    "created_at": "2024-11-01T08:00:00Z",
    "updated_at": "2025-01-15T11:24:09Z",
    "deleted_at": None,
}
FIRST_ADMIN_EXAMPLE: dict[str, Any] = {
    "email": "alex.kim@acme.example.com",
    "password": "correct-horse-battery-staple",
    "first_name": "Alex",
    "last_name": "Kim",
}


class FirstAdmin(InputModel):
    model_config = ConfigDict(json_schema_extra={"examples": [FIRST_ADMIN_EXAMPLE]})

    email: Email
    password: Password
    first_name: Name = ""
    last_name: Name = ""


class OrganizationCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Acme Corporation",
                    "slug": "acme",
                    "domain": "acme.example.com",
                    "subscription_tier": "professional",
                    "settings": SETTINGS_EXAMPLE,
                    "admin": FIRST_ADMIN_EXAMPLE,
                }
            ]
        }
    )

    name: Title
    slug: Slug = Field(description="The login client_id: lowercase letters, digits, dashes.")
    domain: DomainName | None = None
    subscription_tier: SubscriptionTier = SubscriptionTier.BASIC
    settings: JsonObject = Field(
        default_factory=dict, description="Free-form JSON: at most 8 levels, 64 KiB."
    )
    admin: FirstAdmin = Field(description="The organization's first admin user.")


class CurrentOrganizationUpdate(PatchModel):
    """What an organization's admin may change about it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "Acme Corp.", "settings": SETTINGS_EXAMPLE},
                {"domain": "helpdesk.acme.example.com"},
            ]
        }
    )

    __nullable__: ClassVar[frozenset[str]] = frozenset({"domain"})

    name: Title | None = None
    domain: DomainName | None = None
    subscription_tier: SubscriptionTier | None = None
    settings: JsonObject | None = Field(
        default=None, description="Replaces the whole settings object."
    )


class OrganizationUpdate(CurrentOrganizationUpdate):
    """The platform may also move the slug (the organization's login client_id)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"slug": "acme-corp", "subscription_tier": "enterprise"}]}
    )

    slug: Slug | None = None


class OrganizationRead(ReadModel):
    model_config = ConfigDict(json_schema_extra={"examples": [ORGANIZATION_EXAMPLE]})

    id: uuid.UUID
    name: str
    slug: str
    domain: str | None
    subscription_tier: SubscriptionTier
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class OrganizationCreated(OrganizationRead):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **ORGANIZATION_EXAMPLE,
                    "created_at": "2025-03-04T10:00:00Z",
                    "updated_at": "2025-03-04T10:00:00Z",
                    "admin": {
                        **USER_EXAMPLE,
                        "id": ADMIN_ID,
                        "email": "alex.kim@acme.example.com",
                        "first_name": "Alex",
                        "last_name": "Kim",
                        "phone": None,
                        "role": "admin",
                        "department_id": None,
                        "timezone": "UTC",
                        "language": "en",
                        "skills": [],
                        "certifications": [],
                        "max_concurrent_tickets": 10,
                        "availability_status": "offline",
                        "two_factor_enabled": False,
                        "last_login_at": None,
                        "last_active_at": None,
                        "last_login_ip": None,
                        "created_at": "2025-03-04T10:00:00Z",
                        "updated_at": "2025-03-04T10:00:00Z",
                    },
                }
            ]
        }
    )

    admin: UserRead = Field(description="The first admin; log in with the slug as client_id.")
