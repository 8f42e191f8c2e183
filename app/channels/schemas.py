"""Channel bodies, the inbox's rows and the answer a webhook caller gets."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    AnyHttpUrl,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from app.config import API_PREFIX
from app.kit.schemas import Email, InputModel, PatchModel, ReadModel, Title
from app.kit.signing_secrets import EXAMPLE_SECRET
from app.models.channel import ChannelType, InboundStatus, ThreadReason
from app.models.ticket import Priority

CHANNEL_ID = "0191a3c5-3b4c-7d5e-8f6a-7b8c9d0e1f20"
DEPARTMENT_ID = "0191a3c5-3b4c-7d5e-8f6a-7b8c9d0e1f21"
TICKET_ID = "0191a3c5-3b4c-7d5e-8f6a-7b8c9d0e1f22"
COMMENT_ID = "0191a3c5-3b4c-7d5e-8f6a-7b8c9d0e1f23"
INBOX_ID = "0191a3c5-3b4c-7d5e-8f6a-7b8c9d0e1f24"

_http_url = TypeAdapter(AnyHttpUrl)
_email = TypeAdapter(Email)


def _valid_url(value: str) -> str:
    try:
        _http_url.validate_python(value)
    except ValidationError:
        raise ValueError("must be an http(s) URL") from None
    return value


ReplyUrl = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2048), AfterValidator(_valid_url)
]
Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=320)]
PerHour = Annotated[int, Field(strict=True, ge=1, le=10_000)]


def address_problem(kind: ChannelType, address: str | None) -> str | None:
    """An email channel's address is an email address; a chat channel's is any name
    the chat platform knows it by."""
    if address is None or kind is not ChannelType.EMAIL:
        return None
    try:
        _email.validate_python(address)
    except ValidationError:
        return "an email channel's address must be an email address"
    return None


class ChannelCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"type": "email", "name": "Support inbox", "address": "support@example.com"},
                {
                    "type": "chat",
                    "name": "Website chat",
                    "address": "website-widget",
                    "default_department_id": DEPARTMENT_ID,
                    "default_priority": "high",
                    "reply_url": "https://chat.example.com/hooks/helpdesk",
                    "accept_unknown_senders": True,
                    "new_tickets_per_sender_per_hour": 10,
                },
            ]
        }
    )

    type: ChannelType
    name: Title
    address: Address | None = Field(
        default=None,
        description="Email channels: the address customers write to (unique per type, "
        "ignoring case). Chat channels: the platform's name for it.",
    )
    default_department_id: uuid.UUID | None = Field(
        default=None, description="Department of the tickets the channel opens."
    )
    default_priority: Priority = Field(
        default=Priority.MEDIUM, description="Priority of the tickets the channel opens."
    )
    reply_url: ReplyUrl | None = Field(
        default=None, description="Chat: where public replies will be POSTed (signed)."
    )
    accept_unknown_senders: bool = Field(
        default=True,
        description="false: a sender who is not a user of the organization opens no ticket "
        "(the message is stored and `ignored`, reason `unknown_sender`).",
    )
    new_tickets_per_sender_per_hour: PerHour = Field(
        default=20,
        description="New tickets one sender may open through the channel per hour; more "
        "are stored and `ignored` (reason `rate_limited`). Replies are not limited.",
    )
    is_active: bool = Field(
        default=True, description="false: deliveries are refused (403) and nothing is stored."
    )

    @model_validator(mode="after")
    def _address_fits_type(self) -> ChannelCreate:
        problem = address_problem(self.type, self.address)
        if problem is not None:
            raise ValueError(problem)
        return self


class ChannelUpdate(PatchModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "Support (EU)", "default_priority": "high"},
                {"accept_unknown_senders": False, "new_tickets_per_sender_per_hour": 5},
                {"default_department_id": DEPARTMENT_ID, "is_active": False},
            ]
        }
    )

    __nullable__: ClassVar[frozenset[str]] = frozenset(
        {"address", "default_department_id", "reply_url"}
    )

    name: Title | None = None
    address: Address | None = None
    default_department_id: uuid.UUID | None = None
    default_priority: Priority | None = None
    reply_url: ReplyUrl | None = None
    accept_unknown_senders: bool | None = None
    new_tickets_per_sender_per_hour: PerHour | None = None
    is_active: bool | None = None


def _channel_example(**extra: Any) -> dict[str, Any]:
    return {
        "id": CHANNEL_ID,
        "type": "email",
        "name": "Support inbox",
        "address": "support@example.com",
        "default_department_id": DEPARTMENT_ID,
        "default_priority": "medium",
        "reply_url": None,
        "accept_unknown_senders": True,
        "new_tickets_per_sender_per_hour": 20,
        "is_active": True,
        "inbound_url": f"{API_PREFIX}/inbound/email/{CHANNEL_ID}",
        "previous_secret_expires_at": None,
        "created_at": "2025-03-01T09:00:00Z",
        "updated_at": "2025-03-01T09:00:00Z",
        "deleted_at": None,
        **extra,
    }


class ChannelRead(ReadModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_channel_example()]})

    id: uuid.UUID
    type: ChannelType
    name: str
    address: str | None
    default_department_id: uuid.UUID | None
    default_priority: Priority
    reply_url: str | None
    accept_unknown_senders: bool
    new_tickets_per_sender_per_hour: int
    is_active: bool
    inbound_url: str = Field(description="Where the channel's sender POSTs (signed).")
    previous_secret_expires_at: datetime | None = Field(
        description="Until when the secret replaced by the last rotation still verifies."
    )
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None

    @model_validator(mode="before")
    @classmethod
    def _with_inbound_url(cls, data: Any) -> Any:
        fields = dict(data) if isinstance(data, dict) else _attributes(data)
        if "inbound_url" not in fields:
            kind = ChannelType(fields["type"])
            fields["inbound_url"] = f"{API_PREFIX}/inbound/{kind.value}/{fields['id']}"
        return fields


def _attributes(channel: Any) -> dict[str, Any]:
    return {
        name: getattr(channel, name) for name in ChannelRead.model_fields if name != "inbound_url"
    }


class ChannelWithSecret(ChannelRead):
    """A channel as created or rotated: the one answer that shows its secret."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [_channel_example(secret=EXAMPLE_SECRET)]}
    )

    secret: str = Field(
        description="`whsec_…`: the key the sender signs with (Standard Webhooks). Shown "
        "only now; rotate to get a new one."
    )


