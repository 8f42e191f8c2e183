"""`make bench`: seed PostgreSQL, start the API the production way and the ceiling app
the same way, drive both with wrk, and report our / ceiling per scenario.

    python -m bench.run [--organizations 100] [--tickets 10000] [--duration 15]

Results go to bench/results/<UTC time>.json and .md, and bench/results/latest.md."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import asyncpg
import httpx
import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench import seed as seeding

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
SCENARIOS = [
    "create",
    "create_contended",
    "list",
    "list_filtered",
    "search",
    "get",
    "comment",
    "patch_status",
]
# create_contended is judged by latency: our create's p99 against the ceiling's bare
# create (take the number, insert the row, commit), 32 clients in one organization.
console = Console()
cli = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@dataclass
class Measurement:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def admin_dsn() -> str:
    url = os.environ.get(
        "BENCH_DATABASE_URL",
        os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    console.print("wrk not found: installing Debian's package")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("could not install wrk (apt-get install wrk)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


async def mint_token(async_url: str, secret: str, organization: uuid.UUID) -> tuple[str, str]:
    """A session for an agent of `organization`, opened by the product's own service."""
    from app.auth import service as auth
    from app.config import Settings
    from app.db.database import Database
    from app.models.user import Role, User

    settings = Settings(database_url=async_url, secret_key=secret, _env_file=None)  # type: ignore[call-arg]
    database = Database(settings)
    try:
        async with database.system_session() as session:
            agent = await session.scalar(
                sa.select(User).where(User.organization_id == organization, User.role == Role.AGENT)
            )
            customer = await session.scalar(
                sa.select(User.id).where(
                    User.organization_id == organization, User.role == Role.CUSTOMER
                )
            )
            if agent is None or customer is None:
                raise SystemExit("the seeded organization has no agent or customer")
            pair = await auth.open_session(
                session, settings, agent, auth.ClientInfo("127.0.0.1", "bench"), datetime.now(UTC)
            )
            await session.commit()
        return pair.access_token, str(customer)
    finally:
        await database.dispose()


async def forget_jobs(queue: str) -> None:
    """Nothing runs the API's queued jobs in the bench (no arq worker): drop them."""
    from redis.asyncio import Redis

    redis = Redis.from_url(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    try:
        await redis.delete(queue)
        async for key in redis.scan_iter(match="arq:job:*"):
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


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server at {url} did not become ready")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


_LATENCY = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> Measurement:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    latencies = {
        m.group(1): float(m.group(2)) * _UNIT[m.group(3)] for m in _LATENCY.finditer(output)
    }
    errors = 0
    if non_2xx := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output):
        errors += int(non_2xx.group(1))
    if socket_errors := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        errors += sum(int(n) for n in socket_errors.groups())
    return Measurement(rps, latencies.get("50", 0.0), latencies.get("99", 0.0), total, errors)


def run_wrk(
    wrk: str,
    url: str,
    scenario: str,
    env: dict[str, str],
    *,
    duration: int,
    connections: int,
    threads: int,
    retried: list[str] | None = None,
) -> Measurement:
    """One wrk run. With `retried` given, a run in which no request completed is run
    once more and noted there (reported in the results, never hidden)."""
    measured = _wrk_once(wrk, url, scenario, env, duration, connections, threads)
    if measured.requests == 0 and retried is not None:
        console.print(f"{url}: no request completed in {scenario}; again")
        retried.append(f"{scenario}@{url}")
        time.sleep(5)
        measured = _wrk_once(wrk, url, scenario, env, duration, connections, threads)
    return measured


def _wrk_once(
    wrk: str,
    url: str,
    scenario: str,
    env: dict[str, str],
    duration: int,
    connections: int,
    threads: int,
) -> Measurement:
    command = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(ROOT / "wrk" / "scenario.lua"),
        url,
    ]
    result = subprocess.run(
        command,
        env={**os.environ, **env, "BENCH_SCENARIO": scenario, "BENCH_THREADS": str(threads)},
        capture_output=True,
        text=True,
        check=True,
    )
    return parse_wrk(result.stdout)


