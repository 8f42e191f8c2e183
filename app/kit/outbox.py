"""Domain events: written to the outbox in the caller's transaction, relayed after commit.

`Journal.event` (`app.kit.journal`) is the only way to publish. The relay hands each
undispatched event to the handlers registered for its type (outbound webhooks register
here) and stamps it; an event with no handler is simply marked dispatched. A periodic
sweep relays what an after-commit enqueue missed (a crash between commit and enqueue, a
deduplicated job).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.unit_of_work import UnitOfWork
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


async def relay_outbox(uow: UnitOfWork) -> int:
    """Dispatch this organization's pending events in order; returns how many."""
    session = uow.session
    stmt = (
        sa.select(OutboxEvent)
        .where(OutboxEvent.dispatched_at.is_(None))
        .order_by(OutboxEvent.id)
        .limit(RELAY_BATCH)
    )
    if uow.dialect == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    events = (await session.scalars(stmt)).all()
    for event in events:
        for handler in _handlers.get(event.event_type, ()):
            await handler(session, event)
        event.dispatched_at = datetime.now(UTC)
    await session.flush()
    return len(events)


async def sweep_outbox(uow: UnitOfWork) -> int:
    """Platform sweep (system session): queue a relay for every tenant with pending
    events; returns how many tenants."""
    queue = uow.jobs
    organizations = list(
        await uow.session.scalars(
            sa.select(OutboxEvent.organization_id)
            .where(OutboxEvent.dispatched_at.is_(None))
            .distinct()
        )
    )
    if queue is not None:
        for org in organizations:
            await queue.enqueue(RELAY_JOB, organization_id=org, job_id=f"{RELAY_JOB}:{org}")
    return len(organizations)
