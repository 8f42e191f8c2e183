"""Ticket, comment and history bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, StringConstraints

from app.kit.schemas import InputModel, JsonObject, PatchModel, ReadModel
from app.models.ticket import CommentType, Priority, TicketChannel, TicketStatus

Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Description = Annotated[str, Field(max_length=100_000)]
Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=50)
]


def _normalise_tags(tags: list[str]) -> list[str]:
    """Trimmed, lower-cased (by `Tag`), deduplicated, in a stable order."""
    return sorted(set(tags))


Tags = Annotated[list[Tag], Field(max_length=50), AfterValidator(_normalise_tags)]
CustomFieldValues = Annotated[JsonObject, Field(max_length=200)]


class TicketCreate(InputModel):
    subject: Subject
    description: Description = ""
    priority: Priority = Priority.MEDIUM
    channel: TicketChannel = TicketChannel.WEB
    customer_id: uuid.UUID | None = Field(
        default=None, description="Required unless the caller is a customer (then: self)."
    )
    assigned_agent_id: uuid.UUID | None = None
    department_id: uuid.UUID | None = None
    tags: Tags = Field(default_factory=list)
    custom_fields: CustomFieldValues = Field(default_factory=dict)


class TicketUpdate(PatchModel):
    __nullable__: ClassVar[frozenset[str]] = frozenset({"assigned_agent_id", "department_id"})

    status: TicketStatus | None = None
    priority: Priority | None = None
    assigned_agent_id: uuid.UUID | None = None
    department_id: uuid.UUID | None = None
    tags: Tags | None = None
    custom_fields: CustomFieldValues | None = None
    subject: Subject | None = None
    description: Description | None = None


class TicketRead(ReadModel):
    id: uuid.UUID
    ticket_number: str
    subject: str
    description: str
    status: TicketStatus
    priority: Priority
    channel: TicketChannel
    customer_id: uuid.UUID
    assigned_agent_id: uuid.UUID | None
    created_by_id: uuid.UUID | None
    department_id: uuid.UUID | None
    sla_policy_id: uuid.UUID | None
    tags: list[str]
    custom_fields: dict[str, Any]
    sla_breach: bool
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    time_to_first_response: int | None = Field(description="Seconds, or null.")
    time_to_resolution: int | None = Field(description="Seconds, or null.")
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must contain more than whitespace")
    return text


# Kept exactly as written (indentation, trailing newlines): it is someone's message.
MessageBody = Annotated[
    str, StringConstraints(min_length=1, max_length=100_000), AfterValidator(_not_blank)
]


class CommentCreate(InputModel):
    content: MessageBody
    comment_type: CommentType = CommentType.PUBLIC


class CommentRead(ReadModel):
    id: uuid.UUID
    ticket_id: uuid.UUID
    author_id: uuid.UUID
    content: str
    comment_type: CommentType
    has_attachments: bool
    created_at: datetime


class HistoryRead(ReadModel):
    id: uuid.UUID
    ticket_id: uuid.UUID
    field: str
    old_value: str | None
    new_value: str | None
    user_id: uuid.UUID | None
    created_at: datetime
