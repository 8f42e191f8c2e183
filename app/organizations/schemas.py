"""Organization bodies: the platform's view (superusers) and the tenant's own view."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from pydantic import Field

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
from app.users.schemas import UserRead


class FirstAdmin(InputModel):
    email: Email
    password: Password
    first_name: Name = ""
    last_name: Name = ""


class OrganizationCreate(InputModel):
    name: Title
    slug: Slug = Field(description="The login client_id: lowercase letters, digits, dashes.")
    domain: DomainName | None = None
    subscription_tier: SubscriptionTier = SubscriptionTier.BASIC
    settings: JsonObject = Field(default_factory=dict)
    admin: FirstAdmin


class CurrentOrganizationUpdate(PatchModel):
    """What an organization's admin may change about it."""

    __nullable__: ClassVar[frozenset[str]] = frozenset({"domain"})

    name: Title | None = None
    domain: DomainName | None = None
    subscription_tier: SubscriptionTier | None = None
    settings: JsonObject | None = None


class OrganizationUpdate(CurrentOrganizationUpdate):
    """The platform may also move the slug (the organization's login client_id)."""

    slug: Slug | None = None


class OrganizationRead(ReadModel):
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
    admin: UserRead
