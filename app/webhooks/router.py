"""/webhooks (admins): subscriptions CRUD + restore, secret rotation, the deliveries
with their attempts, replays and test events."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request

from app.auth.dependencies import IdempotencyKey, IncludeDeletedDep, claim_idempotency, require
from app.auth.permissions import Permission
from app.auth.principal import Principal
from app.db.dependencies import SessionDep, UnitOfWorkDep
from app.kit.pagination import Page, PageParamsDep
from app.kit.signing_secrets import SecretRotation
from app.models.webhook import DeliveryStatus, WebhookSubscription
from app.webhooks import service as webhooks
from app.webhooks.schemas import (
    DeliveryDetail,
    DeliveryRead,
    WebhookCreate,
    WebhookRead,
    WebhookUpdate,
    WebhookWithSecret,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

Admin = Annotated[Principal, Depends(require(Permission.WEBHOOKS_MANAGE))]

SIGNING = """
**Every delivery** is a `POST` of JSON `{"id", "type", "timestamp", "data"}` with the
headers `webhook-id` (the delivery's id: the same on every retry and replay, so a
receiver can drop what it has seen), `webhook-timestamp` (Unix seconds) and
`webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">` with the
secret (Standard Webhooks; during a rotation's overlap a second `v1,…`, space-separated,
by the previous secret). A 2xx answer delivers it; anything else is retried with
backoff for at least 3 days.
"""


def _with_secret(subscription: WebhookSubscription) -> WebhookWithSecret:
    read = WebhookRead.model_validate(subscription)
    return WebhookWithSecret(**read.model_dump(), secret=subscription.secret)


@router.get("", response_model=Page[WebhookRead], summary="List webhooks")
async def list_webhooks(
    _: Admin, session: SessionDep, page: PageParamsDep, include_deleted: IncludeDeletedDep
) -> Page[WebhookRead]:
    """The organization's webhook subscriptions, oldest first; secrets are never listed.

    **Who:** admins (`webhooks:manage`); `include_deleted=true` adds soft-deleted ones.

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.
    """
    result = await webhooks.list_webhooks(session, page, include_deleted=include_deleted)
    return Page.of(result, WebhookRead.model_validate)


@router.post(
    "",
    response_model=WebhookWithSecret,
    status_code=201,
    summary="Create a webhook",
    description="""Subscribes an endpoint to the organization's events and answers its
signing `secret` (`whsec_…`) — **the only time it is shown**.

**Who:** admins (`webhooks:manage`).

- `url`: http(s) (https only in production), no user name or password, and not an
  address of a private, loopback, link-local or reserved network — checked now without
  a lookup, and each delivery checks the addresses the name resolves to then. A
  refused URL is a 422 naming `url`.
