"""`helpdesk worker`'s job runner stops with a job under way: the job is cancelled (arq
runs it again later) and the runner returns in time. (The race the runner also guards
against — arq's close() re-raising a job's CancelledError while that job records its
result under `asyncio.shield` — is timing-dependent and not forced here.)"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from arq.connections import ArqRedis

from app.config import Settings
from app.db.database import Database
from app.kit.jobs import ArqJobQueue
from app.kit.outbox import RELAY_JOB, OutboxRepository
from app.worker import run_jobs
from tests.support.identity import Tenant


async def test_stopping_with_a_job_under_way_returns_cleanly(
    settings: Settings, database: Database, tenant_a: Tenant, test_redis_url: str
) -> None:
    queue_name = f"arq:test-shutdown:{uuid.uuid4().hex}"
    worker_settings = settings.model_copy(
        update={"redis_url": test_redis_url, "job_queue_name": queue_name}
    )
    worker_db = Database(worker_settings)
    # The organization's relay lock, held here: the relay job waits on it, under way.
    holder = database.tenant_unit(tenant_a.org.id)
    redis = ArqRedis.from_url(test_redis_url)
    stopping = asyncio.Event()
    runner = asyncio.create_task(run_jobs(worker_db, worker_settings, stopping))
    try:
        await OutboxRepository(holder.session).relay_alone()
        await ArqJobQueue(redis, queue_name).enqueue(RELAY_JOB, organization_id=tenant_a.org.id)
        for _ in range(100):
            if await waiting_on_the_lock(database):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the relay job never started")
        stopping.set()
        await asyncio.wait_for(runner, timeout=20)
    finally:
        await holder.close()
        if not runner.done():
            runner.cancel()
        await redis.aclose()
        await worker_db.dispose()


async def waiting_on_the_lock(database: Database) -> bool:
    import sqlalchemy as sa

    async with database.system_session() as session:
        waiting = await session.scalar(
            sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        )
    return bool(waiting)
