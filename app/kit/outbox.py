"""Domain events: written to the outbox in the caller's transaction, relayed after commit.

`record_event` is the only way to publish. The relay hands each undispatched event to
the handlers registered for its type (outbound webhooks register here) and stamps it;
an event with no handler is simply marked dispatched. A periodic sweep relays what an
after-commit enqueue missed (a crash between commit and enqueue, a deduplicated job).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.appends import append
from app.db.session import JOB_QUEUE, dialect_name, session_organization
from app.kit.jobs import JobQueue, enqueue_after_commit
from app.models.outbox import OutboxEvent

RELAY_JOB = "outbox.relay"
SWEEP_JOB = "outbox.sweep"
SWEEP_EVERY_SECONDS = 60.0
RELAY_BATCH = 500
# Events of one organization committed within this long share one relay job.
RELAY_COALESCE_SECONDS = 0.1

EventHandler = Callable[[AsyncSession, OutboxEvent], Awaitable[None]]
_handlers: dict[str, list[EventHandler]] = defaultdict(list)


def subscribe(event_type: str, handler: EventHandler) -> None:
    if handler not in _handlers[event_type]:
        _handlers[event_type].append(handler)


def record_event(
    session: AsyncSession,
    event_type: str,
    *,
    aggregate_type: str,
    aggregate_id: uuid.UUID,
    payload: dict[str, Any],
) -> None:
    append(
        session,
        OutboxEvent,
        event_type=event_type,
        aggregate_type=aggregate_type,
        aggregate_id=aggregate_id,
        payload=payload,
    )
    org = session_organization(session.sync_session)
    enqueue_after_commit(
        session, RELAY_JOB, job_id=f"{RELAY_JOB}:{org}", coalesce_seconds=RELAY_COALESCE_SECONDS
    )


async def relay_outbox(session: AsyncSession) -> int:
    """Dispatch this organization's pending events in order; returns how many."""
    stmt = (
        sa.select(OutboxEvent)
        .where(OutboxEvent.dispatched_at.is_(None))
        .order_by(OutboxEvent.id)
        .limit(RELAY_BATCH)
    )
    if dialect_name(session) == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    events = (await session.scalars(stmt)).all()
    for event in events:
        for handler in _handlers.get(event.event_type, ()):
            await handler(session, event)
        event.dispatched_at = datetime.now(UTC)
    await session.flush()
    return len(events)


async def sweep_outbox(session: AsyncSession) -> int:
    """Platform sweep (system session): queue a relay for every tenant with pending
    events; returns how many tenants."""
    queue: JobQueue | None = session.info.get(JOB_QUEUE)
    organizations = list(
        await session.scalars(
            sa.select(OutboxEvent.organization_id)
            .where(OutboxEvent.dispatched_at.is_(None))
            .distinct()
        )
    )
    if queue is not None:
        for org in organizations:
            await queue.enqueue(RELAY_JOB, organization_id=org, job_id=f"{RELAY_JOB}:{org}")
    return len(organizations)