def combine(rounds: list[Measurement]) -> Measurement:
    """Rounds of equal length: mean throughput and mean percentiles, summed counts."""
    n = len(rounds)
    return Measurement(
        requests_per_second=sum(m.requests_per_second for m in rounds) / n,
        p50_ms=sum(m.p50_ms for m in rounds) / n,
        p99_ms=sum(m.p99_ms for m in rounds) / n,
        requests=sum(m.requests for m in rounds),
        errors=sum(m.errors for m in rounds),
    )


def report(rows: dict[str, dict[str, Measurement]], meta: dict[str, Any]) -> tuple[Table, str]:
    table = Table(title="our API / ceiling (bare Starlette + asyncpg, same SQL)")
    header = [
        "scenario",
        "ours req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "ceiling req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "ours / ceiling",
        "p99 ours / ceiling",
    ]
    for column in header:
        table.add_column(column, justify="right" if column != "scenario" else "left")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for scenario, result in rows.items():
        ours, ceiling = result["ours"], result["ceiling"]
        ratio = (
            ours.requests_per_second / ceiling.requests_per_second
            if ceiling.requests_per_second
            else 0.0
        )
        cells = [
            scenario,
            f"{ours.requests_per_second:,.0f}",
            f"{ours.p50_ms:.1f}",
            f"{ours.p99_ms:.1f}",
            str(ours.errors),
            f"{ceiling.requests_per_second:,.0f}",
            f"{ceiling.p50_ms:.1f}",
            f"{ceiling.p99_ms:.1f}",
            str(ceiling.errors),
            f"{ratio:.2f}",
            f"{ours.p99_ms / ceiling.p99_ms:.2f}" if ceiling.p99_ms else "-",
        ]
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    setup = ", ".join(f"{k}={v}" for k, v in meta.items())
    return table, f"Setup: {setup}\n\n" + "\n".join(lines) + "\n"


