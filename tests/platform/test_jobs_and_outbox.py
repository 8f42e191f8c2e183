"""After-commit work: released on commit, dropped on rollback; run by arq on real Redis
and by the in-process runner in embedded mode."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings
from arq.worker import Retry
from prometheus_client import REGISTRY
from sqlalchemy.exc import OperationalError

from app.config import Settings
from app.db.database import Database
from app.db.unit_of_work import UnitOfWork, coalesced
from app.kit import outbox
from app.kit.jobs import ArqJobQueue, InProcessJobQueue, WorkerJobQueue
from app.kit.journal import Journal
from app.models import Organization, OutboxEvent
from app.worker import PERIODIC_SECONDS, TASKS, arq_job
from tests.support.workers import run_worker_burst


async def _record(database: Database, org: Organization, *, then_commit: bool) -> uuid.UUID:
    aggregate = uuid.uuid4()
    uow = database.tenant_unit(org.id)
    try:
        journal = Journal(uow)
        journal.event(
            "ticket.created",
            aggregate_type="ticket",
            aggregate_id=aggregate,
            payload={"id": str(aggregate)},
        )
        await journal.write()
        if then_commit:
            await uow.commit()
        else:
            await uow.rollback()
    finally:
        await uow.close()
    return aggregate


async def _event(database: Database, org: Organization, aggregate: uuid.UUID) -> OutboxEvent | None:
    async with database.tenant_session(org.id) as session:
        return await session.scalar(
            sa.select(OutboxEvent).where(OutboxEvent.aggregate_id == aggregate)
        )


@pytest.fixture
async def in_process(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    database.jobs = InProcessJobQueue(database, TASKS, PERIODIC_SECONDS)
    yield database
    await database.jobs.close()
    await database.dispose()


async def test_in_process_runner_relays_after_commit(
    in_process: Database, org_a: Organization
) -> None:
    handled: list[uuid.UUID] = []

    async def handler(_uow: object, events: Sequence[OutboxEvent]) -> None:
        handled.extend(event.aggregate_id for event in events)

    outbox.subscribe(["ticket.created"], handler)
    committed = await _record(in_process, org_a, then_commit=True)
    rolled_back = await _record(in_process, org_a, then_commit=False)
    await in_process.jobs.drain()
    event = await _event(in_process, org_a, committed)
    assert event is not None and event.dispatched_at is not None
    assert await _event(in_process, org_a, rolled_back) is None
    assert committed in handled and rolled_back not in handled


async def test_rollback_drops_queued_jobs(in_process: Database, org_a: Organization) -> None:
    uow = in_process.tenant_unit(org_a.id)
    try:
        journal = Journal(uow)
        journal.event(
            "ticket.updated", aggregate_type="ticket", aggregate_id=uuid.uuid4(), payload={}
        )
        await journal.write()
        assert uow.after_commit_callbacks
        await uow.rollback()
        assert not uow.after_commit_callbacks
    finally:
        await uow.close()


async def failing_block(uow: UnitOfWork, inside: Callable[[], None]) -> None:
    async with uow.savepoint():
        inside()
        raise RuntimeError("the block fails")


async def test_a_rolled_back_savepoint_drops_the_work_it_queued(
    database: Database, org_a: Organization
) -> None:
    ran: list[str] = []

    def queue(name: str) -> None:
        async def run() -> None:
            ran.append(name)

        uow.after_commit(run)

    uow = database.tenant_unit(org_a.id)
    try:
        queue("before")
        async with uow.savepoint():
            queue("kept")
            with pytest.raises(RuntimeError):
                await failing_block(uow, lambda: queue("dropped, nested"))
        with pytest.raises(RuntimeError):
            await failing_block(uow, lambda: queue("dropped"))
        queue("after")
        await uow.commit()
    finally:
        await uow.close()
    assert ran == ["before", "kept", "after"]


@pytest.fixture
async def arq_redis(test_redis_url: str, settings: Settings) -> AsyncIterator[ArqRedis]:
    redis = await create_pool(RedisSettings.from_dsn(test_redis_url))
    # arq keeps jobs and results under keys of their own, outside the queue's name.
    before = {k async for k in redis.scan_iter("arq:job:*")}
    before |= {k async for k in redis.scan_iter("arq:result:*")}
    yield redis
    keys = [k async for k in redis.scan_iter(f"{settings.job_queue_name}*")]
    keys += [k async for k in redis.scan_iter("arq:job:*") if k not in before]
    keys += [k async for k in redis.scan_iter("arq:result:*") if k not in before]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


async def test_arq_worker_relays_committed_events_only(
    settings: Settings, arq_redis: ArqRedis, org_a: Organization, org_b: Organization
) -> None:
    database = Database(settings)
    database.jobs = ArqJobQueue(arq_redis, settings.job_queue_name)
    try:
        committed = await _record(database, org_a, then_commit=True)
        other_tenant = await _record(database, org_b, then_commit=True)
        rolled_back = await _record(database, org_a, then_commit=False)
        queued = await arq_redis.queued_jobs(queue_name=settings.job_queue_name)
        assert {job.function for job in queued} == {outbox.RELAY_JOB}
        assert len(queued) == 2  # one relay per organization, none for the rollback
        worker = await run_worker_burst(arq_redis, settings, database)
        assert (worker.jobs_complete, worker.jobs_failed) == (2, 0)
        for org, aggregate in ((org_a, committed), (org_b, other_tenant)):
            event = await _event(database, org, aggregate)
            assert event is not None and event.dispatched_at is not None
        assert await _event(database, org_a, rolled_back) is None
    finally:
        await database.dispose()


async def test_sweep_requeues_what_was_missed(
    settings: Settings, arq_redis: ArqRedis, org_a: Organization
) -> None:
    # No runner attached: the event commits but nothing is enqueued (a crash after commit).
    plain = Database(settings)
    aggregate = await _record(plain, org_a, then_commit=True)
    await plain.dispose()
    database = Database(settings)
    database.jobs = ArqJobQueue(arq_redis, settings.job_queue_name)
    try:
        from app.kit.jobs import run_job

        assert await run_job(database, outbox.sweep_outbox, None) >= 1
        await run_worker_burst(arq_redis, settings, database)
        event = await _event(database, org_a, aggregate)
        assert event is not None and event.dispatched_at is not None
    finally:
        await database.dispose()


async def test_arq_relays_again_once_a_relay_has_run(
    settings: Settings, arq_redis: ArqRedis, org_a: Organization
) -> None:
    """arq refuses a job id whose result it still keeps: results are not kept, so the
    next relay of the same organization is never dropped."""
    database = Database(settings)
    database.jobs = ArqJobQueue(arq_redis, settings.job_queue_name)
    try:
        first = await _record(database, org_a, then_commit=True)
        await run_worker_burst(arq_redis, settings, database)
        await asyncio.sleep(outbox.RELAY_COALESCE_SECONDS)  # the next slot, a new job id
        second = await _record(database, org_a, then_commit=True)
        sweep_id = f"{outbox.RELAY_JOB}:{org_a.id}"
        await database.jobs.enqueue(outbox.RELAY_JOB, organization_id=org_a.id, job_id=sweep_id)
        worker = await run_worker_burst(arq_redis, settings, database)
        assert worker.jobs_complete == 2  # the slot's relay and the sweep's, none refused
        for aggregate in (first, second):
            event = await _event(database, org_a, aggregate)
            assert event is not None and event.dispatched_at is not None
        await database.jobs.enqueue(outbox.RELAY_JOB, organization_id=org_a.id, job_id=sweep_id)
        queued = await arq_redis.queued_jobs(queue_name=settings.job_queue_name)
        assert [job.job_id for job in queued] == [sweep_id]  # the same id queues again
    finally:
        await database.dispose()


async def test_commits_in_one_slot_share_one_queued_relay(
    settings: Settings, arq_redis: ArqRedis, org_a: Organization
) -> None:
    replica_a = ArqJobQueue(arq_redis, settings.job_queue_name)
    replica_b = ArqJobQueue(arq_redis, settings.job_queue_name)
    job_id, run_at = coalesced(f"relay:{uuid.uuid4().hex}", 60.0)
    for queue in (replica_a, replica_a, replica_b, replica_b):
        await queue.enqueue(
            outbox.RELAY_JOB, organization_id=org_a.id, job_id=job_id, run_at=run_at
        )
    queued = await arq_redis.queued_jobs(queue_name=settings.job_queue_name)
    assert [job.job_id for job in queued] == [job_id]
    assert queued[0].score == int(run_at * 1000)  # runs when the slot ends, not before


def test_a_slot_starts_after_every_commit_that_joined_it() -> None:
    job_id, run_at = coalesced("g", 0.1, now=1000.05)
    assert (job_id, run_at) == ("g@10000", 1000.1)
    # Too close to the end (clock skew could start it before the commit): the next slot.
    later_id, later_run = coalesced("g", 0.1, now=1000.09)
    assert later_id == "g@10001" and later_run == pytest.approx(1000.2)


async def test_in_process_runner_waits_for_the_slot(
    in_process: Database, org_a: Organization
) -> None:
    aggregate = await _record(in_process, org_a, then_commit=True)
    event = await _event(in_process, org_a, aggregate)
    assert event is not None and event.dispatched_at is None  # the slot has not ended
    await in_process.jobs.drain()
    event = await _event(in_process, org_a, aggregate)
    assert event is not None and event.dispatched_at is not None


async def test_a_replica_asks_redis_once_per_slot(
    settings: Settings, arq_redis: ArqRedis, org_a: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests of one process that ask for a slot's relay together share one round trip,
    and a replica that finds the slot's job queued by another does not ask again."""
    sent: list[str | None] = []
    real_enqueue = arq_redis.enqueue_job

    async def counted(*args: Any, **kwargs: Any) -> Any:
        sent.append(kwargs.get("_job_id"))
        return await real_enqueue(*args, **kwargs)

    monkeypatch.setattr(arq_redis, "enqueue_job", counted)
    replica_a = ArqJobQueue(arq_redis, settings.job_queue_name)
    replica_b = ArqJobQueue(arq_redis, settings.job_queue_name)
    job_id, run_at = coalesced(f"relay:{uuid.uuid4().hex}", 60.0)
    for replica in (replica_a, replica_b):
        await asyncio.gather(
            *(
                replica.enqueue(
                    outbox.RELAY_JOB, organization_id=org_a.id, job_id=job_id, run_at=run_at
                )
                for _ in range(20)
            )
        )
    # Later askers of either replica: the claim stands, also where Redis had the job.
    await replica_b.enqueue(
        outbox.RELAY_JOB, organization_id=org_a.id, job_id=job_id, run_at=run_at
    )
    assert sent == [job_id, job_id]  # one per replica
    queued = await arq_redis.queued_jobs(queue_name=settings.job_queue_name)
    assert [job.job_id for job in queued] == [job_id]


