"""What the API bench (`bench.run`) and the SLA timer scenario (`bench.sla_timers`) share:
a database of their own, processes started the production way, and the Redis keys a run
leaves behind."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path

import asyncpg
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
RUN_DIR = RESULTS / ".run"


def admin_dsn() -> str:
    url = os.environ.get(
        "BENCH_DATABASE_URL",
        os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def async_url(dsn: str) -> str:
    """The URL the product takes (`DATABASE_URL`): asyncpg."""
    return (
        sa.make_url(dsn).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    )


async def create_database() -> str:
    name = f"helpdesk_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin_dsn())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return sa.make_url(admin_dsn()).set(database=name).render_as_string(hide_password=False)


async def drop_database(dsn: str) -> None:
    name = sa.make_url(dsn).database
    conn = await asyncpg.connect(admin_dsn())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def forget_jobs(queue: str) -> None:
    """Drop a run's queue, its arq keys (jobs, in-progress, retries, results) and the
    workers' health check."""
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url())
    try:
        await redis.delete(queue, f"{queue}:health-check")
        for pattern in ("arq:job:*", "arq:in-progress:*", "arq:retry:*", "arq:result:*"):
            async for key in redis.scan_iter(match=pattern):
                await redis.delete(key)
    finally:
        await redis.aclose()


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """The server's output goes to `log`, a file: a pipe nobody reads fills up (a few
    tracebacks of clients that hung up when wrk stopped) and then blocks the server."""
    with log.open("wb") as output:
        return subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)


async def connection_headroom() -> tuple[int, int]:
    """(connections PostgreSQL allows, connections open now): a shared server whose
    other users hold many leaves the bench's pools short, and requests fail with
    "remaining connection slots are reserved" (counted as errors in the results)."""
    conn = await asyncpg.connect(admin_dsn())
    try:
        allowed = int(await conn.fetchval("SHOW max_connections")) - int(
            await conn.fetchval("SHOW superuser_reserved_connections")
        )
        used = int(await conn.fetchval("SELECT count(*) FROM pg_stat_activity"))
        return allowed, used - 1
    finally:
        await conn.close()
