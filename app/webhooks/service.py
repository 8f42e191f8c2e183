"""Outbound webhooks: subscriptions (admins), and the delivery of events to them.

**From the outbox to deliveries.** The outbox relay hands each batch of events to
`on_events`, in the relay's own transaction: one `WebhookDelivery` per receiving
subscription of the event's organization (active, not disabled, live) whose
`event_types` name it, its body built once — the exact bytes every attempt sends and
signs; an event relayed twice makes no second delivery. After the relay commits, one
delivery job per subscription is queued (`DELIVER_JOB`), coalesced like the relay, so
a slow endpoint's job never holds up another endpoint's.

**A delivery job** (`app.webhooks.tasks`) claims the subscription's due deliveries
(`claim`), sends them (`app.webhooks.sender`), and records each attempt (`record`).
Due means `pending` and `next_attempt_at` passed, and the oldest pending delivery of
its ticket: a ticket's later event waits until its earlier one is delivered or given
up. The claim leases what it takes (moves `next_attempt_at` a minute on) and commits
before anything is sent, so no transaction stays open while an endpoint answers, and
two jobs never send one delivery at once; if the job dies mid-send, the lease runs out
and the delivery is due again.

**The outcome.** A 2xx delivers it. Anything else — another status, a timeout, a
refused address — is retried on `RetrySchedule` (backoff with jitter, at least three
days, never sooner than `Retry-After`), then `failed`. Every attempt is a row. A
success clears the subscription's `failing_since`; a failure starts it, and one a day
or more after it disables the endpoint and notifies the organization's admins. A retry
the backoff would schedule past that day comes at the day's end instead (unless the
receiver's `Retry-After` asks for later), so a dead endpoint is disabled after 24 hours,
not after the next day-long step.

Retries wait in the database (`next_attempt_at`): the periodic sweep
(`app.webhooks.tasks.sweep_deliveries`) queues a job for every subscription with a
delivery due, so nothing is lost when Redis is, or when a worker dies.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.base import new_id
from app.db.unit_of_work import UnitOfWork
from app.kit.errors import Conflict, NotFound, ValidationFailed
from app.kit.journal import Journal
from app.kit.outbox import subscribe
from app.kit.pagination import PageParams, PageResult
from app.kit.records import apply_changes, field_error
from app.kit.repository import Record
from app.kit.schemas import instant_text
from app.kit.signing_secrets import new_secret
from app.models.outbox import OutboxEvent
from app.models.webhook import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookSubscription,
)
from app.notifications.service import notify
from app.webhooks.events import EVENT_TYPES, TEST_EVENT, wants
from app.webhooks.repository import AttemptRepository, DeliveryRepository, WebhookRepository
from app.webhooks.schedule import MAX_RETRY_AFTER_SECONDS, RetrySchedule
from app.webhooks.schemas import WebhookCreate, WebhookUpdate
from app.webhooks.sender import Outcome, Outgoing
from app.webhooks.targets import url_problem

DELIVERY_TABLE = cast(sa.Table, WebhookDelivery.__table__)
DELIVER_JOB = "webhooks.deliver"
# Events of one subscription relayed within this long share one delivery job.
DELIVER_COALESCE_SECONDS = 0.1
CLAIM_BATCH = 16
# Longer than a batch can take (a 10 s timeout, a 5 s resolution, all sent at once).
LEASE = timedelta(seconds=60)
FAILING_LIMIT = timedelta(hours=24)
DISABLED_NOTIFICATION = "webhook_disabled"


def utcnow() -> datetime:
    return datetime.now(UTC)


# --- subscriptions ------------------------------------------------------------------------


def _check_url(settings: Settings, url: str) -> None:
    problem = url_problem(
        url,
        https_only=settings.environment == "production",
        allow_private=settings.webhook_allow_private_targets,
    )
    if problem is not None:
        raise ValidationFailed(
            "The URL cannot receive webhooks.", errors=[field_error("url", problem)]
        )


async def list_webhooks(
    session: AsyncSession, page: PageParams, *, include_deleted: bool = False
) -> PageResult[Record]:
    return await WebhookRepository(session).list_page(page, include_deleted=include_deleted)


async def get_webhook(
    session: AsyncSession, subscription_id: uuid.UUID, *, include_deleted: bool = False
) -> WebhookSubscription:
    return await WebhookRepository(session).get(subscription_id, include_deleted=include_deleted)


async def create_webhook(
    uow: UnitOfWork, data: WebhookCreate, created_by_id: uuid.UUID | None
) -> WebhookSubscription:
    _check_url(uow.settings, data.url)
    subscription = WebhookSubscription(
        url=data.url,
        events=data.event_types,
        description=data.description,
        is_active=data.is_active,
        secret=new_secret(),
        created_by_id=created_by_id,
    )
    uow.session.add(subscription)
    await uow.session.flush()
    return subscription


async def update_webhook(
    uow: UnitOfWork, subscription_id: uuid.UUID, data: WebhookUpdate
) -> WebhookSubscription:
    """`is_active: true` also enables an endpoint disabled for failing; the deliveries
    that waited for it (inactive, or disabled) are due at once."""
    subscription = await WebhookRepository(uow.session).get(subscription_id)
    changes = data.changes()
    if "url" in changes:
        _check_url(uow.settings, changes["url"])
    if "event_types" in changes:
        changes["events"] = changes.pop("event_types")
    enabling = changes.get("is_active") is True and (
        not subscription.is_active or subscription.disabled_at is not None
    )
    if enabling:
        changes |= {"disabled_at": None, "disabled_reason": None, "failing_since": None}
    apply_changes(subscription, changes)
    await uow.session.flush()
    if enabling:
        await DeliveryRepository(uow.session).resume(subscription.id, utcnow())
        queue_delivery(uow, subscription.id)
    return subscription


async def delete_webhook(session: AsyncSession, subscription_id: uuid.UUID) -> None:
    """Soft: nothing is delivered to it until it is restored; its deliveries stay."""
    (await get_webhook(session, subscription_id)).soft_delete()
    await session.flush()


async def restore_webhook(uow: UnitOfWork, subscription_id: uuid.UUID) -> WebhookSubscription:
    subscription = await get_webhook(uow.session, subscription_id, include_deleted=True)
    if subscription.is_deleted:
        subscription.restore()
        await uow.session.flush()
        queue_delivery(uow, subscription.id)
    return subscription


async def rotate_secret(
    session: AsyncSession, subscription_id: uuid.UUID, overlap: timedelta
) -> WebhookSubscription:
    """A new secret; deliveries carry a signature by the replaced one too for `overlap`
    (none for a zero overlap). A secret still in an earlier rotation's overlap stops
    signing: two rotations in a row leave the newest two."""
    subscription = await WebhookRepository(session).lock(subscription_id)
    if subscription is None:
        raise NotFound("No such webhook.")
    if overlap > timedelta(0):
        subscription.previous_secret = subscription.secret
        subscription.previous_secret_expires_at = utcnow() + overlap
    else:
        subscription.previous_secret = None
        subscription.previous_secret_expires_at = None
    subscription.secret = new_secret()
    await session.flush()
    return subscription


def signing_secrets(subscription: Record, now: datetime) -> list[str]:
    """The current secret, and the previous one while its overlap lasts."""
    found = [subscription["secret"]]
    expires = subscription["previous_secret_expires_at"]
    if subscription["previous_secret"] and expires is not None and expires > now:
        found.append(subscription["previous_secret"])
    return found


# --- deliveries as the API shows them -----------------------------------------------------


async def list_deliveries(
    session: AsyncSession,
    subscription_id: uuid.UUID,
    page: PageParams,
    *,
    status: DeliveryStatus | None = None,
    event_type: str | None = None,
) -> PageResult[Record]:
    await get_webhook(session, subscription_id, include_deleted=True)
    return await DeliveryRepository(session).page_of(
        subscription_id, page, status=status, event_type=event_type
    )


async def get_delivery(
    session: AsyncSession, subscription_id: uuid.UUID, delivery_id: uuid.UUID
) -> Record:
    """The delivery, its body and every attempt, oldest first."""
    await get_webhook(session, subscription_id, include_deleted=True)
    delivery = await DeliveryRepository(session).get(subscription_id, delivery_id)
    if delivery is None:
        raise NotFound("No such delivery.")
    delivery["attempts"] = await AttemptRepository(session).of_delivery(delivery_id)
    return delivery


async def _receiving(session: AsyncSession, subscription_id: uuid.UUID) -> WebhookSubscription:
    subscription = await get_webhook(session, subscription_id)
    if not subscription.is_active or subscription.disabled_at is not None:
        raise Conflict(
            "The webhook is inactive or disabled, and nothing is sent to it: enable it "
            'first (PATCH {"is_active": true}).'
        )
    return subscription


async def replay(uow: UnitOfWork, subscription_id: uuid.UUID, delivery_id: uuid.UUID) -> Record:
    """A new attempt right away, whatever the delivery's status, with the same body and
    `webhook-id`; if it fails, retries follow the schedule from its start again."""
    await _receiving(uow.session, subscription_id)
    deliveries = DeliveryRepository(uow.session)
    if await deliveries.get(subscription_id, delivery_id) is None:
        raise NotFound("No such delivery.")
    delivery = await deliveries.lock(delivery_id)
    assert delivery is not None
    now = utcnow()
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now
    delivery.retrying_since = now
    delivery.attempts_before_window = delivery.attempt_count
    await uow.session.flush()
    queue_delivery(uow, subscription_id)
    return _record_of(delivery)


async def send_test(uow: UnitOfWork, subscription_id: uuid.UUID) -> Record:
    """A `webhook.test` event for this endpoint only, delivered like any other."""
    subscription = await _receiving(uow.session, subscription_id)
    now = utcnow()
    event_id = new_id()
    data = {"webhook_id": str(subscription.id), "url": subscription.url}
    delivery = WebhookDelivery(
        subscription_id=subscription.id,
        event_id=event_id,
        event_type=TEST_EVENT,
        aggregate_id=None,
        payload=envelope(event_id, TEST_EVENT, now, data),
        next_attempt_at=now,
        retrying_since=now,
    )
    uow.session.add(delivery)
    await uow.session.flush()
    queue_delivery(uow, subscription.id)
    return _record_of(delivery)


def _record_of(delivery: WebhookDelivery) -> Record:
    return {column.key: getattr(delivery, column.key) for column in DELIVERY_TABLE.c}


# --- the relay's side ---------------------------------------------------------------------


def envelope(event_id: uuid.UUID, event_type: str, at: datetime, data: dict[str, Any]) -> str:
    """The body every attempt of a delivery sends: `{"id", "type", "timestamp", "data"}`
    (the Standard Webhooks payload shape), compact JSON."""
    body = {"id": str(event_id), "type": event_type, "timestamp": instant_text(at), "data": data}
    return json.dumps(body, separators=(",", ":"))


async def on_events(uow: UnitOfWork, events: Sequence[OutboxEvent]) -> None:
    """The relay's handler (see the module docstring): the deliveries of these events,
    one executemany; an event relayed again makes no second delivery."""
    subscriptions = await WebhookRepository(uow.session).receiving()
    if not subscriptions:
        return
    now = utcnow()
    rows: list[Record] = []
    targeted: set[uuid.UUID] = set()
    for event in events:
        targets = [s["id"] for s in subscriptions if wants(s["events"], event.event_type)]
        if not targets:
            continue
        body = envelope(event.id, event.event_type, event.created_at or now, event.payload)
        rows.extend(
            {
                "subscription_id": subscription_id,
                "event_id": event.id,
                "event_type": event.event_type,
                "aggregate_id": event.aggregate_id,
                "payload": body,
                "next_attempt_at": now,
                "retrying_since": now,
            }
            for subscription_id in targets
        )
        targeted.update(targets)
    if rows:
        await DeliveryRepository(uow.session).insert_new(rows)
    for subscription_id in targeted:
        queue_delivery(uow, subscription_id)


def queue_delivery(uow: UnitOfWork, subscription_id: uuid.UUID) -> None:
    """The subscription's delivery job, after this unit commits."""
    uow.enqueue(
        DELIVER_JOB,
        job_id=f"{DELIVER_JOB}:{subscription_id}",
        coalesce_seconds=DELIVER_COALESCE_SECONDS,
        subscription_id=str(subscription_id),
    )