async def test_a_job_the_database_fails_is_retried_later_and_a_bug_is_not(
    database: Database,
) -> None:
    async def unreachable(_uow: UnitOfWork) -> None:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("database restarting"))

    async def broken(_uow: UnitOfWork) -> None:
        raise ValueError("a bug")

    ctx = {"database": database, "job_try": 3}
    with pytest.raises(Retry) as retried:
        await arq_job("test.unreachable", unreachable).coroutine(ctx, None)
    assert retried.value.defer_score == 8_000  # milliseconds: 2 ** job_try seconds
    with pytest.raises(ValueError, match="a bug"):
        await arq_job("test.broken", broken).coroutine(ctx, None)


class Recorded:
    """A job for `WorkerJobQueue(here=…)` that records its runs; `gate` (when set) holds
    each run until released."""

    def __init__(self, *, fail: bool = False, go_on: bool = False) -> None:
        self.runs: list[dict[str, Any]] = []
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.started_at: float | None = None
        self.ran = asyncio.Condition()
        self.fail = fail
        self.go_on = go_on
        self.__name__ = "recorded"

    async def reached(self, count: int) -> None:
        async with self.ran:
            await self.ran.wait_for(lambda: len(self.runs) >= count)

    async def __call__(self, uow: UnitOfWork, **kwargs: Any) -> None:
        self.runs.append({"organization_id": uow.organization_id, **kwargs})
        async with self.ran:
            self.ran.notify_all()
        self.started.set()
        self.started_at = self.started_at or time.time()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise ValueError("a bug")
        if self.go_on:  # as a job that did its share of a backlog asks to go on
            uow.enqueue("test.here", **kwargs)


