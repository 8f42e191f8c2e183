"""Customer account bodies (a company or household grouping customer users)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints

from app.kit.schemas import DomainName, Email, InputModel, PatchModel, Phone, ReadModel, Title
from app.models.user import CustomerTier

LongText = Annotated[str, Field(max_length=10_000)]
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class CustomerCreate(InputModel):
    name: Title
    email: Email | None = None
    phone: Phone | None = None
    domain: DomainName | None = None
    address: LongText = ""
    notes: LongText = ""
    external_id: ExternalId | None = Field(
        default=None, description="The account's id in your CRM; unique when set."
    )
    customer_tier: CustomerTier = CustomerTier.BASIC


class CustomerUpdate(PatchModel):
    __nullable__: ClassVar[frozenset[str]] = frozenset({"email", "phone", "domain", "external_id"})

    name: Title | None = None
    email: Email | None = None
    phone: Phone | None = None
    domain: DomainName | None = None
    address: LongText | None = None
    notes: LongText | None = None
    external_id: ExternalId | None = None
    customer_tier: CustomerTier | None = None


class CustomerRead(ReadModel):
    id: uuid.UUID
    name: str
    email: str | None
    phone: str | None
    domain: str | None
    address: str
    notes: str
    external_id: str | None
    customer_tier: CustomerTier
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
