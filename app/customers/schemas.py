"""Customer account bodies (a company or household grouping customer users)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field, StringConstraints

from app.kit.schemas import DomainName, Email, InputModel, PatchModel, Phone, ReadModel, Title
from app.models.user import CustomerTier

LongText = Annotated[str, Field(max_length=10_000)]
ExternalId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class CustomerCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Globex Logistics",
                    "email": "it@globex.example.com",
                    "phone": "+49 30 1234567",
                    "domain": "globex.example.com",
                    "address": "Friedrichstrasse 12\n10117 Berlin\nGermany",
                    "notes": "Key account: escalate outages to the account manager.",
                    "external_id": "CRM-00017",
                    "customer_tier": "premium",
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"customer_tier": "enterprise", "notes": "Upgraded with the 2025 contract."},
                {"external_id": "CRM-00017-B", "phone": "+49 30 7654321"},
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0191a3c6-0a1b-7c2d-9e3f-4a5b6c7d8eb4",
                    "name": "Globex Logistics",
                    "email": "it@globex.example.com",
                    "phone": "+49 30 1234567",
                    "domain": "globex.example.com",
                    "address": "Friedrichstrasse 12\n10117 Berlin\nGermany",
                    "notes": "Key account: escalate outages to the account manager.",
                    "external_id": "CRM-00017",
                    "customer_tier": "premium",
                    "created_at": "2025-01-14T10:20:00Z",
                    "updated_at": "2025-02-03T16:45:12Z",
                    "deleted_at": None,
                }
            ]
        }
    )

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
