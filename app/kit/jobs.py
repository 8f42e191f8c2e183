"""Background jobs: arq on Redis in production, an in-process runner in embedded mode.

Jobs are enqueued only after the unit of work that asked for them commits
(`UnitOfWork.enqueue`), take ids and an `organization_id` (never ORM objects), and run
inside `run_job`, the job-side twin of the request dependency: one session, bound to the
job's organization, committed in exactly one place. arq may run a job more than once,
so jobs reload and re-check state; deterministic `job_id`s make re-enqueueing harmless.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import Counter
from sqlalchemy import exc as sa_exc

from app.db.database import Database

Task = Callable[..., Awaitable[Any]]
"""A domain task: `async def task(uow: UnitOfWork, **kwargs)`."""

log = structlog.get_logger(__name__)
FOLLOW_UPS = Counter(
    "helpdesk_worker_follow_ups_total",
    "Follow-up jobs a worker's jobs queued, by where they ran: here or through Redis",
    ["job", "where"],
)
FOLLOW_UPS_FAILED = Counter(
    "helpdesk_worker_follow_ups_failed_total",
    "Follow-up runs in a worker that failed or outlasted their time limit",
    ["job"],
)


async def run_job(
    database: Database, task: Task, organization_id: uuid.UUID | None, **kwargs: Any
) -> Any:
    """One unit of work for one job: a tenant session for the job's organization (the
    system session for platform sweeps), committed here and only here."""
    uow = (
        database.tenant_unit(organization_id)
        if organization_id is not None
        else database.system_unit()
    )
    structlog.contextvars.bind_contextvars(
        job=getattr(task, "__name__", "job"), organization_id=str(organization_id or "")
    )
    try:
        result = await task(uow, **kwargs)
        await uow.commit()
        return result
    finally:
        await uow.close()


def transient(error: BaseException) -> bool:
    """The database is unreachable or restarting: the work is retried as it was."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(
        error, sa_exc.OperationalError | sa_exc.InterfaceError | OSError | TimeoutError
    )