@cli.command()
def main(
    organizations: Annotated[int, typer.Option(min=1)] = 100,
    tickets: Annotated[int, typer.Option(min=10, help="Tickets per organization.")] = 10_000,
    duration: Annotated[
        int, typer.Option(min=1, help="Seconds per server and scenario, split over the rounds.")
    ] = 15,
    connections: Annotated[int, typer.Option(min=1)] = 32,
    workers: Annotated[int, typer.Option(min=1)] = os.cpu_count() or 1,
    scenarios: Annotated[str, typer.Option(help="Comma-separated subset.")] = ",".join(SCENARIOS),
    rounds: Annotated[
        int, typer.Option(min=1, help="Alternating ours/ceiling rounds per scenario.")
    ] = 3,
    keep_database: bool = False,
) -> None:
    wrk = ensure_wrk()
    chosen = [s.strip() for s in scenarios.split(",") if s.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        raise typer.BadParameter(f"unknown scenarios: {', '.join(sorted(unknown))}")
    dsn = asyncio.run(create_database())
    async_url = (
        sa.make_url(dsn).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    )
    secret = secrets.token_urlsafe(48)
    servers: list[subprocess.Popen[bytes]] = []
    redis_queue = f"arq:bench:{uuid.uuid4().hex}"
    try:
        from app.auth.passwords import _hasher
        from app.cli import upgrade_database

        upgrade_database("head", async_url)
        with Progress(
            TextColumn("seeding {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("tickets", total=organizations * tickets)
            orgs = asyncio.run(
                seeding.seed(
                    dsn,
                    organizations=organizations,
                    tickets_per_org=tickets,
                    password_hash=_hasher().hash("bench-password-123"),
                    progress=lambda kind, n: (
                        progress.advance(task, n) if kind == "tickets" else None
                    ),
                    keep_ids_for=1,
                )
            )
        target = orgs[0]
        token, customer = asyncio.run(mint_token(async_url, secret, target.id))
        run_dir = RESULTS / ".run"
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "ids.txt").write_text("\n".join(str(i) for i in target.ticket_ids))
        (run_dir / "open_ids.txt").write_text("\n".join(str(i) for i in target.open_ticket_ids))
        load_env = {
            "BENCH_TOKEN": token,
            "BENCH_CUSTOMER": customer,
            "BENCH_IDS": str(run_dir / "ids.txt"),
            "BENCH_OPEN_IDS": str(run_dir / "open_ids.txt"),
        }
        ours_port, ceiling_port = free_port(), free_port()
        logs = {name: run_dir / f"{name}.log" for name in ("ours", "ceiling")}
        uvicorn = [
            sys.executable,
            "-m",
            "uvicorn",
            "--host",
            "127.0.0.1",
            "--workers",
            str(workers),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
        servers.append(
            start(
                [*uvicorn, "--port", str(ours_port), "--factory", "app.main:app_factory"],
                {
                    "DATABASE_URL": async_url,
                    "SECRET_KEY": secret,
                    "ENVIRONMENT": "production",
                    "LOG_LEVEL": "WARNING",
                    "RATE_LIMIT_PER_MINUTE": "0",
                    # The ceiling's pool: 20 per worker, no overflow (both apps together
                    # stay below PostgreSQL's default 100 connections).
                    "DATABASE_POOL_SIZE": "20",
                    "DATABASE_MAX_OVERFLOW": "0",
                    "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
                    "JOB_QUEUE_NAME": redis_queue,
                },
                logs["ours"],
            )
        )
        servers.append(
            start(
                [*uvicorn, "--port", str(ceiling_port), "bench.ceiling.app:app"],
                {
                    # Tenant traffic logs in as the app role, in the product and here.
                    "CEILING_DSN": sa.make_url(dsn)
                    .set(username="helpdesk_app")
                    .render_as_string(hide_password=False),
                    "CEILING_SECRET": secret,
                    "CEILING_POOL": "20",
                },
                logs["ceiling"],
            )
        )
        wait_ready(f"http://127.0.0.1:{ours_port}/readyz", servers[0], logs["ours"])
        wait_ready(f"http://127.0.0.1:{ceiling_port}/api/v1/tickets", servers[1], logs["ceiling"])
        rows: dict[str, dict[str, Measurement]] = {}
        retried: list[str] = []  # rounds run again (reported, never hidden)
        servers_by_name = (("ours", ours_port), ("ceiling", ceiling_port))
        for scenario in chosen:
            for _name, port in servers_by_name:
                url = f"http://127.0.0.1:{port}"
                run_wrk(
                    wrk, url, scenario, load_env, duration=2, connections=connections, threads=2
                )
            # The machine's speed drifts (shared cores): alternate short rounds so both
            # servers see the same conditions, instead of one long run each.
            rounds_of: dict[str, list[Measurement]] = {name: [] for name, _ in servers_by_name}
            for _round in range(rounds):
                for name, port in servers_by_name:
                    measured = run_wrk(
                        wrk,
                        f"http://127.0.0.1:{port}",
                        scenario,
                        load_env,
                        duration=max(1, duration // rounds),
                        connections=connections,
                        threads=2,
                        retried=retried,
                    )
                    if measured.requests == 0:
                        raise SystemExit(f"{name}: no request completed in {scenario}; is it up?")
                    rounds_of[name].append(measured)
            rows[scenario] = {name: combine(rounds_of[name]) for name, _ in servers_by_name}
            for name, measured in rows[scenario].items():
                console.print(
                    f"{scenario:>14} {name:>8}: {measured.requests_per_second:,.0f} req/s, "
                    f"p99 {measured.p99_ms:.1f} ms, errors {measured.errors}"
                )
        meta = {
            "organizations": organizations,
            "tickets_per_org": tickets,
            "total_tickets": organizations * tickets,
            "workers": workers,
            "connections": connections,
            "duration_s": duration,
            "rounds": rounds,
            "cpus": os.cpu_count(),
            "retried_rounds": retried,
        }
        table, markdown = report(rows, meta)
        console.print(table)
        RESULTS.mkdir(exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        payload = {
            "meta": meta,
            "results": {s: {k: asdict(v) for k, v in r.items()} for s, r in rows.items()},
        }
        (RESULTS / f"{stamp}.json").write_text(json.dumps(payload, indent=2))
        (RESULTS / f"{stamp}.md").write_text(markdown)
        (RESULTS / "latest.md").write_text(markdown)
        console.print(f"results: bench/results/{stamp}.json, .md")
    finally:
        for server in servers:
            stop(server)
        asyncio.run(forget_jobs(redis_queue))
        if not keep_database:
            asyncio.run(drop_database(dsn))
        else:
            console.print(f"database kept: {dsn}")


if __name__ == "__main__":
    cli()