subscribe(EVENT_TYPES, on_events)


# --- the delivery job's steps -------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    url: str
    secrets: list[str]
    items: list[Outgoing]


async def claim(uow: UnitOfWork, subscription_id: uuid.UUID, now: datetime) -> Claim | None:
    """Lease the subscription's deliveries that may go out now (see the module
    docstring); None when the subscription receives nothing (inactive, disabled,
    deleted)."""
    subscription = await WebhookRepository(uow.session).sending(subscription_id)
    if subscription is None:
        return None
    deliveries = DeliveryRepository(uow.session)
    due = await deliveries.claim_due(subscription_id, now, CLAIM_BATCH)
    if due:
        await deliveries.lease([row["id"] for row in due], now + LEASE)
    return Claim(
        url=subscription["url"],
        secrets=signing_secrets(subscription, now),
        items=[Outgoing(row["id"], row["payload"].encode()) for row in due],
    )


async def record(
    uow: UnitOfWork,
    subscription_id: uuid.UUID,
    outcomes: Sequence[Outcome],
    now: datetime,
    schedule: RetrySchedule,
) -> None:
    """Each attempt's row and its delivery's new state, then the subscription's failure
    streak."""
    locked = await DeliveryRepository(uow.session).lock_all([o.delivery_id for o in outcomes])
    last_error: str | None = None
    # Each delivery to try again, with the earliest moment its receiver allows.
    retrying: list[tuple[WebhookDelivery, datetime]] = []
    for outcome in outcomes:
        delivery = locked.get(outcome.delivery_id)
        if delivery is None:
            continue
        delivery.attempt_count += 1
        uow.session.add(
            WebhookDeliveryAttempt(
                delivery_id=delivery.id,
                attempt_number=delivery.attempt_count,
                status_code=outcome.status_code,
                response_excerpt=outcome.excerpt,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
                headers=outcome.headers,
            )
        )
        delivery.last_attempt_at = now
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error
        if outcome.delivered:
            delivery.status = DeliveryStatus.SUCCEEDED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            continue
        last_error = outcome.error or f"HTTP {outcome.status_code}"
        if delivery.status is not DeliveryStatus.PENDING:
            continue  # delivered meanwhile by a sender whose lease this one outlived
        delivery.next_attempt_at = schedule.next_attempt(
            failures=delivery.attempt_count - delivery.attempts_before_window,
            now=now,
            since=delivery.retrying_since or delivery.created_at,
            retry_after=outcome.retry_after,
        )
        if delivery.next_attempt_at is None:
            delivery.status = DeliveryStatus.FAILED
        else:
            asked = min(outcome.retry_after or 0.0, MAX_RETRY_AFTER_SECONDS)
            retrying.append((delivery, now + timedelta(seconds=asked)))
    await uow.session.flush()
    if outcomes:
        delivered = any(outcome.delivered for outcome in outcomes)
        failing_since = await _follow_streak(uow, subscription_id, delivered, now, last_error)
        if failing_since is not None:
            _retry_by(failing_since + FAILING_LIMIT, retrying, now)
            await uow.session.flush()


