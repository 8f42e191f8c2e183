"""API key bodies: the secret appears in the creation response only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from app.kit.schemas import InputModel, Instant, ReadModel, Title
from app.models.user import Role

_KEY_EXAMPLE: dict[str, Any] = {
    "id": "0191a3e1-6c7d-7e8f-9a0b-1c2d3e4f5a2b",
    "name": "CRM sync",
    "prefix": "3f9a1c7e5b20",
    "role": "agent",
    "created_by_id": "0191a3c4-5d70-7a81-8b2c-3d4e5f6a7b81",
    "last_used_at": "2025-03-04T09:15:00Z",
    "expires_at": "2030-01-01T00:00:00Z",
    "revoked_at": None,
    "created_at": "2025-02-20T14:30:00Z",
}


class ApiKeyCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "CRM sync", "role": "agent", "expires_at": "2030-01-01T00:00:00Z"}
            ]
        }
    )

    name: Title = Field(description="Who uses it, e.g. 'CRM sync'.")
    role: Literal[Role.ADMIN, Role.MANAGER, Role.AGENT] = Field(
        default=Role.AGENT, description="The role the integration acts with."
    )
    expires_at: Instant | None = Field(
        default=None, description="In the future; omit for a key that does not expire."
    )


class ApiKeyRead(ReadModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_KEY_EXAMPLE]})

    id: uuid.UUID
    name: str
    prefix: str = Field(description="Identifies the key in logs and lists; not secret.")
    role: Role
    created_by_id: uuid.UUID | None
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class ApiKeyCreated(ApiKeyRead):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_KEY_EXAMPLE,
                    "last_used_at": None,
                    "key": "hdk_3f9a1c7e5b20_W8mZ2qR5tY7uI0oP3aS6dF9gH1jK4lZxCvBnM2qW5eR",
                }
            ]
        }
    )

    key: str = Field(description="Send as `Authorization: Bearer <key>`. Shown only once.")
