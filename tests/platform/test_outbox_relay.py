"""The outbox relay when a handler fails and when the backlog outgrows a batch, on
PostgreSQL and on embedded SQLite: the failing event is held back and retried, never
dropped, while the rest of its organization's events go on; a ticket's later events
wait behind its held one; one relay job works through a backlog of many batches."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from app.config import Settings
from app.db.database import Database
from app.db.unit_of_work import UnitOfWork
from app.kit import outbox
from app.kit.jobs import InProcessJobQueue, run_job
from app.kit.journal import Journal
from app.models import Organization, OutboxEvent
from app.worker import PERIODIC_SECONDS, TASKS
from tests.conftest import make_organization
from tests.embedded.conftest import embedded_settings

EVENT = "test.relayed"


@dataclass
class Handler:
    """Fails on events whose payload says so while `broken`; keeps the ids of the
    batches it handled completely, in order."""

    broken: bool = True
    handled: list[uuid.UUID] = field(default_factory=list)

    async def __call__(self, _uow: UnitOfWork, events: Sequence[OutboxEvent]) -> None:
        if self.broken and any(event.payload.get("fail") for event in events):
            raise RuntimeError("the handler cannot take this event")
        self.handled.extend(event.id for event in events)


@pytest.fixture
def handler() -> Iterator[Handler]:
    handler = Handler()
    outbox.subscribe([EVENT], handler)
    yield handler
    outbox._handlers[:] = [entry for entry in outbox._handlers if entry[1] is not handler]


@pytest.fixture(params=["postgresql", "sqlite"])
async def database(
    request: pytest.FixtureRequest, settings: Settings, embedded_url: str, tmp_path: Path
) -> AsyncIterator[Database]:
    if request.param == "postgresql":
        chosen = settings
    else:
        chosen = embedded_settings(embedded_url, tmp_path, timers=False)
    database = Database(chosen)
    yield database
    if database.jobs is not None:
        await database.jobs.close()
    await database.dispose()


def run_jobs_in_process(database: Database) -> InProcessJobQueue:
    """The relays the tests' relays queue, run as embedded mode runs them (without a
    queue, as in the other tests, they are not queued at all)."""
    queue = InProcessJobQueue(database, TASKS, PERIODIC_SECONDS)
    database.jobs = queue
    return queue


async def record(database: Database, org: Organization, *events: tuple[uuid.UUID, bool]) -> None:
    """One event per (aggregate, fail?) in one transaction, in this order."""
    uow = database.tenant_unit(org.id)
    try:
        journal = Journal(uow)
        for aggregate, fail in events:
            journal.event(
                EVENT, aggregate_type="ticket", aggregate_id=aggregate, payload={"fail": fail}
            )
        await journal.write()
        await uow.commit()
    finally:
        await uow.close()


async def events_of(database: Database, org: Organization) -> list[OutboxEvent]:
    async with database.tenant_session(org.id) as session:
        statement = sa.select(OutboxEvent).where(OutboxEvent.event_type == EVENT)
        return list((await session.scalars(statement.order_by(OutboxEvent.id))).all())


def held_total() -> float:
    return REGISTRY.get_sample_value("helpdesk_outbox_events_held_total") or 0.0


async def relay_at(database: Database, org: Organization, now: datetime) -> int:
    """One batch with the clock at `now`, committed."""
    uow = database.tenant_unit(org.id)
    try:
        batch = await outbox.relay_batch(uow, now)
        await uow.commit()
        return batch.dispatched
    finally:
        await uow.close()


async def test_a_failing_event_is_held_back_and_the_rest_go_on(
    database: Database, handler: Handler
) -> None:
    org = await make_organization(database, "Relay")
    ticket, other = uuid.uuid4(), uuid.uuid4()
    await record(database, org, (ticket, True), (ticket, False), (other, False))
    failing, later, unrelated = await events_of(database, org)

    held_before = held_total()
    await run_job(database, outbox.relay_outbox, org.id)
    assert held_total() == held_before + 1
    held, waiting, gone = await events_of(database, org)
    assert gone.dispatched_at is not None and handler.handled == [unrelated.id]
    assert held.dispatched_at is None and held.relay_attempts == 1
    assert held.relay_error is not None and "cannot take this event" in held.relay_error
    assert held.relay_after is not None
    # Its ticket's later event neither went ahead of it nor counts as failed.
    assert waiting.dispatched_at is None and waiting.relay_attempts == 0
    assert waiting.relay_after is None

    # Not due yet: nothing moves.
    not_yet = held.relay_after - timedelta(seconds=1)
    assert await relay_at(database, org, not_yet) == 0
    # Due and failing again: it waits twice as long.
    first_wait = held.relay_after
    assert await relay_at(database, org, first_wait) == 0
    held, waiting, _ = await events_of(database, org)
    assert held.relay_attempts == 2 and waiting.dispatched_at is None
    assert held.relay_after is not None
    assert held.relay_after - first_wait == timedelta(seconds=outbox.hold_seconds(2))

    # Fixed: the held event goes, then its ticket's later one, in order.
    handler.broken = False
    assert await relay_at(database, org, held.relay_after) == 1
    assert await relay_at(database, org, held.relay_after) == 1
    assert handler.handled == [unrelated.id, failing.id, later.id]
    assert all(event.dispatched_at is not None for event in await events_of(database, org))


ECHO = "test.echo"


@dataclass
class WritingHandler:
    """Writes an echo event and queues after-commit work for each event it is handed,
    then fails on a batch with an event whose payload says so."""

    after_commit: list[uuid.UUID] = field(default_factory=list)

    async def __call__(self, uow: UnitOfWork, events: Sequence[OutboxEvent]) -> None:
        journal = Journal(uow)
        for event in events:
            journal.event(
                ECHO, aggregate_type="ticket", aggregate_id=event.aggregate_id, payload={}
            )
            uow.after_commit(partial(self.ran, event.aggregate_id))
        await journal.write()
        if any(event.payload.get("fail") for event in events):
            raise RuntimeError("the handler cannot take this event")

    async def ran(self, aggregate: uuid.UUID) -> None:
        self.after_commit.append(aggregate)


async def test_a_failed_batchs_writes_and_queued_work_are_dropped_with_it(
    database: Database,
) -> None:
    """The events of a failed batch go again one at a time: what the handler wrote and
    queued for the failed try is gone, so each event's work happens once, and none for
    the held one."""
    handler = WritingHandler()
    outbox.subscribe([EVENT], handler)
    try:
        org = await make_organization(database, "Echo")
        failing, fine = uuid.uuid4(), uuid.uuid4()
        await record(database, org, (failing, True), (fine, False))
        await run_job(database, outbox.relay_outbox, org.id)
    finally:
        outbox._handlers[:] = [entry for entry in outbox._handlers if entry[1] is not handler]
    async with database.tenant_session(org.id) as session:
        statement = sa.select(OutboxEvent.aggregate_id).where(OutboxEvent.event_type == ECHO)
        echoed = list((await session.scalars(statement)).all())
    assert echoed == [fine]
    assert handler.after_commit == [fine]


async def test_the_sweep_leaves_a_held_event_until_it_is_due(
    database: Database, handler: Handler
) -> None:
    org = await make_organization(database, "Sweep")
    await record(database, org, (uuid.uuid4(), True))
    await run_job(database, outbox.relay_outbox, org.id)
    (held,) = await events_of(database, org)
    assert held.relay_after is not None
    async with database.system_session() as session:
        pending = outbox.PendingOutboxRepository(session)
        assert org.id not in await pending.organizations(datetime.now(UTC))
        assert org.id in await pending.organizations(held.relay_after)


async def test_one_relay_job_works_through_a_backlog_of_many_batches(
    database: Database, handler: Handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "RELAY_BATCH", 3)
    monkeypatch.setattr(outbox, "MAX_BATCHES", 2)
    org = await make_organization(database, "Backlog")
    await record(database, org, *((uuid.uuid4(), False) for _ in range(10)))
    jobs = run_jobs_in_process(database)
    # Two batches of three, then it makes way and queues the rest as a job of its own.
    assert await run_job(database, outbox.relay_outbox, org.id) == 6
    await jobs.drain()
    events = await events_of(database, org)
    assert len(events) == 10 and all(event.dispatched_at is not None for event in events)
    assert handler.handled == [event.id for event in events]


async def test_a_held_event_is_relayed_at_its_time_and_its_ticket_follows_in_the_same_job(
    database: Database, handler: Handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "HOLD_FIRST_SECONDS", 0.3)
    org = await make_organization(database, "Later")
    ticket = uuid.uuid4()
    await record(database, org, (ticket, True), (ticket, False))
    jobs = run_jobs_in_process(database)
    failing, later = await events_of(database, org)
    await run_job(database, outbox.relay_outbox, org.id)
    assert all(event.dispatched_at is None for event in await events_of(database, org))
    handler.broken = False
    # Nobody writes and no sweep runs: the relay queued for the held event's time
    # dispatches it, and its ticket's later event in the same job.
    await jobs.drain()
    assert all(event.dispatched_at is not None for event in await events_of(database, org))
    assert handler.handled == [failing.id, later.id]


async def test_the_wait_stops_growing_at_its_cap() -> None:
    assert outbox.hold_seconds(1) == outbox.HOLD_FIRST_SECONDS
    assert outbox.hold_seconds(2) == 2 * outbox.HOLD_FIRST_SECONDS
    assert outbox.hold_seconds(5000) == outbox.HOLD_MAX_SECONDS


async def test_a_relay_finding_another_under_way_leaves_it_the_work(
    database: Database, handler: Handler
) -> None:
    org = await make_organization(database, "Busy")
    await record(database, org, (uuid.uuid4(), False))
    # Attached after the write, so the only relays queued are the ones under test.
    jobs = run_jobs_in_process(database)
    first = database.tenant_unit(org.id)
    try:
        assert await outbox.OutboxRepository(first.session).relay_alone()
        if first.dialect != "postgresql":
            return  # SQLite serializes writers: there is no second relay to meet
        assert await run_job(database, outbox.relay_outbox, org.id) == 0
        (event,) = await events_of(database, org)
        assert event.dispatched_at is None
    finally:
        await first.rollback()
        await first.close()
    # The busy relay queued the next slot's, which finds the lock free.
    await jobs.drain()
    (event,) = await events_of(database, org)
    assert event.dispatched_at is not None
