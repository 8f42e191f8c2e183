"""Notification bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.kit.schemas import ReadModel


class NotificationRead(ReadModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "0193c2d4-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
                    "user_id": "0191a3c5-1d2e-7f3a-8b4c-5d6e7f8a9bd4",
                    "kind": "sla_escalation",
                    "title": "TK-000042: 75% of the first response target used",
                    "ticket_id": "0192b4d6-4c5d-7e6f-8a7b-8c9d0e1f2a3b",
                    "data": {
                        "target": "first_response",
                        "at_percent": 75,
                        "due_at": "2025-03-07T14:45:00Z",
                    },
                    "read_at": None,
                    "created_at": "2025-03-07T14:45:00Z",
                }
            ]
        },
    )

    id: uuid.UUID
    user_id: uuid.UUID
    kind: str
    title: str
    ticket_id: uuid.UUID | None
    data: dict[str, Any]
    read_at: datetime | None
    created_at: datetime


class MarkedRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"marked": 3}]})

    marked: int = Field(description="How many notifications this call marked read.")