class InProcessJobQueue:
    """The embedded scheduler: runs jobs as asyncio tasks in the API process, and the
    periodic sweeps on a timer. A `job_id` already pending is not queued twice."""

    def __init__(
        self, database: Database, tasks: dict[str, Task], periodic: dict[str, float]
    ) -> None:
        self.database = database
        self.tasks = tasks
        self.periodic = periodic
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._timers: set[asyncio.Task[None]] = set()

    async def enqueue(
        self,
        name: str,
        *,
        organization_id: uuid.UUID | None,
        job_id: str | None = None,
        run_at: float | None = None,
        **kwargs: Any,
    ) -> None:
        if job_id is not None and job_id in self._pending:
            return
        task = asyncio.create_task(self._run(name, organization_id, job_id, run_at, kwargs))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        if job_id is not None:
            self._pending[job_id] = task

    async def _run(
        self,
        name: str,
        organization_id: uuid.UUID | None,
        job_id: str | None,
        run_at: float | None,
        kwargs: dict[str, Any],
    ) -> None:
        try:
            if run_at is not None and run_at > time.time():
                await asyncio.sleep(run_at - time.time())
            await run_job(self.database, self.tasks[name], organization_id, **kwargs)
        except Exception:
            log.exception("job_failed", job=name)
        finally:
            if job_id is not None:
                self._pending.pop(job_id, None)

    def start_periodic(self) -> None:
        for name, every in self.periodic.items():
            task = asyncio.create_task(self._every(name, every))
            self._timers.add(task)
            task.add_done_callback(self._timers.discard)

    async def _every(self, name: str, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self.enqueue(name, organization_id=None, job_id=f"periodic:{name}")

    async def drain(self) -> None:
        """Wait until no job is running, including jobs queued by jobs (tests, shutdown)."""
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def close(self) -> None:
        for timer in list(self._timers):
            timer.cancel()
        await asyncio.gather(*self._timers, return_exceptions=True)
        await self.drain()


class ArqJobQueue:
    """Production: jobs go to Redis and run on `helpdesk worker` processes."""

    def __init__(self, redis: Any, queue_name: str) -> None:
        self.redis = redis  # arq.connections.ArqRedis
        self.queue_name = queue_name
        # Scheduled jobs this process already queued (id → start): asking again before
        # the start needs no Redis round trip, the job will run after the asker's commit.
        self._scheduled: dict[str, float] = {}

    async def enqueue(
        self,
        name: str,
        *,
        organization_id: uuid.UUID | None,
        job_id: str | None = None,
        run_at: float | None = None,
        **kwargs: Any,
    ) -> None:
        if job_id is None or run_at is None:
            await self._send(name, organization_id, job_id, run_at, kwargs)
            return
        now = time.time()
        if self._scheduled.get(job_id, 0.0) > now:
            return
        # Claimed before the round trip, so the requests of this process that ask for
        # the same slot while it is under way share it too (a failed send frees it; the
        # periodic sweep relays what a lost enqueue missed). Redis ignores an id that
        # exists: the slot's job is queued (say by another replica) and starts at the
        # slot's end, after this commit, so that keeps the claim as well. Like every
        # claim, this holds while clocks agree within COALESCE_MARGIN_SECONDS: a worker
        # further ahead could start the slot's job before a later commit of the slot,
        # whose events then wait for the sweep.
        if len(self._scheduled) > 10_000:
            self._scheduled = {k: v for k, v in self._scheduled.items() if v > now}
        self._scheduled[job_id] = run_at
        try:
            await self._send(name, organization_id, job_id, run_at, kwargs)
        except BaseException:
            self._scheduled.pop(job_id, None)
            raise

    async def _send(
        self,
        name: str,
        organization_id: uuid.UUID | None,
        job_id: str | None,
        run_at: float | None,
        kwargs: dict[str, Any],
    ) -> None:
        await self.redis.enqueue_job(
            name,
            str(organization_id) if organization_id else None,
            _job_id=job_id,
            _queue_name=self.queue_name,
            _defer_until=datetime.fromtimestamp(run_at, UTC) if run_at is not None else None,
            **kwargs,
        )

    async def close(self) -> None:
        await self.redis.aclose()


@dataclass(eq=False)
class _Run:
    task: asyncio.Task[None] | None = None
    again: bool = False


class WorkerJobQueue(ArqJobQueue):
    """A worker's queue: the follow-ups its jobs queue (`here`, say a subscription's
    delivery after the relay that created it) run in this process at once, while fewer
    than `room` are under way, instead of waiting in Redis for their slot's end and a
    worker's next look. Everything else, and a follow-up when there is no room, goes to
    Redis.

    A follow-up is named by its job, organization and arguments. Asked for by another job
    while the same one runs here, it runs once more afterwards, so nothing committed
    meanwhile is missed: that is how runs here coalesce, so a slot's start (`run_at` up
    to `HERE_WITHIN_SECONDS` ahead) is not waited for; one scheduled further ahead goes
    to Redis, and so does a run's own request to go on after its share of a backlog,
    which every worker then shares. A run that fails, or outlasts `time_limit` (arq's
    job timeout), is logged and left to the periodic sweeps, as a failed arq job is;
    `close` cancels the runs under way, as arq cancels its jobs (every job re-checks
    state)."""

    HERE_WITHIN_SECONDS = 1.0

    def __init__(
        self,
        redis: Any,
        queue_name: str,
        *,
        database: Database,
        here: dict[str, Task],
        room: int,
        time_limit: float,
    ) -> None:
        super().__init__(redis, queue_name)
        self.database = database
        self.here = here
        self.room = room
        self.time_limit = time_limit
        self._runs: dict[tuple[Any, ...], _Run] = {}

    async def enqueue(
        self,
        name: str,
        *,
        organization_id: uuid.UUID | None,
        job_id: str | None = None,
        run_at: float | None = None,
        **kwargs: Any,
    ) -> None:
        if self._run_here(name, organization_id, run_at, kwargs):
            FOLLOW_UPS.labels(name, "here").inc()
            return
        if name in self.here:
            FOLLOW_UPS.labels(name, "redis").inc()
        await super().enqueue(
            name, organization_id=organization_id, job_id=job_id, run_at=run_at, **kwargs
        )

    def _run_here(
        self,
        name: str,
        organization_id: uuid.UUID | None,
        run_at: float | None,
        kwargs: dict[str, Any],
    ) -> bool:
        task = self.here.get(name)
        if task is None or (run_at is not None and run_at > time.time() + self.HERE_WITHIN_SECONDS):
            return False
        key = (name, organization_id, *sorted(kwargs.items()))
        run = self._runs.get(key)
        if run is not None:
            if run.task is asyncio.current_task():
                # The run queues itself to go on after a share of its work (a backlog):
                # through Redis, so that every worker takes part.
                return False
            run.again = True
            return True
        if len(self._runs) >= self.room:
            return False
        run = self._runs[key] = _Run()
        run.task = asyncio.create_task(self._run(key, run, name, task, organization_id, kwargs))
        # A task cancelled before its first step never reaches its own `finally`.
        run.task.add_done_callback(lambda _task: self._forget(key, run))
        return True

    def _forget(self, key: tuple[Any, ...], run: _Run) -> None:
        if self._runs.get(key) is run:
            del self._runs[key]

    async def _run(
        self,
        key: tuple[Any, ...],
        run: _Run,
        name: str,
        task: Task,
        organization_id: uuid.UUID | None,
        kwargs: dict[str, Any],
    ) -> None:
        try:
            while True:
                run.again = False
                async with asyncio.timeout(self.time_limit):
                    await run_job(self.database, task, organization_id, **kwargs)
                if not run.again:
                    return
        except Exception:
            FOLLOW_UPS_FAILED.labels(name).inc()
            log.exception("job_failed", job=name, here=True)
        finally:
            # At once, not in a done callback: one asking in between would only set
            # `again` on a run that has ended.
            self._forget(key, run)

    async def drain(self) -> None:
        """Wait until no follow-up runs here (tests)."""
        while self._runs:
            await asyncio.gather(
                *(run.task for run in list(self._runs.values()) if run.task is not None),
                return_exceptions=True,
            )

    async def close(self) -> None:
        runs = [run.task for run in self._runs.values() if run.task is not None]
        for task in runs:
            task.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        await super().close()
