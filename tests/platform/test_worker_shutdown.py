"""`helpdesk worker`'s job runner stops with a job under way: the job is cancelled (arq
runs it again later) and the runner returns in time. (The race the runner also guards
against — arq's close() re-raising a job's CancelledError while that job records its
result under `asyncio.shield` — is timing-dependent and not forced here.)"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from arq.connections import ArqRedis

from app.config import Settings
from app.db.database import Database
from app.kit import outbox
from app.kit.jobs import ArqJobQueue
from app.kit.journal import Journal
from app.kit.outbox import RELAY_JOB
from app.models import OutboxEvent
from app.worker import run_jobs
from tests.support.identity import Tenant

EVENT = "test.shutdown"


async def test_stopping_with_a_job_under_way_returns_cleanly(
    settings: Settings, database: Database, tenant_a: Tenant, test_redis_url: str
) -> None:
    queue_name = f"arq:test-shutdown:{uuid.uuid4().hex}"
    worker_settings = settings.model_copy(
        update={"redis_url": test_redis_url, "job_queue_name": queue_name}
    )
    worker_db = Database(worker_settings)
    started, release = asyncio.Event(), asyncio.Event()

    async def handler(_uow: object, _events: Sequence[OutboxEvent]) -> None:
        # The relay job is under way while this waits.
        started.set()
        await release.wait()

    outbox.subscribe([EVENT], handler)
    redis = ArqRedis.from_url(test_redis_url)
    stopping = asyncio.Event()
    runner = asyncio.create_task(run_jobs(worker_db, worker_settings, stopping))
    try:
        await record_event(database, tenant_a)
        await ArqJobQueue(redis, queue_name).enqueue(RELAY_JOB, organization_id=tenant_a.org.id)
        await asyncio.wait_for(started.wait(), timeout=10)
        stopping.set()
        await asyncio.wait_for(runner, timeout=20)
    finally:
        release.set()
        outbox._handlers[:] = [entry for entry in outbox._handlers if entry[1] is not handler]
        if not runner.done():
            runner.cancel()
        await redis.aclose()
        await worker_db.dispose()


async def record_event(database: Database, tenant: Tenant) -> None:
    """An event for the handler above, committed with no relay queued for it (this
    `database` has no job queue)."""
    uow = database.tenant_unit(tenant.org.id)
    try:
        journal = Journal(uow)
        journal.event(EVENT, aggregate_type="ticket", aggregate_id=uuid.uuid4(), payload={})
        await journal.write()
        await uow.commit()
    finally:
        await uow.close()
