"""Ticket, comment and history bodies."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar

from fastapi.openapi.models import Example
from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, model_validator

from app.kit.schemas import InputModel, JsonObject, PatchModel, ReadModel
from app.models.ticket import (
    CommentType,
    Priority,
    ReplyDelivery,
    SLAStatus,
    TicketChannel,
    TicketStatus,
)

Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Description = Annotated[str, Field(max_length=100_000)]
Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=50)
]


def _normalise_tags(tags: list[str]) -> list[str]:
    """Trimmed, lower-cased (by `Tag`), deduplicated, in a stable order."""
    return sorted(set(tags))


Tags = Annotated[list[Tag], Field(max_length=50), AfterValidator(_normalise_tags)]
MAX_CUSTOM_FIELD_VALUES = 200


def _bounded_by_count(schema: dict[str, Any]) -> None:
    # `max_length` of an object counts its keys; Pydantic publishes it as maxLength.
    schema.pop("maxLength", None)
    schema["maxProperties"] = MAX_CUSTOM_FIELD_VALUES


CustomFieldValues = Annotated[
    JsonObject, Field(max_length=MAX_CUSTOM_FIELD_VALUES, json_schema_extra=_bounded_by_count)
]

# The one ticket the examples follow: TK-000042 of customer Sam Ortiz, assigned to agent
# Dana Fischer of the hardware department (the same ids as the other domains' examples).
TICKET_ID = "0191b0e2-7c4a-7d1e-8f3b-9a2c4e6d8fd6"
CUSTOMER_USER_ID = "0191a3c6-1f20-7b3c-8d4e-5f6a7b8c9da3"
AGENT_ID = "0191a3c5-0e1f-7a2b-9c3d-4e5f6a7b8c92"
DEPARTMENT_ID = "0191a3c5-2a3b-7c4d-8e5f-6a7b8c9d0ec5"
COMMENT_ID = "0191b0e9-3d5f-7a2c-9b4e-6c8d0f2a4be7"

TICKET_EXAMPLE: dict[str, Any] = {
    "id": TICKET_ID,
    "ticket_number": "TK-000042",
    "subject": "Printer on the 3rd floor jams on every job",
    "description": "Since Monday the printer in room 3.14 jams after the first page.",
    "status": "open",
    "priority": "high",
    "channel": "email",
    "customer_id": CUSTOMER_USER_ID,
    "assigned_agent_id": AGENT_ID,
    "created_by_id": CUSTOMER_USER_ID,
    "department_id": DEPARTMENT_ID,
    "sla_policy_id": "0191a3c7-5b6c-7d8e-9f0a-1b2c3d4e5f6a",
    "tags": ["hardware", "printer"],
    "custom_fields": {"asset_tag": "PRN-0314"},
    "sla_breach": False,
    "sla_status": "first_response_due",
    "first_response_due_at": "2025-03-04T12:12:45Z",
    "next_reply_due_at": None,
    "resolution_due_at": "2025-03-06T08:12:45Z",
    "first_response_at": "2025-03-04T09:02:10Z",
    "resolved_at": None,
    "closed_at": None,
    "time_to_first_response": 2965,
    "time_to_resolution": None,
    "version": 4,
    "created_at": "2025-03-04T08:12:45Z",
    "updated_at": "2025-03-04T09:02:10Z",
    "deleted_at": None,
}

TICKET_CREATE_EXAMPLES: dict[str, Example] = {
    "staff": {
        "summary": "Staff open a ticket for a customer",
        "value": {
            "subject": "Printer on the 3rd floor jams on every job",
            "description": "Since Monday the printer in room 3.14 jams after the first page.",
            "priority": "high",
            "channel": "email",
            "customer_id": CUSTOMER_USER_ID,
            "assigned_agent_id": AGENT_ID,
            "department_id": DEPARTMENT_ID,
            "tags": ["printer", "hardware"],
            "custom_fields": {"asset_tag": "PRN-0314"},
        },
    },
    "customer": {
        "summary": "A customer opens a ticket for themselves",
        "description": "No `customer_id`, `assigned_agent_id` or `department_id`.",
        "value": {
            "subject": "Cannot download last month's invoice",
            "description": "The download link on the billing page answers 'file not found'.",
            "priority": "medium",
        },
    },
}

TICKET_UPDATE_EXAMPLES: dict[str, Example] = {
    "resolve": {
        "summary": "Move the status (open → resolved)",
        "value": {"status": "resolved"},
    },
    "assign": {
        "summary": "Assign an agent and raise the priority",
        "description": "Send `null` as `assigned_agent_id` to unassign.",
        "value": {"assigned_agent_id": AGENT_ID, "priority": "urgent"},
    },
    "edit": {
        "summary": "Edit subject and department",
        "value": {"subject": "Printer 3.14 jams on every job", "department_id": DEPARTMENT_ID},
    },
    "fields": {
        "summary": "Replace the tags, set one custom field",
        "description": "Other custom fields keep their values; a key sent as `null` is removed.",
        "value": {
            "tags": ["hardware", "printer", "toner"],
            "custom_fields": {"asset_tag": "PRN-0315"},
        },
    },
}

COMMENT_CREATE_EXAMPLES: dict[str, Example] = {
    "public": {
        "summary": "A public reply (the customer sees it)",
        "value": {
            "content": "Thanks for the report. A technician will replace the fuser unit "
            "this afternoon.",
            "comment_type": "public",
        },
    },
    "internal": {
        "summary": "An internal note (staff only)",
        "value": {
            "content": "Fuser ordered under warranty case 88-1302.",
            "comment_type": "internal",
        },
    },
}


class TicketCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [e["value"] for e in TICKET_CREATE_EXAMPLES.values()]}
    )

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
    """Only the fields sent change; `null` only for `assigned_agent_id` and
    `department_id` (unassign)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [e["value"] for e in TICKET_UPDATE_EXAMPLES.values()]}
    )

    __nullable__: ClassVar[frozenset[str]] = frozenset({"assigned_agent_id", "department_id"})

    status: TicketStatus | None = Field(
        default=None, description="A move allowed from the current status, else 409."
    )
    priority: Priority | None = None
    assigned_agent_id: uuid.UUID | None = None
    department_id: uuid.UUID | None = None
    tags: Tags | None = Field(default=None, description="Replaces the whole list.")
    custom_fields: CustomFieldValues | None = Field(
        default=None,
        description="Merged into the stored values: keys sent are set, a key sent as null "
        "is removed, keys left out are kept.",
    )
    subject: Subject | None = None
    description: Description | None = None


