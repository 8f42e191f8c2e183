"""`python -m bench.cpu`: the CPU one request costs in each layer of the stack, with the
apps called in process (no HTTP server, no load generator) against one PostgreSQL.

Four apps answer the same requests:

* `ceiling`: the bench's ceiling, Starlette + asyncpg (`bench/ceiling/app.py`);
* `sqlalchemy`: the ceiling's own handlers, unchanged, with their statements run through
  a SQLAlchemy `AsyncConnection` (`exec_driver_sql`: no compilation, the cheapest public
  way to run SQL through SQLAlchemy; its asyncpg dialect also decodes the JSON columns,
  which the ceiling returns as text);
* `fastapi`: the same, each handler called from a FastAPI route;
* `ours`: the product, issuing the same statements as SQLAlchemy compiles them.

Each figure is the process's CPU time per request (`time.process_time`, PostgreSQL's
work is not in it), the median of alternating rounds, on uvloop as the servers of
`bench.run` run (`--loop asyncio` for the standard loop). The `wrk` bench (`bench.run`)
reads ours / ceiling in requests per second with PostgreSQL and the load generator on
the same cores; this one tells which layer the difference is made of.

    python -m bench.cpu [--scenarios get,comment] [--requests 2000] [--rounds 5]
        [--loop uvloop|asyncio]
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from fastapi import FastAPI, Request
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message

from bench import common
from bench import seed as seeding
from bench.run import mint_token

SCENARIOS = ("get", "comment")
APPS = ("ceiling", "sqlalchemy", "fastapi", "ours")
console = Console()
cli = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


class _Connection:
    """What the ceiling's handlers call on an asyncpg connection, on a SQLAlchemy one."""

    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def execute(self, sql: str, *args: Any) -> None:
        await self.connection.exec_driver_sql(sql, args)

    async def fetchrow(self, sql: str, *args: Any) -> sa.RowMapping | None:
        return (await self.connection.exec_driver_sql(sql, args)).mappings().first()

    async def fetchval(self, sql: str, *args: Any) -> Any:
        return (await self.connection.exec_driver_sql(sql, args)).scalar()

    async def fetch(self, sql: str, *args: Any) -> list[sa.RowMapping]:
        return list((await self.connection.exec_driver_sql(sql, args)).mappings())

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        async with self.connection.begin():
            yield


