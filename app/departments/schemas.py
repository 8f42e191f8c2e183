"""Department bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field

from app.kit.schemas import Email, InputModel, PatchModel, ReadModel, Title

Description = Annotated[str, Field(max_length=10_000)]


class DepartmentCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Hardware support",
                    "description": "Printers, laptops and peripherals.",
                    "email": "hardware@acme.example.com",
                    "manager_id": "0191a3c5-1d2e-7f3a-8b4c-5d6e7f8a9bd4",
                }
            ]
        }
    )

    name: Title
    description: Description = ""
    email: Email | None = None
    manager_id: uuid.UUID | None = Field(
        default=None, description="A staff user (agent, manager or admin) of the organization."
    )


class DepartmentUpdate(PatchModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"description": "Printers, laptops, phones and peripherals."},
                {"manager_id": "0191a3c5-1d2e-7f3a-8b4c-5d6e7f8a9bd4"},
            ]
        }
    )

    __nullable__: ClassVar[frozenset[str]] = frozenset({"email", "manager_id"})

    name: Title | None = None
    description: Description | None = None
    email: Email | None = None
    manager_id: uuid.UUID | None = None


class DepartmentRead(ReadModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0191a3c5-2a3b-7c4d-8e5f-6a7b8c9d0ec5",
                    "name": "Hardware support",
                    "description": "Printers, laptops and peripherals.",
                    "email": "hardware@acme.example.com",
                    "manager_id": "0191a3c5-1d2e-7f3a-8b4c-5d6e7f8a9bd4",
                    "created_at": "2024-11-02T08:00:00Z",
                    "updated_at": "2025-01-20T13:37:42Z",
                    "deleted_at": None,
                }
            ]
        }
    )

    id: uuid.UUID
    name: str
    description: str
    email: str | None
    manager_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