class TicketRead(ReadModel):
    model_config = ConfigDict(json_schema_extra={"examples": [TICKET_EXAMPLE]})

    id: uuid.UUID
    ticket_number: str = Field(description="`TK-` and six digits, per organization.")
    subject: str
    description: str
    status: TicketStatus
    priority: Priority
    channel: TicketChannel
    customer_id: uuid.UUID = Field(description="The customer user the ticket is for.")
    assigned_agent_id: uuid.UUID | None
    created_by_id: uuid.UUID | None = Field(description="null when the system opened it.")
    department_id: uuid.UUID | None
    sla_policy_id: uuid.UUID | None
    tags: list[str]
    custom_fields: dict[str, Any]
    sla_breach: bool
    sla_status: SLAStatus | None = Field(
        description="Where the SLA stands: `first_response_due`, `resolution_due`, `paused`, "
        "`breached` or `fulfilled`; null without a policy or once cancelled."
    )
    first_response_due_at: datetime | None
    next_reply_due_at: datetime | None = Field(
        description="Set while a customer's public comment waits for a staff reply."
    )
    resolution_due_at: datetime | None = Field(
        description="Null while the resolution clock is paused (pending)."
    )
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    time_to_first_response: int | None = Field(description="Seconds, or null.")
    time_to_resolution: int | None = Field(description="Seconds, or null.")
    version: int = Field(
        description="Goes up with every write; also sent as the `ETag` header. Send it back "
        'as `If-Match: "<version>"` to update or delete only this version.'
    )
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
    model_config = ConfigDict(
        json_schema_extra={"examples": [e["value"] for e in COMMENT_CREATE_EXAMPLES.values()]}
    )

    content: MessageBody = Field(description="Kept exactly as sent (whitespace included).")
    comment_type: CommentType = Field(
        default=CommentType.PUBLIC,
        description="`internal`: a note customers never see (staff only).",
    )


class CommentDelivery(ReadModel):
    """A staff reply on its way to the customer by the ticket's channel."""

    status: ReplyDelivery = Field(
        description="`queued` (waiting for its first attempt or a retry), `sent`, or "
        "`failed` (refused for good, or every retry failed)."
    )
    attempts: int = Field(description="Sending attempts made so far.")
    error: str | None = Field(
        description="Why the last attempt failed (while retrying, or why it was given up)."
    )
    sent_at: datetime | None


class CommentRead(ReadModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": COMMENT_ID,
                    "ticket_id": TICKET_ID,
                    "author_id": AGENT_ID,
                    "content": "Thanks for the report. A technician will replace the "
                    "fuser unit this afternoon.",
                    "comment_type": "public",
                    "has_attachments": True,
                    "created_at": "2025-03-04T09:02:10Z",
                    "delivery": {
                        "status": "sent",
                        "attempts": 1,
                        "error": None,
                        "sent_at": "2025-03-04T09:02:21Z",
                    },
                }
            ]
        }
    )

    id: uuid.UUID
    ticket_id: uuid.UUID
    author_id: uuid.UUID
    content: str
    comment_type: CommentType
    has_attachments: bool
    created_at: datetime
    delivery: CommentDelivery | None = Field(
        default=None,
        description="Staff replies on email and chat tickets are sent to the customer; "
        "null for everything that is not sent (internal notes, customers' comments, "
        "other tickets) and in customers' reads.",
    )

    @model_validator(mode="before")
    @classmethod
    def _delivery_of_row(cls, data: Any) -> Any:
        # A comment row holds its delivery in flat `delivery_*` columns.
        if not isinstance(data, Mapping) or "delivery" in data:
            return data
        status = data.get("delivery_status")
        delivery = (
            None
            if status is None
            else {
                "status": status,
                "attempts": data["delivery_attempts"],
                "error": data["delivery_error"],
                "sent_at": data["delivery_sent_at"],
            }
        )
        return {**data, "delivery": delivery}


class HistoryRead(ReadModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0191b0e9-3d60-7b1a-8c2d-4e6f8a0b2cf8",
                    "ticket_id": TICKET_ID,
                    "field": "status",
                    "old_value": "new",
                    "new_value": "open",
                    "user_id": AGENT_ID,
                    "created_at": "2025-03-04T08:40:03Z",
                }
            ]
        }
    )

    id: uuid.UUID
    ticket_id: uuid.UUID
    field: str = Field(
        description="The changed field, or `ticket` (created), `comment`, `attachment`."
    )
    old_value: str | None = Field(description="As text (JSON for lists and objects).")
    new_value: str | None
    user_id: uuid.UUID | None = Field(description="null: the system or an API key.")
    created_at: datetime
