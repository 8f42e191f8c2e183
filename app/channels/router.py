"""/channels (admins: CRUD + restore, secret rotation, the inbox and its retries) and
/inbound/{email,chat}/{channel_id} (webhook callers, signed, no bearer token)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse

from app.auth.dependencies import IdempotencyKey, IncludeDeletedDep, claim_idempotency, require
from app.auth.permissions import Permission
from app.auth.principal import Principal
from app.channels import service as channels
from app.channels.schemas import (
    ChannelCreate,
    ChannelRead,
    ChannelUpdate,
    ChannelWithSecret,
    InboundResult,
    InboxItemRead,
    with_secret,
)
from app.db.database import Database
from app.db.dependencies import SessionDep, UnitOfWorkDep
from app.kit.errors import PayloadTooLarge
from app.kit.pagination import Page, PageParamsDep
from app.kit.schemas import Instant
from app.kit.signing_secrets import SecretRotation
from app.models.channel import Channel, ChannelType, InboundStatus

router = APIRouter(prefix="/channels", tags=["channels"])
inbound_router = APIRouter(prefix="/inbound", tags=["inbound"])

Admin = Annotated[Principal, Depends(require(Permission.CHANNELS_MANAGE))]


@router.get("", response_model=Page[ChannelRead], summary="List channels")
async def list_channels(
    _: Admin, session: SessionDep, page: PageParamsDep, include_deleted: IncludeDeletedDep
) -> Page[ChannelRead]:
    """The organization's inbound channels, oldest first; secrets are never listed.

    **Who:** admins (`channels:manage`); `include_deleted=true` adds soft-deleted ones.

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.
    """
    result = await channels.list_channels(session, page, include_deleted=include_deleted)
    return Page.of(result, ChannelRead.model_validate)


@router.post("", response_model=ChannelWithSecret, status_code=201, summary="Create a channel")
async def create_channel(
    body: ChannelCreate,
    principal: Admin,
    session: SessionDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> ChannelWithSecret:
    """Creates an inbound email or chat channel and answers its signing `secret`
    (`whsec_…`) — **the only time it is shown**. The sender signs every delivery with it
    (Standard Webhooks) and POSTs to `inbound_url`.

    **Who:** admins (`channels:manage`).

    - `address`: for `email`, an email address, unique among live email channels
      (ignoring case): 409 when taken. For `chat`, any name.
    - `default_department_id` must name a live department (422); `default_priority`
      is `medium` unless set.
    - `accept_unknown_senders` (default true) and `new_tickets_per_sender_per_hour`
      (default 20) decide who may open tickets through the channel.
    - Send an `Idempotency-Key` header to make retries safe.
    """
    idempotency = await claim_idempotency(request, principal, session, idempotency_key)
    created = with_secret(await channels.create_channel(session, body))
    await idempotency.complete(201, created)
    return created


@router.get("/{channel_id}", response_model=ChannelRead, summary="Get a channel")
async def get_channel(channel_id: uuid.UUID, _: Admin, session: SessionDep) -> Channel:
    """One channel, without its secret.

    **Who:** admins (`channels:manage`).

    **Errors:** 404 for another organization's channel, a missing or a deleted one.
    """
    return await channels.get_channel(session, channel_id)


@router.patch("/{channel_id}", response_model=ChannelRead, summary="Update a channel")
async def update_channel(
    channel_id: uuid.UUID, body: ChannelUpdate, _: Admin, session: SessionDep
) -> Channel:
    """Changes the fields sent and keeps the others; `address`, `default_department_id`
    and `reply_url` may be cleared with `null`. The type is fixed (the sender's URL
    names it); the secret changes only by rotation.

    **Who:** admins (`channels:manage`).

    **Errors:** 422 for a field the create would refuse; 409 when another live channel
    of the type has the address; 404 for another organization's channel, a missing or a
    deleted one.
    """
    return await channels.update_channel(session, channel_id, body)


@router.delete("/{channel_id}", status_code=204, summary="Delete a channel (soft)")
async def delete_channel(channel_id: uuid.UUID, _: Admin, session: SessionDep) -> None:
    """Soft-deletes the channel: deliveries to it answer 404 until it is restored
    (`POST /channels/{channel_id}/restore`); its inbox and tickets stay.

    **Who:** admins (`channels:manage`).

    **Errors:** 404 for another organization's channel, a missing or an already deleted
    one.
    """
    await channels.delete_channel(session, channel_id)


@router.post("/{channel_id}/restore", response_model=ChannelRead, summary="Restore a channel")
async def restore_channel(channel_id: uuid.UUID, _: Admin, session: SessionDep) -> Channel:
    """Undoes a soft delete, with the secrets it had; a live channel is returned
    unchanged.

    **Who:** admins (`channels:manage`).

    **Errors:** 409 when a live channel took its address meanwhile; 404 for another
    organization's channel or a missing one.
    """
    return await channels.restore_channel(session, channel_id)


# The body is optional: an empty POST rotates with the default overlap.
ROTATION_DEFAULTS = SecretRotation()


@router.post(
    "/{channel_id}/rotate-secret",
    response_model=ChannelWithSecret,
    summary="Rotate a channel's signing secret",
)
async def rotate_secret(
    channel_id: uuid.UUID,
    _: Admin,
    session: SessionDep,
    body: Annotated[SecretRotation, Body()] = ROTATION_DEFAULTS,
) -> ChannelWithSecret:
    """Answers a new `secret` — shown only now. The replaced one keeps verifying for
    `overlap_minutes` (default 24 hours; `previous_secret_expires_at` says until when),
    so the sender can switch without losing a message; a secret still in an earlier
    rotation's overlap stops verifying at once.

    **Who:** admins (`channels:manage`).

    **Errors:** 404 for another organization's channel, a missing or a deleted one.
    """
    overlap = timedelta(minutes=body.overlap_minutes)
    return with_secret(await channels.rotate_secret(session, channel_id, overlap))


@router.get(
    "/{channel_id}/inbox",
    response_model=Page[InboxItemRead],
    summary="List a channel's received messages",
)
async def list_inbox(
    channel_id: uuid.UUID,
    _: Admin,
    session: SessionDep,
    page: PageParamsDep,
    status: Annotated[
        InboundStatus | None, Query(description="Only messages with this outcome.")
    ] = None,
    since: Annotated[Instant | None, Query(description="Received at or after.")] = None,
) -> Page[InboxItemRead]:
    """Every message the channel stored, newest first, with what processing made of it:
    `received` (not processed yet), `created`, `threaded` (with the rule in
    `thread_reason`), `duplicate`, `ignored` or `failed` (with the `reason`). The payload
    itself is kept in full; the list shows its size.

    **Who:** admins (`channels:manage`); a deleted channel's inbox too.

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.
    """
    result = await channels.list_inbox(session, channel_id, page, status=status, since=since)
    return Page.of(result, InboxItemRead.model_validate)


INBOUND_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": InboundResult, "description": "Stored, but processing failed (`failed`)."},
}


@router.post(
    "/{channel_id}/inbox/{inbox_id}/retry",
    response_model=InboundResult,
    responses=INBOUND_RESPONSES,
    summary="Retry a failed message",
)
async def retry_inbox_message(
    channel_id: uuid.UUID, inbox_id: uuid.UUID, _: Admin, uow: UnitOfWorkDep
) -> JSONResponse:
    """Processes a `failed` message again, exactly as on arrival, and answers the
    outcome like the inbound endpoint does (`202` if it fails again, with the reason).

    **Who:** admins (`channels:manage`).

    **Errors:** 409 for a message that did not fail; 404 for another organization's
    channel or message, or a missing one.
    """
    outcome = await channels.retry(uow, channel_id, inbox_id)
    return JSONResponse(outcome.body(), status_code=outcome.http_status)


# --- the webhook callers -------------------------------------------------------------------

WEBHOOK_RESPONSES: dict[int | str, dict[str, Any]] = {
    **INBOUND_RESPONSES,
    # The problem body is added to each by `document_problems`.
    401: {"description": "Signature missing, wrong, or more than 5 minutes old"},
    403: {"description": "The channel is disabled"},
    404: {"description": "No such channel (of this type)"},
    413: {"description": "The message is larger than MAX_INBOUND_MESSAGE_BYTES"},
    415: {"description": "A content type the channel does not take"},
    422: {"description": "Nothing identifies the message (no id, unreadable body)"},
}

SIGNING = """
**Signing** (Standard Webhooks): headers `webhook-id`, `webhook-timestamp` (Unix
seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`
with the channel's secret (`whsec_…`; during a rotation's overlap the previous one
verifies too). A missing, wrong or stale (±5 minutes) signature is a 401 and nothing is
stored. No bearer token.

**Answers** `{"status", "ticket_id", "comment_id", "inbox_id", "reason"}`: `created`
(a new ticket), `threaded` (a comment on an existing one), `ignored` (an auto-reply,
bulk mail, a bounce, a refused sender, over the sender's hourly limit: `reason` says),
`duplicate` (the same message again: the first outcome's ids, nothing written) — all
200 — or `failed` with 202: the message is stored and an admin can retry it.
"""


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, read in chunks and abandoned as soon as it passes `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The message exceeds the limit of {limit} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"The message exceeds the limit of {limit} bytes.")
    return bytes(body)