class _Pool:
    """The ceiling's `app.state.pool`, on a SQLAlchemy engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[_Connection]:
        async with self.engine.connect() as connection:
            yield _Connection(connection)


def _stack_apps(engine: AsyncEngine) -> tuple[Starlette, FastAPI]:
    """The ceiling's handlers on SQLAlchemy: under Starlette as the ceiling runs them, and
    behind FastAPI routes (no dependencies but the request)."""
    from bench.ceiling import app as ceiling

    routes = [
        Route("/api/v1/tickets/{ticket_id}", ceiling.ticket, methods=["GET", "PATCH"]),
        Route("/api/v1/tickets/{ticket_id}/comments", ceiling.comments, methods=["POST"]),
    ]
    handlers: dict[Any, Any] = {ceiling.Unauthorized: ceiling.unauthorized}
    starlette = Starlette(routes=routes, exception_handlers=handlers)
    fastapi = FastAPI(exception_handlers=handlers)

    @fastapi.get("/api/v1/tickets/{ticket_id}")
    async def get_ticket(request: Request) -> Response:
        return await ceiling.ticket(request)

    @fastapi.post("/api/v1/tickets/{ticket_id}/comments")
    async def add_comment(request: Request) -> Response:
        return await ceiling.comments(request)

    for app in (starlette, fastapi):
        app.state.pool = _Pool(engine)
    return starlette, fastapi


async def _call(app: ASGIApp, scope: dict[str, Any], body: bytes) -> int:
    status = 0
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(scope), receive, send)
    return status


def _scope(method: str, path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }


async def _cpu_per_request(
    app: ASGIApp, scope: dict[str, Any], body: bytes, requests: int, expected: int
) -> float:
    started = time.process_time()
    for _ in range(requests):
        status = await _call(app, scope, body)
        if status != expected:
            raise RuntimeError(f"{scope['method']} {scope['path']} answered {status}")
    return (time.process_time() - started) / requests * 1e6


async def _measure(
    dsn: str, secret: str, scenarios: list[str], requests: int, rounds: int
) -> dict[str, dict[str, float]]:
    from app.config import Settings
    from app.main import create_app

    async_url = common.async_url(dsn)
    app_url = sa.make_url(async_url).set(username="helpdesk_app")
    organizations = await seeding.seed(
        dsn,
        organizations=1,
        tickets_per_org=1_000,
        password_hash=secrets.token_hex(16),  # nobody signs in: the token is minted
        progress=lambda _kind, _n: None,
        keep_ids_for=1,
    )
    organization = organizations[0]
    token, _customer = await mint_token(async_url, secret, organization.id)
    headers = {"Authorization": f"Bearer {token}"}
    ticket_id = organization.open_ticket_ids[0]
    requests_of = {
        "get": ("GET", f"/api/v1/tickets/{ticket_id}", headers, b"", 200),
        "comment": (
            "POST",
            f"/api/v1/tickets/{ticket_id}/comments",
            headers | {"Content-Type": "application/json"},
            # As the wrk scenario sends it: an internal note, which the ceiling mirrors
            # statement for statement (a public reply may also read the channel to
            # answer through and set the first response).
            b'{"content": "Bench reply", "comment_type": "internal"}',
            201,
        ),
    }

    os.environ["CEILING_DSN"] = app_url.set(drivername="postgresql").render_as_string(
        hide_password=False
    )
    os.environ["CEILING_SECRET"] = secret
    from bench.ceiling import app as ceiling

    settings = Settings(
        database_url=async_url,
        secret_key=secret,
        environment="production",
        log_level="WARNING",
        rate_limit_per_minute=0,
        redis_url=common.redis_url(),
        job_queue_name=f"arq:bench-cpu:{uuid.uuid4().hex}",
        _env_file=None,  # type: ignore[call-arg]
    )
    ours = create_app(settings)
    engine = create_async_engine(app_url, pool_size=4, max_overflow=0)
    starlette, fastapi = _stack_apps(engine)
    apps: dict[str, ASGIApp] = {
        "ceiling": ceiling.app,
        "sqlalchemy": starlette,
        "fastapi": fastapi,
        "ours": ours,
    }
    results: dict[str, dict[str, float]] = {}
    try:
        async with (
            ceiling.app.router.lifespan_context(ceiling.app),
            ours.router.lifespan_context(ours),
        ):
            for scenario in scenarios:
                method, path, scenario_headers, body, expected = requests_of[scenario]
                scope = _scope(method, path, scenario_headers)
                for app in apps.values():  # warm-up: caches, prepared statements, pools
                    await _cpu_per_request(app, scope, body, 200, expected)
                samples: dict[str, list[float]] = {name: [] for name in apps}
                for _ in range(rounds):
                    for name, app in apps.items():
                        samples[name].append(
                            await _cpu_per_request(app, scope, body, requests, expected)
                        )
                results[scenario] = {name: statistics.median(v) for name, v in samples.items()}
    finally:
        await engine.dispose()
        try:
            await common.forget_jobs(settings.job_queue_name)
        except Exception as exc:  # the run's own error, if any, is the one to see
            console.print(f"[yellow]the run's Redis keys are left: {exc}[/yellow]")
    return results


def _table(results: dict[str, dict[str, float]]) -> Table:
    table = Table(title="CPU per request in process, µs (ceiling / app in brackets)")
    table.add_column("scenario")
    for name in APPS:
        table.add_column(name, justify="right")
    for scenario, by_app in results.items():
        floor = by_app["ceiling"]
        table.add_row(
            scenario,
            *(f"{by_app[name]:,.0f} ({floor / by_app[name]:.2f})" for name in APPS),
        )
    return table


def main(
    scenarios: Annotated[str, typer.Option(help="Comma-separated: get, comment.")] = ",".join(
        SCENARIOS
    ),
    requests: Annotated[int, typer.Option(min=100, help="Requests per app and round.")] = 2000,
    rounds: Annotated[int, typer.Option(min=1, help="Alternating rounds.")] = 5,
    loop: Annotated[str, typer.Option(help="uvloop or asyncio.")] = "uvloop",
) -> None:
    if loop not in ("uvloop", "asyncio"):
        raise typer.BadParameter("--loop is uvloop or asyncio")
    chosen = [s for s in scenarios.split(",") if s]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        raise typer.BadParameter(f"unknown scenarios {unknown}; known: {list(SCENARIOS)}")
    from app.cli import upgrade_database

    dsn = asyncio.run(common.create_database())
    try:
        upgrade_database("head", common.async_url(dsn))
        secret = secrets.token_urlsafe(48)
        if loop == "uvloop":
            import uvloop

            results = uvloop.run(_measure(dsn, secret, chosen, requests, rounds))
        else:
            results = asyncio.run(_measure(dsn, secret, chosen, requests, rounds))
    finally:
        asyncio.run(common.drop_database(dsn))
    console.print(_table(results))


cli.command()(main)

if __name__ == "__main__":
    sys.exit(cli())
