"""Webhook subscription bodies, their deliveries and attempts."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, AliasChoices, ConfigDict, Field, StringConstraints

from app.kit.schemas import InputModel, PatchModel, ReadModel
from app.kit.signing_secrets import EXAMPLE_SECRET
from app.models.webhook import DeliveryStatus
from app.webhooks.events import ALL_EVENTS, EVENT_TYPES, TEST_EVENT

WEBHOOK_ID = "0191a3c5-3b4c-7d5e-8f6a-7b8c9d0e1f30"
DELIVERY_ID = "0191a3c5-3b4c-7d5e-8f6a-7b8c9d0e1f31"
EVENT_ID = "0191a3c5-3b4c-7d5e-8f6a-7b8c9d0e1f32"
ATTEMPT_ID = "0191a3c5-3b4c-7d5e-8f6a-7b8c9d0e1f33"

EventType = Literal[
    "*",
    "ticket.created",
    "ticket.updated",
    "ticket.deleted",
    "ticket.comment_added",
    "ticket.attachment_added",
    "ticket.sla_breached",
    "ticket.sla_escalated",
]
assert set(get_args(EventType)) == {ALL_EVENTS, *EVENT_TYPES}


def _event_types(values: list[str]) -> list[str]:
    unique = list(dict.fromkeys(values))
    if ALL_EVENTS in unique and len(unique) > 1:
        raise ValueError("'*' already means every event type: send it alone")
    return unique


EventTypes = Annotated[
    list[EventType],
    Field(min_length=1, max_length=len(EVENT_TYPES) + 1),
    AfterValidator(_event_types),
]
TargetUrl = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]

URL_DESCRIPTION = (
    "Where deliveries are POSTed: http(s), https only in production; no user name or "
    "password; not a private, loopback, link-local or reserved address."
)
EVENT_TYPES_DESCRIPTION = (
    "The event types delivered: any of " + ", ".join(f"`{e}`" for e in EVENT_TYPES) + ", or "
    '`["*"]` (the default) for every type, those added later included.'
)


class WebhookCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"url": "https://hooks.example.com/helpdesk"},
                {
                    "url": "https://hooks.example.com/tickets",
                    "event_types": ["ticket.created", "ticket.updated"],
                    "description": "CRM sync",
                    "is_active": True,
                },
            ]
        }
    )

    url: TargetUrl = Field(description=URL_DESCRIPTION)
    event_types: EventTypes = Field(default=["*"], description=EVENT_TYPES_DESCRIPTION)
    description: Description = ""
    # Strict: 0 and 1 are not booleans (lax mode would read them as such).
    is_active: bool = Field(default=True, strict=True, description="false: no event is delivered.")


class WebhookUpdate(PatchModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"event_types": ["ticket.comment_added"]},
                {"url": "https://hooks.example.com/v2", "description": "CRM sync (v2)"},
                {"is_active": True},
            ]
        }
    )

    url: TargetUrl | None = Field(default=None, description=URL_DESCRIPTION)
    event_types: EventTypes | None = Field(default=None, description=EVENT_TYPES_DESCRIPTION)
    description: Description | None = None
    is_active: bool | None = Field(
        default=None,
        strict=True,
        description="false stops deliveries; true resumes them, and enables an endpoint "
        "disabled for failing (clearing `disabled_at`).",
    )


def _webhook_example(**extra: Any) -> dict[str, Any]:
    return {
        "id": WEBHOOK_ID,
        "url": "https://hooks.example.com/helpdesk",
        "event_types": ["ticket.created", "ticket.updated"],
        "description": "CRM sync",
        "is_active": True,
        "disabled_at": None,
        "disabled_reason": None,
        "failing_since": None,
        "previous_secret_expires_at": None,
        "created_at": "2025-03-01T09:00:00Z",
        "updated_at": "2025-03-01T09:00:00Z",
        "deleted_at": None,
        **extra,
    }


class WebhookRead(ReadModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_webhook_example()]})

    id: uuid.UUID
    url: str
    event_types: list[str] = Field(validation_alias=AliasChoices("event_types", "events"))
    description: str
    is_active: bool
    disabled_at: datetime | None = Field(
        description="When the endpoint was disabled for failing a whole day; "
        '`PATCH {"is_active": true}` enables it again.'
    )
    disabled_reason: str | None
    failing_since: datetime | None = Field(
        description="The first failure of the current streak; a success clears it."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="Until when deliveries are signed with the secret the last rotation "
        "replaced, too."
    )
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class WebhookWithSecret(WebhookRead):
    """A subscription as created or rotated: the one answer that shows its secret."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [_webhook_example(secret=EXAMPLE_SECRET)]}
    )

    secret: str = Field(
        description="`whsec_…`: the key deliveries are signed with (Standard Webhooks). "
        "Shown only now; rotate to get a new one."
    )


def _delivery_example(**extra: Any) -> dict[str, Any]:
    return {
        "id": DELIVERY_ID,
        "subscription_id": WEBHOOK_ID,
        "event_id": EVENT_ID,
        "event_type": "ticket.updated",
        "status": "succeeded",
        "attempt_count": 2,
        "next_attempt_at": None,
        "delivered_at": "2025-03-04T09:00:36Z",
        "last_attempt_at": "2025-03-04T09:00:36Z",
        "last_status_code": 204,
        "last_error": None,
        "created_at": "2025-03-04T09:00:00Z",
        **extra,
    }


class DeliveryRead(ReadModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_delivery_example()]})

    id: uuid.UUID = Field(description="Also the `webhook-id` header of every attempt.")
    subscription_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str = Field(description=f"An event type, or `{TEST_EVENT}`.")
    status: DeliveryStatus = Field(
        description="`pending` (waiting for its next attempt), `succeeded` (a 2xx "
        "answer) or `failed` (no 2xx within the retry window)."
    )
    attempt_count: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime


class AttemptRead(ReadModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": ATTEMPT_ID,
                    "attempt_number": 1,
                    "status_code": 503,
                    "duration_ms": 212,
                    "error": None,
                    "response_excerpt": "upstream unavailable",
                    "request_headers": {
                        "webhook-id": DELIVERY_ID,
                        "webhook-timestamp": "1741078800",
                        "content-type": "application/json",
                        "user-agent": "helpdesk-webhooks/1.0",
                    },
                    "created_at": "2025-03-04T09:00:01Z",
                }
            ]
        }
    )

    id: uuid.UUID
    attempt_number: int
    status_code: int | None = Field(description="None when no answer came (see `error`).")
    duration_ms: int | None
    error: str | None = Field(description="Why no answer came: refused target, timeout…")
    response_excerpt: str | None = Field(description="The answer's first KiB.")
    request_headers: dict[str, str] = Field(
        validation_alias=AliasChoices("request_headers", "headers"),
        description="What was sent besides the body and the signature.",
    )
    created_at: datetime


class DeliveryDetail(DeliveryRead):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                _delivery_example(
                    payload='{"id":"' + EVENT_ID + '","type":"ticket.updated",'
                    '"timestamp":"2025-03-04T09:00:00Z","data":{"id":"0191a3c5-3b4c-7d5e-'
                    '8f6a-7b8c9d0e1f22","ticket_number":"TK-000042","changes":{"status":'
                    '{"old":"new","new":"open"}}}}',
                    attempts=[],
                )
            ]
        }
    )

    payload: str = Field(description="The body, exactly as sent and signed.")
    attempts: list[AttemptRead]
