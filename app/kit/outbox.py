"""Domain events: written to the outbox in the caller's transaction, relayed after commit.

`Journal.event` (`app.kit.journal`) is the only way to publish. The relay hands a batch
of undispatched events to the handlers registered for their types (outbound webhooks
register here), each handler once with its events in order, and stamps them; an event
with no handler is simply marked dispatched. A handler gets the relay's unit of work:
what it writes commits with the stamps, and what it queues runs after that commit.
Handlers must be idempotent: an event is relayed at least once (a relay that dies
after its handlers ran but before its commit leaves the event to the next one).

A batch whose handlers fail is relayed again one event at a time, each in a savepoint,
so the failing event is named and held back (a relay is queued for its next try,
with backoff; never dropped) while the others go on; later events of its aggregate
wait for it, so a ticket's events still reach handlers in order. A periodic sweep
relays what an after-commit enqueue missed (a crash between commit and enqueue, a
deduplicated job).

One organization's relays run one at a time on PostgreSQL (a transaction-scoped
advisory lock; SQLite serializes writers anyway): two overlapping relays would each
take some of the pending events, and a later event of a ticket could reach its
handlers, and be committed, before an earlier one held by the other relay. The lock is
tried, not waited for: a relay that finds it taken queues the next time slot's relay
and ends, so one busy organization's relays never fill the workers' job slots.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import structlog
from prometheus_client import Counter
from sqlalchemy.orm import aliased

from app.db.unit_of_work import UnitOfWork
from app.kit.jobs import transient
from app.kit.repository import PlatformRepository, Repository
from app.models.outbox import OutboxEvent

RELAY_JOB = "outbox.relay"
SWEEP_JOB = "outbox.sweep"
SWEEP_EVERY_SECONDS = 60.0
RELAY_BATCH = 500
# A relay job relays at most this many batches, then makes way for other jobs (and
# queues itself again if more is pending).
MAX_BATCHES = 10
# Events of one organization committed within this long share one relay job.
RELAY_COALESCE_SECONDS = 0.1
# A held-back event is tried again after 5 s, then twice as long each time, up to an hour.
HOLD_FIRST_SECONDS = 5.0
HOLD_MAX_SECONDS = 3600.0

EventHandler = Callable[[UnitOfWork, Sequence[OutboxEvent]], Awaitable[None]]
_handlers: list[tuple[frozenset[str], EventHandler]] = []

log = structlog.get_logger(__name__)
EVENTS_RELAYED = Counter("helpdesk_outbox_events_relayed_total", "Outbox events dispatched")
EVENTS_HELD = Counter(
    "helpdesk_outbox_events_held_total", "Outbox events held back after their handlers failed"
)


def subscribe(event_types: Iterable[str], handler: EventHandler) -> None:
    """Hand `handler` the events of these types in every relayed batch."""
    if all(registered is not handler for _types, registered in _handlers):
        _handlers.append((frozenset(event_types), handler))


def hold_seconds(attempts: int) -> float:
    """How long an event that failed `attempts` times waits before the next try."""
    # The exponent stops growing long after the wait reached its cap: a float power
    # overflows past 2**1024.
    return min(HOLD_MAX_SECONDS, HOLD_FIRST_SECONDS * 2.0 ** min(attempts - 1, 20))


def queue_relay(uow: UnitOfWork, *, at: datetime | None = None) -> None:
    """A relay of the unit's organization after it commits: in the current time slot's
    job (every commit of the slot shares it), or at `at`."""
    if at is None:
        uow.enqueue(
            RELAY_JOB,
            job_id=f"{RELAY_JOB}:{uow.organization_id}",
            coalesce_seconds=RELAY_COALESCE_SECONDS,
        )
    else:
        uow.enqueue(
            RELAY_JOB,
            job_id=f"{RELAY_JOB}:{uow.organization_id}:at@{int(at.timestamp())}",
            run_at=at.timestamp(),
        )


@dataclass(frozen=True, slots=True)
class Relayed:
    """What one batch did: how many events it dispatched, whether more may be waiting
    now (the batch was full, or a held-back event went and its ticket's later events
    were left out), and whether another relay of the organization was under way."""

    dispatched: int
    more: bool
    busy: bool = False


class OutboxRepository(Repository[OutboxEvent]):
    model = OutboxEvent

    async def relay_alone(self) -> bool:
        """Whether this transaction is the organization's only relay (then the others
        find it taken until this transaction ends; see the module docstring)."""
        return await self.advisory_lock("outbox_relay", wait=False)

    async def pending(self, limit: int, now: datetime) -> Sequence[OutboxEvent]:
        """The oldest undispatched events that may go now, locked: a held-back event once
        its time has come, any other unless its aggregate has an event held back (which
        goes first). On PostgreSQL rows another relay holds are skipped, so concurrent
        relays never take one twice."""

        def build() -> sa.Select[tuple[OutboxEvent]]:
            held = aliased(OutboxEvent)
            held_aggregates = sa.select(held.aggregate_id).where(
                held.organization_id == self.organization_id,
                held.dispatched_at.is_(None),
                held.relay_after.is_not(None),
            )
            statement = (
                self.select()
                .where(
                    OutboxEvent.dispatched_at.is_(None),
                    sa.or_(
                        OutboxEvent.relay_after <= sa.bindparam("now"),
                        sa.and_(
                            OutboxEvent.relay_after.is_(None),
                            OutboxEvent.aggregate_id.not_in(held_aggregates),
                        ),
                    ),
                )
                .order_by(OutboxEvent.id)
                .limit(sa.bindparam("limit"))
                # Fresh attempt counts even for events this session loaded before.
                .execution_options(populate_existing=True)
            )
            if self.dialect == "postgresql":
                statement = statement.with_for_update(skip_locked=True)
            return statement

        return await self.all(self.prebuilt("pending", build), {"now": now, "limit": limit})

    async def mark_dispatched(self, event_ids: Sequence[uuid.UUID], now: datetime) -> None:
        statement = self.prebuilt(
            "mark_dispatched",
            lambda: (
                self.update()
                .where(OutboxEvent.id.in_(sa.bindparam("ids", expanding=True)))
                .values(dispatched_at=sa.bindparam("now"), relay_after=None)
                .execution_options(synchronize_session=False)
            ),
        )
        await self.session.execute(statement, {"ids": list(event_ids), "now": now})

    async def hold_back(self, event: OutboxEvent, error: str, now: datetime) -> datetime:
        """Hold `event` back after a failure; returns when it is tried again."""
        relay_after = now + timedelta(seconds=hold_seconds(event.relay_attempts + 1))
        statement = (
            self.update()
            .where(OutboxEvent.id == event.id)
            .values(
                relay_attempts=OutboxEvent.relay_attempts + 1,
                relay_after=relay_after,
                relay_error=error,
            )
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(statement)
        return relay_after


class PendingOutboxRepository(PlatformRepository[OutboxEvent]):
    model = OutboxEvent

    async def organizations(self, now: datetime) -> list[uuid.UUID]:
        """Every tenant with an undispatched event that may go now."""
        statement = (
            sa.select(OutboxEvent.organization_id)
            .where(
                OutboxEvent.dispatched_at.is_(None),
                sa.or_(OutboxEvent.relay_after.is_(None), OutboxEvent.relay_after <= now),
            )
            .distinct()
        )
        return list((await self.session.execute(statement)).scalars())


async def _dispatch(uow: UnitOfWork, events: Sequence[OutboxEvent]) -> None:
    for event_types, handler in _handlers:
        wanted = [event for event in events if event.event_type in event_types]
        if wanted:
            await handler(uow, wanted)


async def relay_batch(uow: UnitOfWork, now: datetime) -> Relayed:
    """Relay one batch of this organization's pending events (see the module
    docstring), unless another relay of the organization is under way. Runs in a unit
    with nothing else in it: a failing batch rolls the unit's transaction back."""
    outbox = OutboxRepository(uow.session)
    if not await outbox.relay_alone():
        return Relayed(0, more=False, busy=True)
    events = await outbox.pending(RELAY_BATCH, now)
    if not events:
        return Relayed(0, more=False)
    full = len(events) == RELAY_BATCH
    try:
        await _dispatch(uow, events)
        await outbox.mark_dispatched([event.id for event in events], now)
        EVENTS_RELAYED.inc(len(events))
        return Relayed(len(events), more=full or any(e.relay_attempts for e in events))
    except Exception as error:
        if transient(error):
            raise
    # The batch fails rarely, so it takes no savepoint: its transaction is rolled back
    # whole (the handlers' writes and queued work with it), and the pending events,
    # read and locked again, go one at a time, each in a savepoint.
    await uow.rollback()
    if not await outbox.relay_alone():
        return Relayed(0, more=False, busy=True)
    events = await outbox.pending(RELAY_BATCH, now)
    full = len(events) == RELAY_BATCH
    dispatched = 0
    released = False
    # A ticket's later events wait behind its failed one (the next `pending` leaves them
    # out until it goes).
    failed_aggregates: set[uuid.UUID] = set()
    for event in events:
        if event.aggregate_id in failed_aggregates:
            continue
        try:
            async with uow.savepoint():
                await _dispatch(uow, [event])
                await outbox.mark_dispatched([event.id], now)
            dispatched += 1
            released = released or event.relay_attempts > 0
        except Exception as error:
            if transient(error):
                raise
            log.error(
                "outbox_event_held",
                event_id=str(event.id),
                event_type=event.event_type,
                attempts=event.relay_attempts + 1,
                error=repr(error),
            )
            queue_relay(uow, at=await outbox.hold_back(event, repr(error), now))
            EVENTS_HELD.inc()
            failed_aggregates.add(event.aggregate_id)
    EVENTS_RELAYED.inc(dispatched)
    return Relayed(dispatched, more=full or released)


async def relay_outbox(uow: UnitOfWork) -> int:
    """Dispatch this organization's pending events in order, batch after batch (each
    committed), for up to `MAX_BATCHES`; then, or when another relay of the organization
    is under way, a relay in the next time slot takes over. Returns how many."""
    relayed = 0
    for _ in range(MAX_BATCHES):
        batch = await relay_batch(uow, datetime.now(UTC))
        await uow.commit()
        relayed += batch.dispatched
        if batch.busy:
            # The relay under way may have read its last batch before this job's events
            # committed: someone has to look again once it is done.
            break
        if not batch.more:
            return relayed
    # The next slot's job (its id is not this running job's, which the queue would
    # refuse), queued when `run_job` commits.
    queue_relay(uow)
    return relayed


async def sweep_outbox(uow: UnitOfWork) -> int:
    """Platform sweep (system session): queue a relay for every tenant with events that
    may go now; returns how many tenants."""
    organizations = await PendingOutboxRepository(uow.session).organizations(datetime.now(UTC))
    if uow.jobs is not None:
        for org in organizations:
            await uow.jobs.enqueue(RELAY_JOB, organization_id=org, job_id=f"{RELAY_JOB}:{org}")
    return len(organizations)
