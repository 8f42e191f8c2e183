"""A real arq worker for tests: the production job registry, run once over the queue."""

from __future__ import annotations

from arq.connections import ArqRedis
from arq.worker import Worker

from app.config import Settings
from app.db.database import Database
from app.worker import WorkerSettings


async def run_worker_burst(redis: ArqRedis, settings: Settings, database: Database) -> Worker:
    """A real arq worker that drains the queue once and returns."""
    worker = Worker(
        functions=WorkerSettings.functions,
        redis_pool=redis,
        queue_name=settings.job_queue_name,
        burst=True,
        poll_delay=0,
        ctx={"database": database},
    )
    await worker.main()
    return worker
