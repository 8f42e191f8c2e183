"""arq worker: the job registry, cron sweeps, the per-job unit of work, and the SLA timer
loop (`app.sla.timers`) beside them.

`helpdesk worker` runs this. In embedded mode (no REDIS_URL) the API process runs the
same tasks through `InProcessJobQueue` instead.
"""

from __future__ import annotations

import uuid
from typing import Any

from arq import cron
from arq.connections import RedisSettings
from arq.worker import Function, func

from app.attachments.service import ORPHAN_SWEEP_JOB, sweep_attachments
from app.config import get_settings
from app.db.database import Database
from app.kit.idempotency import PURGE_JOB, purge_expired
from app.kit.jobs import ArqJobQueue, Task, run_job
from app.kit.outbox import RELAY_JOB, SWEEP_JOB, relay_outbox, sweep_outbox
from app.observability import configure_logging
from app.sla.timers import TimerLoop

TASKS: dict[str, Task] = {
    RELAY_JOB: relay_outbox,
    SWEEP_JOB: sweep_outbox,
    PURGE_JOB: purge_expired,
    ORPHAN_SWEEP_JOB: sweep_attachments,
}
PERIODIC_SECONDS: dict[str, float] = {SWEEP_JOB: 60.0, PURGE_JOB: 3600.0, ORPHAN_SWEEP_JOB: 3600.0}


def _arq_function(name: str, task: Task) -> Function:
    async def job(ctx: dict[str, Any], organization_id: str | None, **kwargs: Any) -> Any:
        org = uuid.UUID(organization_id) if organization_id else None
        return await run_job(ctx["database"], task, org, **kwargs)

    job.__qualname__ = job.__name__ = name.replace(".", "_")
    # keep_result=0: arq refuses to enqueue a job id whose result it still holds, which
    # would silently drop the next relay or sweep of the same id for an hour.
    return func(job, name=name, max_tries=5, keep_result=0)


async def _sweep_cron(ctx: dict[str, Any]) -> Any:
    return await run_job(ctx["database"], sweep_outbox, None)


async def _purge_cron(ctx: dict[str, Any]) -> Any:
    return await run_job(ctx["database"], purge_expired, None)


async def _attachments_cron(ctx: dict[str, Any]) -> Any:
    return await run_job(ctx["database"], sweep_attachments, None)


async def startup(ctx: dict[str, Any]) -> None:
    settings = get_settings()
    configure_logging(settings)
    database = Database(settings)
    database.jobs = ArqJobQueue(ctx["redis"], settings.job_queue_name)
    ctx["database"] = database
    timers = TimerLoop(database)
    timers.start()
    ctx["timers"] = timers


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["timers"].close()
    await ctx["database"].dispose()


def redis_settings() -> RedisSettings:
    url = get_settings().redis_url
    if not url:
        raise SystemExit("helpdesk worker needs REDIS_URL (embedded mode runs jobs in the API)")
    return RedisSettings.from_dsn(url)


class WorkerSettings:
    functions = [_arq_function(name, task) for name, task in TASKS.items()]
    cron_jobs = [
        cron(_sweep_cron, name="outbox.sweep.cron", second=0, unique=True),
        cron(_purge_cron, name="idempotency.purge.cron", minute=17, second=0, unique=True),
        cron(_attachments_cron, name="attachments.sweep.cron", minute=41, second=0, unique=True),
    ]
    on_startup = startup
    on_shutdown = shutdown
    max_jobs = 20
    job_timeout = 300
