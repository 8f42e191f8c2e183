"""Background jobs: arq on Redis in production, an in-process runner in embedded mode.

Jobs are enqueued only after the unit of work that asked for them commits
(`enqueue_after_commit`), take ids and an `organization_id` (never ORM objects), and run
inside `run_job`, the job-side twin of the request dependency: one session, bound to the
job's organization, committed in exactly one place. arq may run a job more than once,
so jobs reload and re-check state; deterministic `job_id`s make re-enqueueing harmless.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.session import JOB_QUEUE, ORGANIZATION_ID, Database, after_commit, commit

Task = Callable[..., Awaitable[Any]]
"""A domain task: `async def task(session: AsyncSession, **kwargs)`."""

log = structlog.get_logger(__name__)


class JobQueue(Protocol):
    async def enqueue(
        self,
        name: str,
        *,
        organization_id: uuid.UUID | None,
        job_id: str | None = None,
        **kwargs: Any,
    ) -> None: ...

    async def close(self) -> None: ...


async def run_job(
    database: Database, task: Task, organization_id: uuid.UUID | None, **kwargs: Any
) -> Any:
    """One unit of work for one job: a tenant session for the job's organization (the
    system session for platform sweeps), committed here and only here."""
    session = (
        database.tenant_session(organization_id)
        if organization_id is not None
        else database.system_session()
    )
    structlog.contextvars.bind_contextvars(
        job=getattr(task, "__name__", "job"), organization_id=str(organization_id or "")
    )
    async with session:
        try:
            result = await task(session, **kwargs)
        except BaseException:
            await session.rollback()
            raise
        await commit(session)
        return result


def enqueue_after_commit(
    session: AsyncSession, name: str, *, job_id: str | None = None, **kwargs: Any
) -> None:
    """Queue a job for when this unit of work commits; a rollback drops it."""
    queue: JobQueue | None = session.info.get(JOB_QUEUE)
    if queue is None:
        return  # no runner attached (migrations, one-off scripts): sweeps pick the work up
    organization_id = session.info.get(ORGANIZATION_ID)

    async def _enqueue() -> None:
        await queue.enqueue(name, organization_id=organization_id, job_id=job_id, **kwargs)

    after_commit(session, _enqueue)


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
        **kwargs: Any,
    ) -> None:
        if job_id is not None and job_id in self._pending:
            return
        task = asyncio.create_task(self._run(name, organization_id, job_id, kwargs))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        if job_id is not None:
            self._pending[job_id] = task

    async def _run(
        self,
        name: str,
        organization_id: uuid.UUID | None,
        job_id: str | None,
        kwargs: dict[str, Any],
    ) -> None:
        try:
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

    async def enqueue(
        self,
        name: str,
        *,
        organization_id: uuid.UUID | None,
        job_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        await self.redis.enqueue_job(
            name,
            str(organization_id) if organization_id else None,
            _job_id=job_id,
            _queue_name=self.queue_name,
            **kwargs,
        )

    async def close(self) -> None:
        await self.redis.aclose()