def _retry_by(
    deadline: datetime, retrying: Sequence[tuple[WebhookDelivery, datetime]], now: datetime
) -> None:
    """The attempt that shows whether the endpoint has failed for `FAILING_LIMIT` comes
    at `deadline`, not a backoff step later — or when the receiver asked, if later."""
    if deadline <= now:
        return
    for delivery, allowed in retrying:
        if delivery.next_attempt_at is not None and delivery.next_attempt_at > deadline:
            delivery.next_attempt_at = min(delivery.next_attempt_at, max(deadline, allowed))


async def _follow_streak(
    uow: UnitOfWork,
    subscription_id: uuid.UUID,
    delivered: bool,
    now: datetime,
    last_error: str | None,
) -> datetime | None:
    """The subscription's failure streak after these attempts: when it began, or None
    (delivered, or no longer a subscription)."""
    subscriptions = WebhookRepository(uow.session)
    subscription = await subscriptions.lock(subscription_id)
    if subscription is None:
        return None
    if delivered:
        subscription.failing_since = None
    elif subscription.failing_since is None:
        subscription.failing_since = now
    elif subscription.disabled_at is None and now - subscription.failing_since >= FAILING_LIMIT:
        await _disable(uow, subscription, now, last_error)
    await uow.session.flush()
    return subscription.failing_since


async def _disable(
    uow: UnitOfWork, subscription: WebhookSubscription, now: datetime, last_error: str | None
) -> None:
    assert subscription.failing_since is not None
    subscription.disabled_at = now
    subscription.disabled_reason = (
        f"No delivery succeeded since {instant_text(subscription.failing_since)}; "
        f"the last attempt: {last_error or 'failed'}"
    )[:2000]
    admins = await WebhookRepository(uow.session).admin_ids()
    journal = Journal(uow)
    notify(
        journal,
        admins,
        kind=DISABLED_NOTIFICATION,
        title=f"Webhook disabled: {subscription.url}"[:255],
        data={
            "webhook_id": str(subscription.id),
            "url": subscription.url,
            "reason": subscription.disabled_reason,
            "failing_since": instant_text(subscription.failing_since),
        },
    )
    await journal.write()
