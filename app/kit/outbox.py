"""Domain events: written to the outbox in the caller's transaction, relayed after commit.

`Journal.event` (`app.kit.journal`) is the only way to publish. The relay hands each
undispatched event to the handlers registered for its type (outbound webhooks register
here) and stamps it; an event with no handler is simply marked dispatched. A handler
gets the relay's unit of work: what it writes commits with the stamp, and what it
queues runs after that commit. A periodic sweep relays what an after-commit enqueue
missed (a crash between commit and enqueue, a deduplicated job).

One organization's relays run one at a time on PostgreSQL (a transaction-scoped
advisory lock; SQLite serializes writers anyway): two overlapping relays would each
take some of the pending events, and a later event of a ticket could reach its
handlers, and be committed, before an earlier one held by the other relay.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa

from app.db.unit_of_work import UnitOfWork
from app.kit.repository import PlatformRepository, Repository
from app.models.outbox import OutboxEvent

RELAY_JOB = "outbox.relay"
SWEEP_JOB = "outbox.sweep"
SWEEP_EVERY_SECONDS = 60.0
RELAY_BATCH = 500
# Events of one organization committed within this long share one relay job.
RELAY_COALESCE_SECONDS = 0.1

EventHandler = Callable[[UnitOfWork, OutboxEvent], Awaitable[None]]
_handlers: dict[str, list[EventHandler]] = defaultdict(list)


def subscribe(event_type: str, handler: EventHandler) -> None:
    if handler not in _handlers[event_type]:
        _handlers[event_type].append(handler)


class OutboxRepository(Repository[OutboxEvent]):
    model = OutboxEvent

    async def relay_alone(self) -> None:
        """Wait until no other relay of this organization runs, and keep the others
        waiting until this transaction ends (see the module docstring)."""
        await self.advisory_lock("outbox_relay")

    async def pending(self, limit: int) -> Sequence[OutboxEvent]:
        """The oldest undispatched events, locked; on PostgreSQL rows another relay holds
        are skipped, so concurrent relays of one tenant never dispatch an event twice."""
        statement = (
            self.select()
            .where(OutboxEvent.dispatched_at.is_(None))
            .order_by(OutboxEvent.id)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            statement = statement.with_for_update(skip_locked=True)
        return await self.all(statement)


class PendingOutboxRepository(PlatformRepository[OutboxEvent]):
    model = OutboxEvent

    async def organizations(self) -> list[uuid.UUID]:
        """Every tenant with an undispatched event."""
        statement = (
            sa.select(OutboxEvent.organization_id)
            .where(OutboxEvent.dispatched_at.is_(None))
            .distinct()
        )
        return list((await self.session.execute(statement)).scalars())


async def relay_outbox(uow: UnitOfWork) -> int:
    """Dispatch this organization's pending events in order; returns how many."""
    outbox = OutboxRepository(uow.session)
    await outbox.relay_alone()
    events = await outbox.pending(RELAY_BATCH)
    for event in events:
        for handler in _handlers.get(event.event_type, ()):
            await handler(uow, event)
        event.dispatched_at = datetime.now(UTC)
    await uow.session.flush()
    return len(events)


async def sweep_outbox(uow: UnitOfWork) -> int:
    """Platform sweep (system session): queue a relay for every tenant with pending
    events; returns how many tenants."""
    organizations = await PendingOutboxRepository(uow.session).organizations()
    if uow.jobs is not None:
        for org in organizations:
            await uow.jobs.enqueue(RELAY_JOB, organization_id=org, job_id=f"{RELAY_JOB}:{org}")
    return len(organizations)