async def _deliver(request: Request, kind: ChannelType, channel_id: uuid.UUID) -> JSONResponse:
    database: Database = request.app.state.database
    limit = database.settings.max_inbound_message_bytes
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    delivery = channels.Delivery(
        kind=kind,
        channel_id=channel_id,
        content_type=content_type,
        body=await read_body(request, limit),
        headers={name.lower(): value for name, value in request.headers.items()},
    )
    outcome = await channels.receive(database, delivery)
    return JSONResponse(outcome.body(), status_code=outcome.http_status)


EMAIL_DESCRIPTION = """An email provider's inbound hook. The body is either the raw message
(`Content-Type: message/rfc822`) or a JSON envelope (`application/json`):
`{"message_id", "from", "to", "subject", "text", "html"?, "in_reply_to"?,
"references"? (list), "headers"? (object), "attachments"?: [{"filename",
"content_type", "content_base64"}]}`.

The message is stored as received before it is processed: a message without a
Message-ID gets one derived from its sender, date and body; a body with neither an id
nor a sender is a 422. Replies thread into their ticket by In-Reply-To or References,
or by `[TK-000042]` in the subject when the sender is the ticket's customer or staff;
anything else opens a ticket on the channel's department and priority, for the sender
as a customer user.
"""

CHAT_DESCRIPTION = """A chat platform's event, as JSON: `{"event_id", "conversation_id",
"author": {"email", "name"}, "text", "sent_at"}`. `event_id` identifies it (a body
without one is a 422); the conversation's next messages become comments on the ticket
its first one opened.
"""


@inbound_router.post(
    "/email/{channel_id}",
    response_model=InboundResult,
    responses=WEBHOOK_RESPONSES,
    summary="Deliver an email to a channel",
    description=EMAIL_DESCRIPTION + SIGNING,
)
async def inbound_email(channel_id: uuid.UUID, request: Request) -> JSONResponse:
    return await _deliver(request, ChannelType.EMAIL, channel_id)


@inbound_router.post(
    "/chat/{channel_id}",
    response_model=InboundResult,
    responses=WEBHOOK_RESPONSES,
    summary="Deliver a chat message to a channel",
    description=CHAT_DESCRIPTION + SIGNING,
)
async def inbound_chat(channel_id: uuid.UUID, request: Request) -> JSONResponse:
    return await _deliver(request, ChannelType.CHAT, channel_id)
