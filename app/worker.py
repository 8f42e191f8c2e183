"""`helpdesk worker`: the SLA timer loop and the arq job runner, side by side in one process.

The timer loop (`app.sla.timers`) needs only the database. The job runner (the job
registry below, run by arq on Redis) is restarted with a backoff whenever Redis is
unreachable, so breaches are still flagged with Redis down; the events they write wait
in the outbox for the relay. SIGTERM or SIGINT stops both: jobs under way are cancelled
(arq runs them again; every job re-checks state), the timer batch under way commits.

In embedded mode (no REDIS_URL) the API process runs the same tasks through
`InProcessJobQueue` and the same timer loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from typing import Any

import structlog
from arq import cron
from arq.connections import ArqRedis, RedisSettings
from arq.typing import WorkerCoroutine
from arq.worker import Function, Retry, Worker, func
from prometheus_client import start_http_server

from app.attachments.service import ORPHAN_SWEEP_JOB, sweep_attachments
from app.channels import outgoing
from app.channels import service as channels
from app.config import Settings
from app.db.database import Database
from app.kit.idempotency import PURGE_JOB, purge_expired
from app.kit.jobs import Task, WorkerJobQueue, run_job, transient
from app.kit.outbox import RELAY_JOB, SWEEP_JOB, relay_outbox, sweep_outbox
from app.observability import configure_logging
from app.sla.recompute import RECOMPUTE_JOB
from app.sla.timers import TimerLoop
from app.tickets.service import recompute_clocks
from app.webhooks import connections
from app.webhooks.service import DELIVER_JOB
from app.webhooks.tasks import SWEEP_EVERY_SECONDS as WEBHOOK_SWEEP_SECONDS
from app.webhooks.tasks import SWEEP_JOB as WEBHOOK_SWEEP_JOB
from app.webhooks.tasks import deliver_subscription, sweep_deliveries

TASKS: dict[str, Task] = {
    RELAY_JOB: relay_outbox,
    RECOMPUTE_JOB: recompute_clocks,
    SWEEP_JOB: sweep_outbox,
    PURGE_JOB: purge_expired,
    ORPHAN_SWEEP_JOB: sweep_attachments,
    DELIVER_JOB: deliver_subscription,
    WEBHOOK_SWEEP_JOB: sweep_deliveries,
    outgoing.SEND_JOB: outgoing.send_reply,
    outgoing.SWEEP_JOB: outgoing.sweep_replies,
    channels.PLACE_JOB: channels.place_stored,
    channels.INBOX_SWEEP_JOB: channels.sweep_inbox,
}
# Follow-ups a worker runs itself when its jobs queue them (`WorkerJobQueue`): the
# deliveries the outbox relay just created go out from the process that relayed them.
RUN_HERE: dict[str, Task] = {DELIVER_JOB: deliver_subscription}
PERIODIC_SECONDS: dict[str, float] = {
    SWEEP_JOB: 60.0,
    PURGE_JOB: 3600.0,
    ORPHAN_SWEEP_JOB: 3600.0,
    WEBHOOK_SWEEP_JOB: WEBHOOK_SWEEP_SECONDS,
    outgoing.SWEEP_JOB: outgoing.SWEEP_EVERY_SECONDS,
    channels.INBOX_SWEEP_JOB: channels.INBOX_SWEEP_EVERY_SECONDS,
}
MAX_REDIS_BACKOFF_SECONDS = 10.0
JOB_RETRY_MAX_SECONDS = 60

log = structlog.get_logger(__name__)


def arq_job(name: str, task: Task) -> Function:
    async def job(ctx: dict[str, Any], organization_id: str | None, **kwargs: Any) -> Any:
        org = uuid.UUID(organization_id) if organization_id else None
        try:
            return await run_job(ctx["database"], task, org, **kwargs)
        except Exception as error:
            if not transient(error):
                raise
            # The database is restarting or unreachable: the job runs again later, up to
            # max_tries, waiting longer each time.
            delay = min(JOB_RETRY_MAX_SECONDS, 2 ** ctx.get("job_try", 1))
            log.warning("job_retried", job=name, error=str(error), retry_in=delay)
            raise Retry(defer=delay) from error

    job.__qualname__ = job.__name__ = name.replace(".", "_")
    # keep_result=0: arq refuses to enqueue a job id whose result it still holds, which
    # would silently drop the next relay or sweep of the same id for an hour.
    return func(job, name=name, max_tries=5, keep_result=0)


def periodic(task: Task) -> WorkerCoroutine:
    """An arq cron function running a platform task (system session)."""

    async def run_periodic(ctx: dict[Any, Any], *_args: Any, **_kwargs: Any) -> Any:
        return await run_job(ctx["database"], task, None)

    return run_periodic


def every(seconds: float) -> set[int]:
    """The seconds of the minute at which a cron job `seconds` apart runs."""
    return set(range(0, 60, int(seconds)))


class WorkerSettings:
    """What arq runs: the job registry and the periodic sweeps."""

    functions = [arq_job(name, task) for name, task in TASKS.items()]
    cron_jobs = [
        cron(periodic(sweep_outbox), name="outbox.sweep.cron", second=0, unique=True),
        cron(
            periodic(purge_expired),
            name="idempotency.purge.cron",
            minute=17,
            second=0,
            unique=True,
        ),
        cron(
            periodic(sweep_attachments),
            name="attachments.sweep.cron",
            minute=41,
            second=0,
            unique=True,
        ),
        # Webhook retries wait in the database; this finds them when they are due.
        cron(
            periodic(sweep_deliveries),
            name="webhooks.sweep.cron",
            second=every(WEBHOOK_SWEEP_SECONDS),
            unique=True,
        ),
        # Replies waiting for a retry (or a lost enqueue) are found here when due.
        cron(
            periodic(outgoing.sweep_replies),
            name="channels.sweep_replies.cron",
            second=every(outgoing.SWEEP_EVERY_SECONDS),
            unique=True,
        ),
        # Inbound messages stored but never placed (their request died).
        cron(
            periodic(channels.sweep_inbox),
            name="channels.sweep_inbox.cron",
            second=0,
            unique=True,
        ),
    ]
    max_jobs = 20
    # Besides those, follow-ups a worker runs itself (`RUN_HERE`). A delivery run holds a
    # database connection only in its two short transactions, so the pool
    # (DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW, 30 by default) covers both.
    run_here = 10
    job_timeout = 300
    # How long an idle worker waits between looks at the queue (arq's default is half a
    # second): every webhook's relay job, and its delivery job when that one goes
    # through Redis, would wait up to that long for its turn. A look is one cheap Redis
    # command.
    poll_delay = 0.05


async def run(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT."""
    if not settings.redis_url:
        raise SystemExit("helpdesk worker needs REDIS_URL (embedded mode runs jobs in the API)")
    configure_logging(settings)
    if settings.worker_metrics_port is not None:
        start_http_server(settings.worker_metrics_port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    database = Database(settings)
    # Connects on first use: a worker starts, and flags breaches, with Redis down.
    redis = ArqRedis.from_url(settings.redis_url)
    jobs = WorkerJobQueue(
        redis,
        settings.job_queue_name,
        database=database,
        here=RUN_HERE,
        room=WorkerSettings.run_here,
        time_limit=WorkerSettings.job_timeout,
    )
    database.jobs = jobs
    timers = TimerLoop(database)
    timers.start()
    try:
        await run_jobs(database, settings, stopping)
    finally:
        await timers.close()
        await jobs.close()
        await connections.close_all()
        await database.dispose()


async def run_jobs(database: Database, settings: Settings, stopping: asyncio.Event) -> None:
    """arq's job runner until `stopping`, started again (with a backoff) each time it
    ends because Redis went away."""
    assert settings.redis_url is not None
    backoff = 0.0
    while not stopping.is_set():
        worker = Worker(
            functions=WorkerSettings.functions,
            cron_jobs=WorkerSettings.cron_jobs,
            max_jobs=WorkerSettings.max_jobs,
            job_timeout=WorkerSettings.job_timeout,
            poll_delay=WorkerSettings.poll_delay,
            redis_settings=RedisSettings.from_dsn(settings.redis_url),
            queue_name=settings.job_queue_name,
            ctx={"database": database},
            handle_signals=False,
        )
        started = time.monotonic()
        running = asyncio.create_task(worker.async_run(), name="arq")
        stop = asyncio.create_task(stopping.wait())
        await asyncio.wait({running, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        # Cancels the jobs under way (arq runs them again); with Redis gone it cannot
        # tidy its keys up. It re-raises the cancelled jobs' CancelledError, which is
        # theirs, not ours: only this task's own cancellation leaves from here.
        try:
            with contextlib.suppress(Exception):
                await worker.close()
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        running.cancel()
        with contextlib.suppress(BaseException):
            await running
        if stopping.is_set():
            return
        error = running.exception() if not running.cancelled() else None
        if time.monotonic() - started > MAX_REDIS_BACKOFF_SECONDS:
            backoff = 0.0  # it ran for a while: this is a new outage
        backoff = min(MAX_REDIS_BACKOFF_SECONDS, max(0.5, backoff * 2))
        log.warning("job_runner_stopped", error=str(error), retry_in=backoff)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=backoff)
