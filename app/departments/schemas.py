"""Department bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, ClassVar

from pydantic import Field

from app.kit.schemas import Email, InputModel, PatchModel, ReadModel, Title

Description = Annotated[str, Field(max_length=10_000)]


class DepartmentCreate(InputModel):
    name: Title
    description: Description = ""
    email: Email | None = None
    manager_id: uuid.UUID | None = Field(default=None, description="A staff user.")


class DepartmentUpdate(PatchModel):
    __nullable__: ClassVar[frozenset[str]] = frozenset({"email", "manager_id"})

    name: Title | None = None
    description: Description | None = None
    email: Email | None = None
    manager_id: uuid.UUID | None = None


class DepartmentRead(ReadModel):
    id: uuid.UUID
    name: str
    description: str
    email: str | None
    manager_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