def worker_queue(
    arq_redis: ArqRedis,
    settings: Settings,
    database: Database,
    job: Recorded,
    *,
    room: int = 4,
    time_limit: float = 60.0,
) -> WorkerJobQueue:
    return WorkerJobQueue(
        arq_redis,
        settings.job_queue_name,
        database=database,
        here={"test.here": job},
        room=room,
        time_limit=time_limit,
    )


def follow_ups(where: str) -> float:
    """The worker's count of `test.here` follow-ups run `here`, sent to `redis`, or
    `failed` (its Prometheus metrics)."""
    if where == "failed":
        name, labels = "helpdesk_worker_follow_ups_failed_total", {"job": "test.here"}
    else:
        name, labels = "helpdesk_worker_follow_ups_total", {"job": "test.here", "where": where}
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def drained(queue: WorkerJobQueue) -> None:
    """A run that never ends fails the test instead of hanging it."""
    await asyncio.wait_for(queue.drain(), timeout=10)


async def test_a_follow_up_runs_in_the_worker_at_once(
    settings: Settings, arq_redis: ArqRedis, database: Database, org_a: Organization
) -> None:
    job = Recorded()
    queue = worker_queue(arq_redis, settings, database, job)
    # A coalescing slot's job, to start at the slot's end: here it starts at once.
    slot_end = time.time() + 0.8
    job_id = f"test.here:{uuid.uuid4().hex}@1"
    await queue.enqueue("test.here", organization_id=org_a.id, job_id=job_id, run_at=slot_end, x=1)
    await drained(queue)
    assert job.started_at is not None and job.started_at < slot_end
    assert job.runs == [{"organization_id": org_a.id, "x": 1}]
    assert await arq_redis.queued_jobs(queue_name=settings.job_queue_name) == []


