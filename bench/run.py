"""`make bench`: seed PostgreSQL, start the API the production way and the ceiling app
the same way, drive both with wrk, and report our / ceiling per scenario; measure some
of them again beside idle SLA timer workers; then the SLA timer scenario
(`bench.sla_timers`); then the outbound webhook scenario (`bench.outbound`).

    python -m bench.run [--organizations 100] [--tickets 10000] [--duration 15]
    python -m bench.run --only sla_timers     # the timers alone (~12 minutes here)
    python -m bench.run --only api            # the API scenarios, with and without timers
    python -m bench.run --only outbound       # webhook lag at 100 events/s, then a backlog

Results go to bench/results/<UTC time>.json and .md, and bench/results/latest.md."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
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

from bench import common, inbound, outbound, sla_timers
from bench import seed as seeding
from bench.common import (
    RESULTS,
    RUN_DIR,
    create_database,
    drop_database,
    forget_jobs,
    redis_url,
    start,
    stop,
)

ROOT = Path(__file__).resolve().parent
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
ONLY = ("all", "api", "sla_timers", "outbound")
console = Console()
cli = typer.Typer(add_completion=False, pretty_exceptions_enable=False)


@dataclass
class Measurement:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


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


def measure(
    chosen: list[str],
    servers_by_name: tuple[tuple[str, int], ...],
    wrk: str,
    load_env: dict[str, str],
    *,
    duration: int,
    rounds: int,
    connections: int,
    retried: list[str],
) -> dict[str, dict[str, Measurement]]:
    """Each scenario: a 2 s warm-up of each server, then alternating rounds."""
    rows: dict[str, dict[str, Measurement]] = {}
    for scenario in chosen:
        for _name, port in servers_by_name:
            url = f"http://127.0.0.1:{port}"
            run_wrk(wrk, url, scenario, load_env, duration=2, connections=connections, threads=2)
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
    return rows


async def _quiet_outbox(dsn: str) -> tuple[int, set[int]]:
    """Before idle workers start: stamp the events the API scenarios left undispatched
    (nothing relays them in the bench), or the workers' minute sweep would relay that
    backlog in the middle of a round. Returns how many, and the connections open now."""
    conn = await asyncpg.connect(dsn)
    try:
        status = await conn.execute(
            "UPDATE outbox_events SET dispatched_at = now() WHERE dispatched_at IS NULL"
        )
        return int(status.split()[-1]), await sla_timers.backends(conn, sla_timers.sa_database(dsn))
    finally:
        await conn.close()


async def _workers_connected(
    dsn: str, processes: list[subprocess.Popen[bytes]], logs: list[Path], before: set[int]
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await sla_timers.wait_connected(
            conn, sla_timers.sa_database(dsn), processes, logs, before=before
        )
    finally:
        await conn.close()


async def _relayed_since(dsn: str, since: datetime) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM outbox_events WHERE dispatched_at > $1", since
            )
        )
    finally:
        await conn.close()


def measure_with_timers(
    dsn: str,
    async_url: str,
    secret: str,
    timer_workers: int,
    run: Callable[[], dict[str, dict[str, Measurement]]],
) -> tuple[dict[str, dict[str, Measurement]], dict[str, Any]]:
    """`run` again while `timer_workers` `helpdesk worker` processes run their SLA timer
    loops on the API's database, idle (nothing seeded has a deadline; the API's tickets
    match no policy). The workers take jobs from a queue of their own, so that what
    changes is the timer loop, not who relays the API's outbox; their minute sweep still
    relays the events the rounds commit (counted in the result)."""
    stamped, before = asyncio.run(_quiet_outbox(dsn))
    queue = f"arq:bench-timers:{uuid.uuid4().hex}"
    processes, logs = sla_timers.start_workers(
        timer_workers, sla_timers.worker_env(async_url, secret, queue), "api-timers"
    )
    try:
        asyncio.run(_workers_connected(dsn, processes, logs, before))
        began = datetime.now(UTC)
        ready = [sla_timers.cpu_seconds(p.pid) for p in processes]
        rows = run()
        cpu = [
            round(sla_timers.cpu_seconds(p.pid) - c, 1)
            for p, c in zip(processes, ready, strict=True)
        ]
        relayed = asyncio.run(_relayed_since(dsn, began))
        for process, log in zip(processes, logs, strict=True):
            if process.poll() is not None:
                raise SystemExit(f"a worker exited: {log.read_text(errors='replace')[-3000:]}")
    finally:
        for process in processes:
            stop(process, timeout=30)
        asyncio.run(forget_jobs(queue))
    warnings = sla_timers.WorkerLogs(logs)
    warnings.read()
    return rows, {
        "timer_workers": timer_workers,
        "worker_cpu_s": cpu,
        "measured_s": round((datetime.now(UTC) - began).total_seconds(), 1),
        "outbox_stamped_before": stamped,
        "outbox_relayed_by_workers": relayed,
        "worker_warnings": len(warnings.warnings),
    }


def ratio(m: dict[str, Measurement]) -> float:
    ceiling = m["ceiling"].requests_per_second
    return m["ours"].requests_per_second / ceiling if ceiling else 0.0


def with_timers_markdown(
    without: dict[str, dict[str, Measurement]],
    with_: dict[str, dict[str, Measurement]],
    meta: dict[str, Any],
) -> str:
    header = [
        "scenario",
        "ours / ceiling without timers",
        "with timers",
        "ours req/s without",
        "with",
        "ours p99 ms without",
        "with",
        "ceiling req/s without",
        "with",
        "errors with (ours / ceiling)",
    ]
    lines = [
        f"### With the SLA timer loop running ({meta['timer_workers']} idle "
        "`helpdesk worker` processes)",
        "",
        "The same scenarios once more while the workers run their timer loops on the API's "
        'database with nothing due ("without": the run above, no worker). Worker CPU over '
        f"the {meta['measured_s']:.0f} s of measurement: "
        f"{' + '.join(str(c) for c in meta['worker_cpu_s'])} s; outbox "
        f"events their minute sweep relayed meanwhile: {meta['outbox_relayed_by_workers']:,} "
        f"({meta['outbox_stamped_before']:,} left by the earlier scenarios were stamped "
        "dispatched before they started).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for scenario, result in with_.items():
        before = without.get(scenario)
        cells = [
            scenario,
            f"{ratio(before):.2f}" if before else "-",
            f"{ratio(result):.2f}",
            f"{before['ours'].requests_per_second:,.0f}" if before else "-",
            f"{result['ours'].requests_per_second:,.0f}",
            f"{before['ours'].p99_ms:.1f}" if before else "-",
            f"{result['ours'].p99_ms:.1f}",
            f"{before['ceiling'].requests_per_second:,.0f}" if before else "-",
            f"{result['ceiling'].requests_per_second:,.0f}",
            f"{result['ours'].errors} / {result['ceiling'].errors}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_api(
    *,
    wrk: str,
    chosen: list[str],
    timer_scenarios: list[str],
    timer_workers: int,
    organizations: int,
    tickets: int,
    duration: int,
    connections: int,
    workers: int,
    rounds: int,
    keep_database: bool,
    inbound_scenario: bool,
    inbound_organizations: int,
) -> tuple[dict[str, Any], str, Table]:
    """The API scenarios, then `timer_scenarios` again with idle SLA timer workers, then
    (`inbound_scenario`) signed deliveries to channels of `inbound_organizations`
    organizations against our own create in them."""
    allowed, in_use = asyncio.run(common.connection_headroom())
    # Both apps' pools (20 per uvicorn worker) and the idle timer workers' few.
    needed = 2 * workers * 20 + 4 * timer_workers
    if allowed - in_use < needed:
        console.print(
            f"[yellow]PostgreSQL has {allowed - in_use} connections free ({in_use} in use by "
            f"others); the bench's pools take up to {needed}: expect errors[/yellow]"
        )
    dsn = asyncio.run(create_database())
    async_url = common.async_url(dsn)
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
        run_dir = RUN_DIR
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
                    "REDIS_URL": redis_url(),
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
        retried: list[str] = []  # rounds run again (reported, never hidden)
        servers_by_name = (("ours", ours_port), ("ceiling", ceiling_port))

        def measured(names: list[str]) -> dict[str, dict[str, Measurement]]:
            return measure(
                names,
                servers_by_name,
                wrk,
                load_env,
                duration=duration,
                rounds=rounds,
                connections=connections,
                retried=retried,
            )

        rows = measured(chosen)
        with_rows: dict[str, dict[str, Measurement]] = {}
        with_meta: dict[str, Any] = {}
        if timer_scenarios:
            console.print(f"again with {timer_workers} SLA timer workers running")
            with_rows, with_meta = measure_with_timers(
                dsn,
                async_url,
                secret,
                timer_workers,
                lambda: measured(timer_scenarios),
            )
        inbound_rows: dict[str, dict[str, Any]] = {}
        stored: dict[str, int] = {}
        if inbound_scenario:
            console.print("inbound deliveries against our own create")
            # Ours only from here: the ceiling's pool would leave PostgreSQL's 100
            # connections short for the scenario's own reads.
            stop(servers[1])
            inbound_rows, stored = measure_inbound(
                wrk,
                ours_port,
                dsn,
                async_url,
                secret,
                [organization.id for organization in orgs[:inbound_organizations]],
                load_env,
                duration=duration,
                rounds=rounds,
                connections=connections,
                retried=retried,
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
            "connections_in_use_by_others_at_start": in_use,
        }
        table, markdown = report(rows, meta)
        payload: dict[str, Any] = {
            "meta": meta,
            "results": {s: {k: asdict(v) for k, v in r.items()} for s, r in rows.items()},
        }
        if with_rows:
            payload["with_timers"] = {
                "meta": with_meta,
                "results": {s: {k: asdict(v) for k, v in r.items()} for s, r in with_rows.items()},
                "ratios": {
                    s: {"without": ratio(rows[s]) if s in rows else None, "with": ratio(r)}
                    for s, r in with_rows.items()
                },
            }
            markdown += "\n" + with_timers_markdown(rows, with_rows, with_meta)
        if inbound_rows:
            spread = min(inbound_organizations, organizations)
            payload["inbound"] = {
                "organizations": spread,
                "results": inbound_rows,
                "stored": stored,
                "ratios": inbound.ratios(inbound_rows),
            }
            markdown += "\n" + inbound.report(inbound_rows, stored, spread)
        return payload, markdown, table
    finally:
        for server in servers:
            stop(server)
        asyncio.run(forget_jobs(redis_queue))
        if not keep_database:
            asyncio.run(drop_database(dsn))
        else:
            console.print(f"database kept: {dsn}")


def measure_inbound(
    wrk: str,
    port: int,
    dsn: str,
    async_url: str,
    secret: str,
    organizations: list[uuid.UUID],
    load_env: dict[str, str],
    *,
    duration: int,
    rounds: int,
    connections: int,
    retried: list[str],
) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """Our create, new inbound messages and threaded replies spread over
    `organizations` (a channel and an agent's token of each), then creates and new
    messages within the first of them alone, in alternating rounds on our server (after a
    2 s warm-up each); each inbound round sends messages signed for it. Returns the
    measurements and how the stored deliveries ended. `load_env`'s token is the first
    organization's."""
    channels = asyncio.run(inbound.create_channels(async_url, secret, organizations))
    asyncio.run(inbound.seed_history(dsn, channels))
    accounts = RUN_DIR / "accounts.txt"
    accounts.write_text(
        "".join(
            "{}\t{}\n".format(*asyncio.run(mint_token(async_url, secret, organization)))
            for organization in organizations
        )
    )
    base = f"http://127.0.0.1:{port}"
    builders = {
        "inbound_new": inbound.new_messages(channels),
        "inbound_reply": inbound.reply_to(inbound.open_threads(base, channels)),
        "inbound_new_one_org": inbound.new_messages(channels[:1]),
    }
    creates = {"create": "create_spread", "create_one_org": "create"}
    deliveries = RUN_DIR / "inbound.txt"

    def run(name: str, seconds: int, retry: list[str] | None) -> Measurement:
        env, scenario = dict(load_env) | {"BENCH_ACCOUNTS": str(accounts)}, creates.get(name)
        if scenario is None:
            inbound.write_requests(deliveries, builders[name])
            env |= {"BENCH_INBOUND": str(deliveries)}
            scenario = "inbound"
        return run_wrk(
            wrk,
            base,
            scenario,
            env,
            duration=seconds,
            connections=connections,
            threads=2,
            retried=retry,
        )

    names = list(inbound.LABELS)
    for name in names:
        run(name, 2, None)
    rounds_of: dict[str, list[Measurement]] = {name: [] for name in names}
    for _round in range(rounds):
        for name in names:
            rounds_of[name].append(run(name, max(1, duration // rounds), retried))
    rows = {name: asdict(combine(measured)) for name, measured in rounds_of.items()}
    for name, row in rows.items():
        console.print(
            f"{name:>20}     ours: {row['requests_per_second']:,.0f} req/s, "
            f"p99 {row['p99_ms']:.1f} ms, errors {row['errors']}"
        )
    return rows, asyncio.run(inbound.outcomes(dsn, channels))


def _names(text: str, known: list[str], what: str) -> list[str]:
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = set(chosen) - set(known)
    if unknown:
        raise typer.BadParameter(f"unknown {what}: {', '.join(sorted(unknown))}")
    return chosen


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
    only: Annotated[
        str,
        typer.Option(
            help="all | api (the API scenarios, then --with-timers again beside idle SLA "
            "timer workers) | sla_timers (the timer scenario alone) | outbound (the "
            "outbound webhook scenario alone)."
        ),
    ] = "all",
    with_timers: Annotated[
        str,
        typer.Option(
            help="API scenarios measured once more while --timer-workers idle SLA timer "
            "workers run (empty: skip)."
        ),
    ] = "get,comment,create",
    timer_workers: Annotated[
        int, typer.Option(min=1, help="`helpdesk worker` processes (timers, and beside the API).")
    ] = 2,
    timer_tickets: Annotated[
        int, typer.Option(min=100, help="Tickets per sla_timers phase.")
    ] = 100_000,
    timer_organizations: Annotated[int, typer.Option(min=1)] = 100,
    timer_window: Annotated[
        float, typer.Option(min=1, help="Seconds the window phase's deadlines spread over.")
    ] = 120.0,
    timer_lead: Annotated[
        float | None,
        typer.Option(
            help="Seconds from the start of seeding to the workers' start (default: "
            "20 + tickets / 4000)."
        ),
    ] = None,
    timer_timeout: Annotated[
        float, typer.Option(min=1, help="Seconds a phase may take past its last deadline.")
    ] = 600.0,
    timer_phases: Annotated[str, typer.Option(help="window, overdue or both.")] = (
        "window,overdue"
    ),
    inbound_scenario: Annotated[
        bool,
        typer.Option(
            "--inbound/--no-inbound",
            help="With the API scenarios: signed channel deliveries against our create.",
        ),
    ] = True,
    inbound_organizations: Annotated[
        int,
        typer.Option(
            min=1, help="Organizations the inbound scenario spreads over, one channel each."
        ),
    ] = 10,
    outbound_organizations: Annotated[
        int, typer.Option(min=1, help="Organizations, one webhook subscription each.")
    ] = 10,
    outbound_rate: Annotated[
        float, typer.Option(min=1, help="Events per second the lag phase creates.")
    ] = 100.0,
    outbound_duration: Annotated[
        float, typer.Option(min=1, help="Seconds the lag phase creates events for.")
    ] = 60.0,
    outbound_warmup: Annotated[
        float, typer.Option(min=0.1, help="Seconds of creates before the lag phase's, unmeasured.")
    ] = 3.0,
    outbound_backlog: Annotated[
        int, typer.Option(min=1, help="Events committed before the throughput phase's workers.")
    ] = 20_000,
    outbound_workers: Annotated[
        int, typer.Option(min=1, help="`helpdesk worker` processes per outbound phase.")
    ] = 2,
    outbound_timeout: Annotated[
        float,
        typer.Option(
            min=1,
            help="Seconds a phase's events may take to arrive (after the lag phase's last "
            "create; after the throughput phase's workers start).",
        ),
    ] = 900.0,
    outbound_phases: Annotated[str, typer.Option(help="lag, throughput or both.")] = (
        "lag,throughput"
    ),
) -> None:
    if only not in ONLY:
        raise typer.BadParameter(f"--only is one of {', '.join(ONLY)}")
    chosen = _names(scenarios, SCENARIOS, "scenarios")
    timer_scenarios = _names(with_timers, SCENARIOS, "scenarios")
    phases = tuple(_names(timer_phases, list(sla_timers.PHASES), "timer phases"))
    webhook_phases = tuple(_names(outbound_phases, list(outbound.PHASES), "outbound phases"))
    payload: dict[str, Any] = {}
    markdown = ""
    if only in ("all", "api"):
        wrk = ensure_wrk()
        payload, markdown, table = run_api(
            wrk=wrk,
            chosen=chosen,
            timer_scenarios=timer_scenarios,
            timer_workers=timer_workers,
            organizations=organizations,
            tickets=tickets,
            duration=duration,
            connections=connections,
            workers=workers,
            rounds=rounds,
            keep_database=keep_database,
            inbound_scenario=inbound_scenario,
            inbound_organizations=inbound_organizations,
        )
        console.print(table)
    if only in ("all", "sla_timers"):
        timers = asyncio.run(
            sla_timers.scenario(
                organizations=timer_organizations,
                tickets=timer_tickets,
                workers=timer_workers,
                window=timer_window,
                lead=timer_lead,
                patience=timer_timeout,
                phases=phases,
                keep_database=keep_database,
            )
        )
        payload["sla_timers"] = timers
        markdown += ("\n" if markdown else "") + sla_timers.markdown(timers)
    if only in ("all", "outbound"):
        webhooks = asyncio.run(
            outbound.scenario(
                organizations=outbound_organizations,
                rate=outbound_rate,
                duration=outbound_duration,
                warmup=outbound_warmup,
                backlog=outbound_backlog,
                workers=outbound_workers,
                patience=outbound_timeout,
                phases=webhook_phases,
                keep_database=keep_database,
            )
        )
        payload["outbound"] = webhooks
        markdown += ("\n" if markdown else "") + outbound.markdown(webhooks)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(payload, indent=2))
    (RESULTS / f"{stamp}.md").write_text(markdown)
    (RESULTS / "latest.md").write_text(markdown)
    console.print(markdown, markup=False, highlight=False)
    console.print(f"results: bench/results/{stamp}.json, .md")


if __name__ == "__main__":
    cli()
