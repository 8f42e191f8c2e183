"""SLA timers in real `helpdesk worker` processes: two workers racing on a thousand
overdue tickets flag each breach once; a worker killed with SIGKILL in the middle of a
batch loses nothing and doubles nothing; breaches land with Redis emptied, and with
Redis gone altogether."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from redis.asyncio import Redis

from app.config import Settings
from app.db.database import Database
from app.models import OutboxEvent, TicketHistory
from app.models.ticket import Ticket, TicketSLAEvent
from app.tickets.service import open_ticket
from tests.support.identity import Tenant
from tests.support.sla import add_policy, age

WORKERS = 2


class Worker:
    """`helpdesk worker` in its own process, as production runs it."""

    def __init__(self, settings: Settings, redis_url: str, log: Path) -> None:
        self.metrics_port = free_port()
        environment = {
            **os.environ,
            "DATABASE_URL": settings.database_url,
            "REDIS_URL": redis_url,
            "JOB_QUEUE_NAME": settings.job_queue_name,
            "ENVIRONMENT": "test",
            "SLA_TIMER_POLL_SECONDS": "0.1",
            "WORKER_METRICS_PORT": str(self.metrics_port),
        }
        self.log = log
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "worker"],
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    async def metric(self, name: str) -> float:
        """The sum of a metric's samples (every label) on the worker's /metrics."""
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{self.metrics_port}/metrics")).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith((f"{name} ", f"{name}{{"))
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM, as an orchestrator stops a worker: it finishes and exits."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@contextmanager
def workers(
    settings: Settings, redis_url: str, tmp_path: Path, count: int
) -> Iterator[list[Worker]]:
    started = [Worker(settings, redis_url, tmp_path / f"worker-{i}.log") for i in range(count)]
    try:
        yield started
    finally:
        codes = [worker.stop() for worker in started]
        for worker in started:
            print(worker.log.read_text(errors="replace")[-4000:])  # shown when a test fails
        assert all(code in (0, -signal.SIGKILL) for code in codes), codes


async def overdue(
    client: httpx.AsyncClient, database: Database, tenant: Tenant, count: int
) -> list[uuid.UUID]:
    """`count` tickets of a 5-minute first-response policy, opened 10 minutes ago."""
    await add_policy(client, tenant, first_response_minutes=5)
    customer_id = tenant["customer"].user_id
    assert customer_id is not None
    uow = database.tenant_unit(tenant.org.id)
    try:
        ids = [
            (
                await open_ticket(
                    uow, subject=f"Overdue {i}", customer_id=customer_id, created_by_id=None
                )
            )["id"]
            for i in range(count)
        ]
        await uow.commit()
    finally:
        await uow.close()
    await age(database, ids, minutes=10)
    return ids


async def wait_until_breached(database: Database, ids: list[uuid.UUID], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await breached(database, ids) == len(ids):
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"{await breached(database, ids)} of {len(ids)} breaches flagged in {seconds} s")


async def breached(database: Database, ids: list[uuid.UUID]) -> int:
    async with database.system_session() as session:
        statement = sa.select(sa.func.count()).where(Ticket.id.in_(ids), Ticket.sla_breach)
        return int(await session.scalar(statement) or 0)


async def assert_flagged_once(database: Database, ids: list[uuid.UUID]) -> None:
    """One breach in each log, one history row and one event per ticket: none twice."""
    async with database.system_session() as session:
        for model, condition in (
            (TicketSLAEvent, TicketSLAEvent.kind == "breach"),
            (TicketHistory, TicketHistory.field == "sla_breach"),
        ):
            statement = (
                sa.select(model.ticket_id, sa.func.count())
                .where(model.ticket_id.in_(ids), condition)
                .group_by(model.ticket_id)
            )
            counts = dict((await session.execute(statement)).all())
            assert counts == dict.fromkeys(ids, 1), model.__name__
        statement = (
            sa.select(OutboxEvent.aggregate_id, sa.func.count())
            .where(
                OutboxEvent.aggregate_id.in_(ids),
                OutboxEvent.event_type == "ticket.sla_breached",
            )
            .group_by(OutboxEvent.aggregate_id)
        )
        assert dict((await session.execute(statement)).all()) == dict.fromkeys(ids, 1)


async def test_two_workers_racing_on_a_thousand_overdue_tickets_flag_each_once(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    tenant_a: Tenant,
    test_redis_url: str,
    tmp_path: Path,
) -> None:
    ids = await overdue(client, database, tenant_a, 1000)
    with workers(settings, test_redis_url, tmp_path, WORKERS) as racing:
        await wait_until_breached(database, ids, seconds=90)
        # Counted where Prometheus scrapes them (tickets other tests left due, too).
        for name in (
            "helpdesk_sla_timers_claimed_total",
            "helpdesk_sla_breaches_flagged_total",
            "helpdesk_sla_breach_lag_seconds_count",
        ):
            assert sum([await worker.metric(name) for worker in racing]) >= len(ids), name
    await assert_flagged_once(database, ids)


async def test_a_worker_killed_in_the_middle_of_a_batch_loses_and_doubles_nothing(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    tenant_a: Tenant,
    test_redis_url: str,
    tmp_path: Path,
) -> None:
    ids = await overdue(client, database, tenant_a, 1500)
    with workers(settings, test_redis_url, tmp_path, 1) as [first]:
        # Killed while a batch transaction of it has written and not committed.
        await wait_for_open_write(database, settings)
        first.kill()
        flagged_before = await breached(database, ids)
        assert flagged_before < len(ids)
        with workers(settings, test_redis_url, tmp_path, 1):
            await wait_until_breached(database, ids, seconds=90)
    await assert_flagged_once(database, ids)


async def test_breaches_land_with_redis_emptied_and_with_redis_gone(
    client: httpx.AsyncClient,
    database: Database,
    settings: Settings,
    tenant_a: Tenant,
    tmp_path: Path,
) -> None:
    ids = await overdue(client, database, tenant_a, 30)
    first, second, third = ids[:10], ids[10:20], ids[20:]
    await age(database, ids, minutes=-60)  # not due yet: each wave is made due below
    with private_redis(tmp_path) as (redis_url, server):
        await wait_for_redis(redis_url)
        with workers(settings, redis_url, tmp_path, 1):
            await age(database, first, minutes=60)
            await wait_until_breached(database, first, seconds=30)
            redis = Redis.from_url(redis_url)
            await redis.flushall()
            await redis.aclose()
            await age(database, second, minutes=60)
            await wait_until_breached(database, second, seconds=30)
            server.kill()
            server.wait(timeout=10)
            await age(database, third, minutes=60)
            await wait_until_breached(database, third, seconds=30)
    await assert_flagged_once(database, ids)


# --- helpers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def wait_for_open_write(database: Database, settings: Settings) -> None:
    """Until a transaction of the app role in the test database has written (it holds a
    transaction id) and not committed: a worker in the middle of a batch."""
    statement = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND usename = :role "
        "AND backend_xid IS NOT NULL"
    )
    deadline = time.monotonic() + 60
    async with database.system_session() as session:
        while time.monotonic() < deadline:
            found = await session.scalar(statement, {"role": settings.database_app_role})
            await session.rollback()
            if found:
                return
            await asyncio.sleep(0.005)
    pytest.fail("no worker transaction was seen writing")


@contextmanager
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of this test's own, which it may stop."""
    executable = shutil.which("redis-server")
    assert executable is not None, "redis-server (Debian's redis-server package) is needed"
    port = free_port()
    command = [executable, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    server = subprocess.Popen(  # noqa: S603 - a fixed local binary
        [*command, "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield f"redis://127.0.0.1:{port}/0", server
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)


async def wait_for_redis(url: str) -> None:
    client = Redis.from_url(url)
    try:
        for _ in range(100):
            try:
                await client.ping()
                return
            except Exception:  # not listening yet
                await asyncio.sleep(0.05)
        pytest.fail(f"{url} did not answer")
    finally:
        await client.aclose()