async def test_a_follow_up_asked_for_while_it_runs_runs_once_more(
    settings: Settings, arq_redis: ArqRedis, database: Database, org_a: Organization
) -> None:
    job = Recorded()
    job.gate = asyncio.Event()
    queue = worker_queue(arq_redis, settings, database, job)
    await queue.enqueue("test.here", organization_id=org_a.id, x=1)
    await asyncio.wait_for(job.started.wait(), timeout=5)
    for _ in range(3):
        await queue.enqueue("test.here", organization_id=org_a.id, x=1)
    job.gate.set()
    await drained(queue)
    assert len(job.runs) == 2
    await queue.enqueue("test.here", organization_id=org_a.id, x=1)  # not running: anew
    await drained(queue)
    assert len(job.runs) == 3


async def test_what_the_worker_does_not_run_itself_goes_to_redis(
    settings: Settings, arq_redis: ArqRedis, database: Database, org_a: Organization
) -> None:
    job = Recorded()
    job.gate = asyncio.Event()
    queue = worker_queue(arq_redis, settings, database, job, room=2)
    before = {where: follow_ups(where) for where in ("here", "redis")}
    try:
        # With room: other jobs, and a follow-up that starts later than a slot, go to
        # Redis all the same.
        await queue.enqueue(outbox.RELAY_JOB, organization_id=org_a.id)
        later = time.time() + 60
        await queue.enqueue("test.here", organization_id=org_a.id, run_at=later, x=1)
        assert job.runs == [] and not job.started.is_set()
        await queue.enqueue("test.here", organization_id=org_a.id, x=2)
        await queue.enqueue("test.here", organization_id=org_a.id, x=3)
        # No room left: another follow-up waits in Redis.
        await queue.enqueue("test.here", organization_id=org_a.id, x=4)
        queued = await arq_redis.queued_jobs(queue_name=settings.job_queue_name)
        assert sorted((job.function, job.kwargs.get("x")) for job in queued) == [
            (outbox.RELAY_JOB, None),
            ("test.here", 1),
            ("test.here", 4),
        ]
        await asyncio.wait_for(job.reached(2), timeout=10)
        assert sorted(run["x"] for run in job.runs) == [2, 3]
        # The relay's job is no follow-up: not counted.
        assert {where: follow_ups(where) - before[where] for where in before} == {
            "here": 2,
            "redis": 2,
        }
    finally:
        job.gate.set()
        await drained(queue)