def with_secret(channel: Any) -> ChannelWithSecret:
    """The channel and its current secret, for the answers that may show it."""
    return ChannelWithSecret.model_validate({**_attributes(channel), "secret": channel.secret})


class InboxItemRead(ReadModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": INBOX_ID,
                    "channel_id": CHANNEL_ID,
                    "external_id": "CAF=1x2y3z@mail.example.org",
                    "status": "threaded",
                    "reason": None,
                    "thread_reason": "in_reply_to",
                    "ticket_id": TICKET_ID,
                    "comment_id": COMMENT_ID,
                    "follow_up_of_ticket_id": None,
                    "sender_email": "jane@example.org",
                    "subject": "Re: [TK-000042] Printer on fire",
                    "message_id": "CAF=1x2y3z@mail.example.org",
                    "in_reply_to": "0191a3c5.reply@helpdesk.example.com",
                    "references": ["0191a3c5.reply@helpdesk.example.com"],
                    "conversation_id": None,
                    "content_type": "message/rfc822",
                    "size": 5231,
                    "attempts": 1,
                    "received_at": "2025-03-04T09:02:10Z",
                    "processed_at": "2025-03-04T09:02:10Z",
                }
            ]
        }
    )

    id: uuid.UUID
    channel_id: uuid.UUID
    external_id: str = Field(description="Message-ID (derived when absent) or chat event id.")
    status: InboundStatus
    reason: str | None = Field(description="Why ignored or failed; what was left out.")
    thread_reason: ThreadReason | None = Field(description="Which rule placed the message.")
    ticket_id: uuid.UUID | None
    comment_id: uuid.UUID | None
    follow_up_of_ticket_id: uuid.UUID | None = Field(
        description="The closed ticket a reply was about, when it opened a follow-up."
    )
    sender_email: str | None
    subject: str | None
    message_id: str | None
    in_reply_to: str | None
    references: list[str] = Field(validation_alias=AliasChoices("references", "reference_ids"))
    conversation_id: str | None
    content_type: str
    size: int = Field(description="Bytes of the payload as received (kept in full).")
    attempts: int
    received_at: datetime = Field(validation_alias=AliasChoices("received_at", "created_at"))
    processed_at: datetime | None


InboundAnswer = Literal["created", "threaded", "duplicate", "ignored", "failed"]


class InboundResult(ReadModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "threaded",
                    "ticket_id": TICKET_ID,
                    "comment_id": COMMENT_ID,
                    "inbox_id": INBOX_ID,
                    "reason": None,
                },
                {
                    "status": "ignored",
                    "ticket_id": None,
                    "comment_id": None,
                    "inbox_id": INBOX_ID,
                    "reason": "auto_submitted",
                },
            ]
        }
    )

    status: InboundAnswer
    ticket_id: uuid.UUID | None = Field(description="The ticket opened or replied to.")
    comment_id: uuid.UUID | None = Field(description="The comment a reply became.")
    inbox_id: uuid.UUID = Field(description="The stored message (admins list the inbox).")
    reason: str | None = Field(description="Why the message was ignored or failed.")