- `event_types`: the types to deliver, or `["*"]` (the default) for all.
- Send an `Idempotency-Key` header to make retries safe.
"""
    + SIGNING,
)
async def create_webhook(
    body: WebhookCreate,
    principal: Admin,
    uow: UnitOfWorkDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> WebhookWithSecret:
    idempotency = await claim_idempotency(request, principal, uow.session, idempotency_key)
    created = _with_secret(await webhooks.create_webhook(uow, body, principal.user_id))
    await idempotency.complete(201, created)
    return created


@router.get("/{webhook_id}", response_model=WebhookRead, summary="Get a webhook")
async def get_webhook(webhook_id: uuid.UUID, _: Admin, session: SessionDep) -> Any:
    """One webhook subscription, without its secret.

    **Who:** admins (`webhooks:manage`).

    **Errors:** 404 for another organization's webhook, a missing or a deleted one.
    """
    return await webhooks.get_webhook(session, webhook_id)


@router.patch("/{webhook_id}", response_model=WebhookRead, summary="Update a webhook")
async def update_webhook(
    webhook_id: uuid.UUID, body: WebhookUpdate, _: Admin, uow: UnitOfWorkDep
) -> Any:
    """Changes the fields sent and keeps the others. `is_active: false` stops
    deliveries (they wait, pending); `is_active: true` resumes them and enables an
    endpoint that was disabled for failing a whole day. The secret changes only by
    rotation.

    **Who:** admins (`webhooks:manage`).

    **Errors:** 422 for a field the create would refuse; 404 for another organization's
    webhook, a missing or a deleted one.
    """
    return await webhooks.update_webhook(uow, webhook_id, body)


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook (soft)")
async def delete_webhook(webhook_id: uuid.UUID, _: Admin, session: SessionDep) -> None:
    """Soft-deletes the subscription: nothing is delivered to it until it is restored
    (`POST /webhooks/{webhook_id}/restore`); its deliveries stay listed.

    **Who:** admins (`webhooks:manage`).

    **Errors:** 404 for another organization's webhook, a missing or an already deleted
    one.
    """
    await webhooks.delete_webhook(session, webhook_id)


@router.post("/{webhook_id}/restore", response_model=WebhookRead, summary="Restore a webhook")
async def restore_webhook(webhook_id: uuid.UUID, _: Admin, uow: UnitOfWorkDep) -> Any:
    """Undoes a soft delete, with the secret it had; deliveries still pending go out
    again. A live webhook is returned unchanged.

    **Who:** admins (`webhooks:manage`).

    **Errors:** 404 for another organization's webhook or a missing one.
    """
    return await webhooks.restore_webhook(uow, webhook_id)


# The body is optional: an empty POST rotates with the default overlap.
ROTATION_DEFAULTS = SecretRotation()


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookWithSecret,
    summary="Rotate a webhook's signing secret",
)
async def rotate_secret(
    webhook_id: uuid.UUID,
    _: Admin,
    session: SessionDep,
    body: Annotated[SecretRotation, Body()] = ROTATION_DEFAULTS,
) -> WebhookWithSecret:
    """Answers a new `secret` — shown only now. For `overlap_minutes` (default 24 hours;
    `previous_secret_expires_at` says until when) every delivery carries two signatures,
    by the new and the replaced secret, so the receiver can switch without rejecting a
    message; a secret still in an earlier rotation's overlap stops signing at once.

    **Who:** admins (`webhooks:manage`).

    **Errors:** 404 for another organization's webhook, a missing or a deleted one.
    """
    overlap = timedelta(minutes=body.overlap_minutes)
    return _with_secret(await webhooks.rotate_secret(session, webhook_id, overlap))


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[DeliveryRead],
    summary="List a webhook's deliveries",
)
async def list_deliveries(
    webhook_id: uuid.UUID,
    _: Admin,
    session: SessionDep,
    page: PageParamsDep,
    status: Annotated[
        DeliveryStatus | None, Query(description="Only deliveries in this state.")
    ] = None,
    event_type: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Only this event type.")
    ] = None,
) -> Page[DeliveryRead]:
    """Every event sent (or to be sent) to the webhook, newest first: its state, how
    many attempts were made and what the last one got. `GET
    /webhooks/{webhook_id}/deliveries/{delivery_id}` shows the body and every attempt.

    **Who:** admins (`webhooks:manage`); a deleted webhook's deliveries too.

    **Paging** is keyset: `limit` (1 to 200, default 50) and `cursor` = the previous page's
    `next_cursor`, which is null on the last page.
    """
    result = await webhooks.list_deliveries(
        session, webhook_id, page, status=status, event_type=event_type
    )
    return Page.of(result, DeliveryRead.model_validate)


@router.get(
    "/{webhook_id}/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    summary="Get a delivery and its attempts",
)
async def get_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, _: Admin, session: SessionDep
) -> Any:
    """One delivery: the body exactly as sent, and every attempt, oldest first (status
    code, duration, error, the answer's first KiB).

    **Who:** admins (`webhooks:manage`).

    **Errors:** 404 for another organization's webhook or delivery, or a missing one.
    """
    return await webhooks.get_delivery(session, webhook_id, delivery_id)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/replay",
    response_model=DeliveryRead,
    status_code=202,
    summary="Replay a delivery",
)
async def replay_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, _: Admin, uow: UnitOfWorkDep
) -> Any:
    """Queues a new attempt right away, whatever the delivery's state (a failed one, or
    one delivered that the receiver lost), with the same body and `webhook-id`; if it
    fails, it is retried on the usual schedule, from its start.

    **Who:** admins (`webhooks:manage`).

    **Errors:** 409 when the webhook is inactive or disabled; 404 for another
    organization's webhook or delivery, or a missing one.
    """
    return await webhooks.replay(uow, webhook_id, delivery_id)


@router.post(
    "/{webhook_id}/test",
    response_model=DeliveryRead,
    status_code=202,
    summary="Send a test event",
)
async def send_test(webhook_id: uuid.UUID, _: Admin, uow: UnitOfWorkDep) -> Any:
    """Queues a `webhook.test` event for this endpoint only, whatever its
    `event_types`, delivered (signed, retried, recorded) like any other; the answer is
    the delivery, to follow under `/webhooks/{webhook_id}/deliveries`.

    **Who:** admins (`webhooks:manage`).

    **Errors:** 409 when the webhook is inactive or disabled; 404 for another
    organization's webhook, a missing or a deleted one.
    """
    return await webhooks.send_test(uow, webhook_id)
