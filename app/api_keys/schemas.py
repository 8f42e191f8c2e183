"""API key bodies: the secret appears in the creation response only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from app.kit.schemas import InputModel, Instant, ReadModel, Title
from app.models.user import Role


class ApiKeyCreate(InputModel):
    name: Title = Field(description="Who uses it, e.g. 'CRM sync'.")
    role: Literal[Role.ADMIN, Role.MANAGER, Role.AGENT] = Field(
        default=Role.AGENT, description="The role the integration acts with."
    )
    expires_at: Instant | None = None


class ApiKeyRead(ReadModel):
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
    key: str = Field(description="Send as `Authorization: Bearer <key>`. Shown only once.")