async def test_a_failed_follow_up_is_logged_and_the_next_ask_runs_it(
    settings: Settings, arq_redis: ArqRedis, database: Database, org_a: Organization
) -> None:
    job = Recorded(fail=True)
    queue = worker_queue(arq_redis, settings, database, job)
    failed_before = follow_ups("failed")
    with structlog.testing.capture_logs() as logs:
        await queue.enqueue("test.here", organization_id=org_a.id, x=1)
        await drained(queue)
    assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == ["job_failed"]
    assert follow_ups("failed") == failed_before + 1
    await queue.enqueue("test.here", organization_id=org_a.id, x=1)
    await drained(queue)
    assert len(job.runs) == 2


async def test_closing_the_worker_queue_cancels_follow_ups_under_way(
    settings: Settings, test_redis_url: str, database: Database, org_a: Organization
) -> None:
    job = Recorded()
    job.gate = asyncio.Event()
    redis = await create_pool(RedisSettings.from_dsn(test_redis_url))
    queue = worker_queue(redis, settings, database, job)
    await queue.enqueue("test.here", organization_id=org_a.id, x=1)
    await asyncio.wait_for(job.started.wait(), timeout=5)
    await asyncio.wait_for(queue.close(), timeout=5)  # the gate is never opened
    await drained(queue)  # nothing left under way


async def test_a_follow_up_that_asks_to_go_on_goes_to_redis(
    settings: Settings, arq_redis: ArqRedis, org_a: Organization
) -> None:
    """So that a backlog is shared by every worker, not kept by the one that began it."""
    job = Recorded(go_on=True)
    database = Database(settings)
    database.jobs = queue = worker_queue(arq_redis, settings, database, job)
    try:
        await queue.enqueue("test.here", organization_id=org_a.id, x=1)
        await drained(queue)
        assert len(job.runs) == 1
        queued = await arq_redis.queued_jobs(queue_name=settings.job_queue_name)
        assert [(job.function, job.kwargs) for job in queued] == [("test.here", {"x": 1})]
    finally:
        await database.dispose()


async def test_a_follow_up_that_outlasts_its_time_limit_is_cancelled(
    settings: Settings, arq_redis: ArqRedis, database: Database, org_a: Organization
) -> None:
    """As arq cancels a job past its timeout: the run's place is free again."""
    job = Recorded()
    job.gate = asyncio.Event()  # never opened
    queue = worker_queue(arq_redis, settings, database, job, time_limit=0.2)
    with structlog.testing.capture_logs() as logs:
        await queue.enqueue("test.here", organization_id=org_a.id, x=1)
        await drained(queue)
    assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == ["job_failed"]
    job.gate.set()
    await queue.enqueue("test.here", organization_id=org_a.id, x=1)
    await drained(queue)
    assert len(job.runs) == 2


async def test_closing_before_a_follow_up_started_leaves_nothing_behind(
    settings: Settings, test_redis_url: str, database: Database, org_a: Organization
) -> None:
    job = Recorded()
    redis = await create_pool(RedisSettings.from_dsn(test_redis_url))
    queue = worker_queue(redis, settings, database, job)
    await queue.enqueue("test.here", organization_id=org_a.id, x=1)
    await queue.close()  # the run's task has not taken a step
    await drained(queue)
    assert job.runs == []
