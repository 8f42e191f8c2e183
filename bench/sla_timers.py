"""The `sla_timers` scenario: SLA breaches flagged by real `helpdesk worker` processes.

Two phases, in a database of their own (`python -m bench.run --only sla_timers`):

* **window**: open tickets whose first-response breach falls evenly within
  [start + 20 s, start + 140 s], `start` being the moment the workers are started.
  Reported: the breach lag (each `sla_breach` log line's `late_seconds`, the commit that
  flagged it minus its due time) p50/p99/max against the 1 s target, and breaches per
  second.
* **overdue**: as many tickets again, all already overdue when the workers start;
  reported: breaches per second until every one is flagged.

Each phase then checks the database: every ticket has exactly one `breach` event, one
`ticket.sla_breached` outbox row and one `sla_breach` history row (none twice, none
missed), is marked breached, and has no deadline left due.

The tickets are seeded with COPY (`bench.seed.seed_sla_tickets`) and checked against the
product's own code before the workers start: a sample is replayed by the real clock
(`Clock(log).summarize(policy)`, the log and the policy read through the repositories
the workers use, as the app role), and one ticket opened by
`app.tickets.service.open_ticket` is compared row by row with a seeded one.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import secrets
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy as sa
from rich.console import Console

from bench import seed as seeding
from bench.common import (
    RUN_DIR,
    async_url,
    create_database,
    drop_database,
    forget_jobs,
    redis_url,
    start,
    stop,
)

console = Console()
PHASES = ("window", "overdue")
TARGET_P99_SECONDS = 1.0
WINDOW_OFFSET_SECONDS = 20.0  # the first deadline falls this long after the start
FIRST_RESPONSE_MINUTES = 60
RESOLUTION_MINUTES = 7 * 24 * 60  # far beyond the run: the first response is what breaches
OVERDUE_MINUTES = (1.0, 11.0)  # the overdue phase's breaches fell this long ago
CHECKED_SAMPLE = 300  # seeded tickets replayed by the real clock, per phase
SETTLE_SECONDS = 3.0  # after the last breach: a second flag of one would show by then
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Lag:
    p50_s: float
    p99_s: float
    max_s: float
    mean_s: float
    over_target: int  # breaches flagged more than TARGET_P99_SECONDS late


@dataclass
class Phase:
    name: str
    tickets: int
    organizations: int
    workers: int
    seed_seconds: float
    # window: the first deadline fell this long after the workers were started
    # (overdue: the latest deadline fell this long before, a negative number).
    first_due_after_start_s: float
    window_s: float | None
    flagged: int  # tickets with a breach event
    missed: int  # tickets without one
    duplicate_events: int  # tickets with more than one breach event
    duplicate_outbox: int  # tickets with more than one `ticket.sla_breached` event
    duplicate_history: int  # tickets with more than one `sla_breach` history row
    duplicate_log_lines: int  # tickets logged as breached more than once
    missing_outbox: int
    not_marked: int  # tickets not showing sla_breach / sla_status breached
    still_due: int  # tickets whose next deadline is still due
    log_lines: int
    lag: Lag | None  # from the logs: commit - due
    flag_lag: Lag | None  # from the log rows' details: the worker's `now` - due
    breaches_per_second: float  # first commit to last
    drain_s: float  # workers started to last commit
    offered_per_second: float | None  # the window's rate of deadlines
    batches: int
    mean_batch: float
    # Every transaction the phase's database committed or rolled back meanwhile: the
    # batches above, claims that found nothing, outbox relays, the loops' queue reads.
    transactions: int
    per_worker: list[int] = field(default_factory=list)  # breaches each worker flagged
    worker_cpu_s: list[float] = field(default_factory=list)  # from ready to stopped
    postgres_cpu_s: float = 0.0  # every PostgreSQL process, other databases' too
    machine_busy: float = 0.0  # share of the machine's CPU time in use, all processes
    # CPU seconds of everything else meanwhile: this bench process reading the logs, and
    # whatever else runs on the machine (other people's tests on a shared one).
    others_cpu_s: float = 0.0
    observed_s: float = 0.0  # workers started to workers stopped
    warnings: int = 0  # warning and error lines of the workers
    first_warnings: list[str] = field(default_factory=list)
    timed_out: bool = False


# --- reading the workers ---------------------------------------------------------------


class WorkerLogs:
    """The workers' JSON log lines, read as they are written."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths
        self.offsets = [0] * len(paths)
        self.partial = [b""] * len(paths)
        self.breaches: list[tuple[int, dict[str, Any]]] = []  # (worker, line)
        self.tickets: set[str] = set()
        self.warnings: list[str] = []

    def read(self) -> None:
        for index, path in enumerate(self.paths):
            if not path.exists():
                continue
            with path.open("rb") as handle:
                handle.seek(self.offsets[index])
                chunk = handle.read()
            self.offsets[index] += len(chunk)
            lines = (self.partial[index] + chunk).split(b"\n")
            self.partial[index] = lines.pop()
            for raw in lines:
                self._line(index, raw.decode(errors="replace"))

    def _line(self, worker: int, text: str) -> None:
        if not text.startswith("{"):
            if text.strip() and ("Error" in text or "Traceback" in text or "WARNING" in text):
                self.warnings.append(text[:300])
            return
        try:
            line = json.loads(text)
        except ValueError:
            self.warnings.append(text[:300])
            return
        if line.get("event") == "sla_breach":
            self.breaches.append((worker, line))
            self.tickets.add(line["ticket_id"])
        elif line.get("level") in ("warning", "error", "critical"):
            self.warnings.append(text[:300])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (its own, and that of children it waited for)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    # utime, stime, cutime, cstime: fields 14-17 of stat(5), 12-15 after the name.
    return sum(int(v) for v in fields[11:15]) / CLOCK_TICKS


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of every process named postgres (the postmaster's includes the
    backends that exited)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found[int(entry.name)] = cpu_seconds(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
    return found


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


def quantile(ordered: list[float], q: float) -> float:
    """Nearest rank."""
    if not ordered:
        return 0.0
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def lag_of(values: list[float]) -> Lag | None:
    if not values:
        return None
    ordered = sorted(values)
    return Lag(
        p50_s=quantile(ordered, 0.5),
        p99_s=quantile(ordered, 0.99),
        max_s=ordered[-1],
        mean_s=sum(ordered) / len(ordered),
        over_target=sum(1 for v in ordered if v > TARGET_P99_SECONDS),
    )


# --- the workers ---------------------------------------------------------------------------


def worker_command() -> list[str]:
    """`helpdesk worker`, the console script of the venv running the bench."""
    script = Path(sys.executable).with_name("helpdesk")
    return (
        [str(script), "worker"] if script.exists() else [sys.executable, "-m", "app.cli", "worker"]
    )


def worker_env(database_url: str, secret: str, queue: str) -> dict[str, str]:
    """What production gives a worker: the API's database and Redis, JSON logs."""
    return {
        "DATABASE_URL": database_url,
        "SECRET_KEY": secret,
        "ENVIRONMENT": "production",
        "LOG_JSON": "true",
        "LOG_LEVEL": "INFO",
        "REDIS_URL": redis_url(),
        "JOB_QUEUE_NAME": queue,
    }


def start_workers(count: int, env: dict[str, str], name: str) -> tuple[list[Any], list[Path]]:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    logs = [RUN_DIR / f"{name}-worker-{i}.log" for i in range(count)]
    return [start(worker_command(), env, log) for log in logs], logs


async def transactions(conn: asyncpg.Connection, database: str) -> int:
    """Transactions `database` has ended so far (PostgreSQL's statistics: they lag by up
    to half a second)."""
    return int(
        await conn.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1",
            database,
        )
    )


async def backends(conn: asyncpg.Connection, database: str) -> set[int]:
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        database,
    )
    return {row["pid"] for row in rows}


async def wait_connected(
    conn: asyncpg.Connection,
    database: str,
    processes: list[Any],
    logs: list[Path],
    *,
    before: set[int],
    patience: float = 60,
) -> None:
    """Until every worker holds a connection of its own to `database` (its timer loop
    made its first pass); `before`: the connections other processes held already."""
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        for process, log in zip(processes, logs, strict=True):
            if process.poll() is not None:
                raise SystemExit(f"a worker exited: {log.read_text(errors='replace')[-3000:]}")
        if len(await backends(conn, database) - before) >= len(processes):
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"the workers did not connect to {database} within {patience} s")


# --- checks against the product's code -----------------------------------------------------


async def check_replay(
    database_url: str,
    secret: str,
    conn: asyncpg.Connection,
    made: list[tuple[uuid.UUID, uuid.UUID]],
    rng: random.Random,
) -> int:
    """Seeded tickets, replayed by the real clock from what the workers read: the log and
    the policy through the repositories, in a tenant unit of work (the app role, under
    row-level security). The next deadline, the due fields and the status must be the
    row's; the breach is due at the row's deadline and not a microsecond earlier."""
    from app.config import Settings
    from app.db.database import Database
    from app.models.ticket import TicketStatus
    from app.sla import service as sla
    from app.sla.clock import Clock, EventKind, Target
    from app.sla.repository import SLARepository

    picked = rng.sample(made, min(CHECKED_SAMPLE, len(made)))
    rows = {
        row["id"]: row
        for row in await conn.fetch(
            "SELECT * FROM tickets WHERE id = ANY($1::uuid[])", [t for _o, t in picked]
        )
    }
    by_org: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for org_id, ticket_id in picked:
        by_org[org_id].append(ticket_id)
    settings = Settings(database_url=database_url, secret_key=secret, _env_file=None)
    database = Database(settings)
    problems: list[str] = []
    try:
        for org_id, ids in by_org.items():
            uow = database.tenant_unit(org_id)
            try:
                logs = await SLARepository(uow.session).logs(ids)
                measures = sla.Measures(uow.session)
                for ticket_id in ids:
                    row = rows[ticket_id]
                    policy = await measures.get(row["sla_policy_id"])
                    if policy is None:
                        problems.append(f"{ticket_id}: policy not readable as the tenant")
                        continue
                    clock = Clock(logs[ticket_id])
                    if clock.summarize(policy).next_deadline != row["sla_next_deadline"]:
                        problems.append(f"{ticket_id}: next deadline differs")
                    values = sla.derived_values(
                        clock, row["sla_policy_id"], policy, TicketStatus(row["status"])
                    )
                    for name, value in values.items():
                        if (str(value) if value is not None else None) != (
                            str(row[name]) if row[name] is not None else None
                        ):
                            problems.append(f"{ticket_id}: {name} {row[name]!r} != {value!r}")
                    due = row["first_response_due_at"]
                    at_due = sla.due_deadlines(clock, policy, due)
                    before = sla.due_deadlines(clock, policy, due - timedelta(microseconds=1))
                    if [(d.kind, d.target, d.cycle) for d in at_due] != [
                        (EventKind.BREACH, Target.FIRST_RESPONSE, 0)
                    ] or before:
                        problems.append(f"{ticket_id}: not exactly one breach due at {due}")
            finally:
                await uow.close()
    finally:
        await database.dispose()
    if problems:
        raise SystemExit(
            "seeded tickets differ from the clock's replay:\n" + "\n".join(problems[:20])
        )
    return len(picked)


async def check_like_open_ticket(
    database_url: str,
    secret: str,
    conn: asyncpg.Connection,
    org: seeding.SLAOrg,
    seeded: uuid.UUID,
) -> None:
    """One ticket opened by `open_ticket` in `org` next to a seeded one of it: the same
    row (instants as offsets from `created_at`), log, history, feed and event. The probe
    is deleted afterwards (its number stays taken, as a rolled-back create's would)."""
    from app.config import Settings
    from app.db.database import Database
    from app.tickets.service import open_ticket

    settings = Settings(database_url=database_url, secret_key=secret, _env_file=None)
    database = Database(settings)
    customer = await conn.fetchval("SELECT customer_id FROM tickets WHERE id = $1", seeded)
    try:
        uow = database.tenant_unit(org.id)
        try:
            probe = (
                await open_ticket(
                    uow,
                    subject="Parity probe",
                    description="Reported by the customer through the portal.",
                    customer_id=customer,
                    created_by_id=customer,
                )
            )["id"]
            await uow.commit()
        finally:
            await uow.close()
    finally:
        await database.dispose()
    try:
        problems = await _compare(conn, probe, seeded)
    finally:
        await conn.execute("DELETE FROM outbox_events WHERE aggregate_id = $1", probe)
        await conn.execute("DELETE FROM tickets WHERE id = $1", probe)
    if problems:
        raise SystemExit("seeded tickets differ from open_ticket's:\n" + "\n".join(problems))


async def _compare(conn: asyncpg.Connection, probe: uuid.UUID, seeded: uuid.UUID) -> list[str]:
    columns = [
        row["column_name"]
        for row in await conn.fetch(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'tickets' AND is_generated = 'NEVER' "
            "AND data_type NOT IN ('tsvector') ORDER BY ordinal_position"
        )
    ]
    differ = {"id", "ticket_number", "subject", "customer_id", "created_by_id"}
    listed = ", ".join(f'"{c}"' for c in columns)
    ours = await conn.fetchrow(f"SELECT {listed} FROM tickets WHERE id = $1", probe)
    theirs = await conn.fetchrow(f"SELECT {listed} FROM tickets WHERE id = $1", seeded)
    problems = []

    def shape(row: asyncpg.Record, name: str) -> Any:
        value = row[name]
        if isinstance(value, datetime) and name != "created_at":
            return round((value - row["created_at"]).total_seconds())
        return value

    for name in columns:
        if name in differ or name == "created_at":
            continue
        if shape(ours, name) != shape(theirs, name):
            problems.append(f"tickets.{name}: open_ticket {ours[name]!r}, seeded {theirs[name]!r}")
    queries = {
        "ticket_sla_events": "SELECT kind, target, cycle, "
        "round(extract(epoch FROM at - t.created_at)) AS at, at_percent, action, done_key, "
        "details FROM ticket_sla_events e "
        "JOIN tickets t ON t.id = e.ticket_id WHERE e.ticket_id = $1 ORDER BY e.at, e.id",
        "ticket_history": "SELECT h.field, h.old_value, h.new_value = t.ticket_number AS number, "
        "h.user_id = t.created_by_id AS by_creator FROM ticket_history h "
        "JOIN tickets t ON t.id = h.ticket_id WHERE h.ticket_id = $1",
        "ticket_changes": "SELECT change, xact_id IS NOT NULL AS stamped FROM ticket_changes "
        "WHERE ticket_id = $1",
        "outbox_events": "SELECT event_type, aggregate_type, "
        "payload = jsonb_build_object('id', t.id::text, 'ticket_number', t.ticket_number) "
        "AS payload FROM outbox_events o JOIN tickets t ON t.id = o.aggregate_id "
        "WHERE o.aggregate_id = $1",
    }
    for table, query in queries.items():
        got = [tuple(r) for r in await conn.fetch(query, probe)]
        seeded_rows = [tuple(r) for r in await conn.fetch(query, seeded)]
        if got != seeded_rows:
            problems.append(f"{table}: open_ticket {got}, seeded {seeded_rows}")
    return problems


# --- one phase -------------------------------------------------------------------------------


async def verify(
    conn: asyncpg.Connection, ids: list[uuid.UUID]
) -> tuple[dict[str, int], list[float]]:
    """What the database holds for the phase's tickets: counts, and the lateness each
    breach's log row records."""
    await conn.execute("DROP TABLE IF EXISTS bench_phase")
    await conn.execute("CREATE TEMP TABLE bench_phase (id uuid PRIMARY KEY)")
    await conn.copy_records_to_table("bench_phase", records=[(i,) for i in ids])
    await conn.execute("ANALYZE bench_phase")
    found: dict[str, int] = {}
    for name, query in (
        (
            "events",
            "SELECT ticket_id AS id, count(*) AS n FROM ticket_sla_events "
            "WHERE kind = 'breach' AND ticket_id IN (SELECT id FROM bench_phase) "
            "GROUP BY ticket_id",
        ),
        (
            "outbox",
            "SELECT aggregate_id AS id, count(*) AS n FROM outbox_events "
            "WHERE event_type = 'ticket.sla_breached' "
            "AND aggregate_id IN (SELECT id FROM bench_phase) GROUP BY aggregate_id",
        ),
        (
            "history",
            "SELECT ticket_id AS id, count(*) AS n FROM ticket_history "
            "WHERE field = 'sla_breach' AND ticket_id IN (SELECT id FROM bench_phase) "
            "GROUP BY ticket_id",
        ),
    ):
        row = await conn.fetchrow(
            f"SELECT count(*) AS any, count(*) FILTER (WHERE n > 1) AS twice FROM ({query}) c"
        )
        found[f"{name}_flagged"] = row["any"]
        found[f"{name}_twice"] = row["twice"]
    row = await conn.fetchrow(
        "SELECT count(*) FILTER (WHERE NOT (sla_breach AND sla_status = 'breached')) "
        "AS not_marked, count(*) FILTER (WHERE sla_next_deadline <= now()) AS still_due "
        "FROM tickets WHERE id IN (SELECT id FROM bench_phase)"
    )
    found |= dict(row)
    lags = await conn.fetch(
        "SELECT (details->>'late_seconds')::float AS late FROM ticket_sla_events "
        "WHERE kind = 'breach' AND ticket_id IN (SELECT id FROM bench_phase)"
    )
    return found, [r["late"] for r in lags]


def batches(breaches: list[tuple[int, dict[str, Any]]]) -> int:
    """Commits that flagged something: breaches of one worker and organization whose
    commit instants (due + late) lie within 5 ms of each other."""
    commits = sorted(
        (worker, line["organization_id"], committed(line)) for worker, line in breaches
    )
    count, previous = 0, None
    for worker, org, at in commits:
        if previous is None or previous[:2] != (worker, org) or at - previous[2] > 0.005:
            count += 1
        previous = (worker, org, at)
    return count


def committed(line: dict[str, Any]) -> float:
    return datetime.fromisoformat(line["due_at"]).timestamp() + float(line["late_seconds"])


def deadlines(tickets: int, window: float | None, began: float, lead: float) -> list[datetime]:
    """window: evenly over [start + 20 s, start + 20 s + window], start = `began` +
    `lead`; overdue (`window` None): evenly over the minutes OVERDUE_MINUTES ago."""
    if window is not None:
        first = began + lead + WINDOW_OFFSET_SECONDS
        return [datetime.fromtimestamp(first + window * i / tickets, UTC) for i in range(tickets)]
    newest, oldest = OVERDUE_MINUTES
    span = (oldest - newest) * 60
    return [
        datetime.fromtimestamp(began - oldest * 60 + span * i / tickets, UTC)
        for i in range(tickets)
    ]


async def seed_phase(
    conn: asyncpg.Connection,
    *,
    name: str,
    orgs: list[seeding.SLAOrg],
    due: list[datetime],
    rng: random.Random,
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    console.print(f"sla_timers/{name}: seeding {len(due):,} tickets")
    await conn.execute("SET synchronous_commit = off")
    made = await seeding.seed_sla_tickets(
        conn,
        orgs,
        due,
        first_response_minutes=FIRST_RESPONSE_MINUTES,
        resolution_minutes=RESOLUTION_MINUTES,
        subject=f"SLA bench {name}",
        rng=rng,
    )
    await conn.execute("RESET synchronous_commit")
    await conn.execute("ANALYZE")
    return made


async def watch(
    name: str,
    processes: list[Any],
    logs: WorkerLogs,
    tickets: int,
    until: float,
) -> bool:
    """Until the logs show every ticket flagged; False when `until` (a Unix time) came
    first."""
    shown = time.monotonic()
    while len(logs.tickets) < tickets:
        if time.time() > until:
            return False
        for process, path in zip(processes, logs.paths, strict=True):
            if process.poll() is not None:
                raise SystemExit(f"a worker exited: {path.read_text(errors='replace')[-3000:]}")
        await asyncio.sleep(0.5)
        logs.read()
        if time.monotonic() - shown > 10:
            shown = time.monotonic()
            console.print(f"sla_timers/{name}: {len(logs.tickets):,} of {tickets:,} flagged")
    return True


@dataclass
class Observed:
    """What a phase's run left: the logs, the workers' and the machine's CPU."""

    logs: WorkerLogs
    started: float
    timed_out: bool
    worker_cpu: list[float]
    worker_total_cpu: float
    postgres_cpu: float
    machine_busy: float
    machine_cpu: float
    seconds: float
    transactions: int


async def run_workers(
    conn: asyncpg.Connection,
    *,
    name: str,
    database_url: str,
    secret: str,
    workers: int,
    tickets: int,
    first_due: float,
    until: float,
    window: bool,
) -> Observed:
    """Start the workers, wait until every breach is logged (or `until`), stop them."""
    database = sa_database(database_url)
    queue = f"arq:bench-sla:{uuid.uuid4().hex}"
    before = await backends(conn, database)
    pg_before, machine_before = postgres_cpu(), machine_cpu()
    xacts_before = await transactions(conn, database)
    started = time.time()
    processes, paths = start_workers(
        workers, worker_env(database_url, secret, queue), f"sla-{name}"
    )
    logs = WorkerLogs(paths)
    try:
        await wait_connected(conn, database, processes, paths, before=before)
        ready = time.time()
        cpu_ready = [cpu_seconds(p.pid) for p in processes]
        console.print(
            f"sla_timers/{name}: {workers} workers ready {ready - started:.1f} s after start; "
            f"first deadline {first_due - started:+.1f} s from start"
        )
        if window and first_due - ready < 2:
            raise SystemExit(
                "the workers were ready less than 2 s before the first deadline: raise --timer-lead"
            )
        finished = await watch(name, processes, logs, tickets, until)
        await asyncio.sleep(SETTLE_SECONDS)
        worker_total = [cpu_seconds(p.pid) for p in processes]  # start-up included
        worker_cpu = [t - c for t, c in zip(worker_total, cpu_ready, strict=True)]
    finally:
        for process in processes:
            stop(process, timeout=30)
        await forget_jobs(queue)
    pg_after, machine_after = postgres_cpu(), machine_cpu()
    ended = time.time()
    await asyncio.sleep(1)  # the statistics collector's delay
    xacts = await transactions(conn, database) - xacts_before
    logs.read()
    busy = machine_after[0] - machine_before[0]
    total = machine_after[1] - machine_before[1]
    return Observed(
        logs=logs,
        started=started,
        timed_out=not finished,
        worker_cpu=worker_cpu,
        worker_total_cpu=sum(worker_total),
        postgres_cpu=sum(v - pg_before.get(pid, 0.0) for pid, v in pg_after.items()),
        machine_busy=busy / total if total else 0.0,
        machine_cpu=busy / CLOCK_TICKS,
        seconds=ended - started,
        transactions=xacts,
    )


def sa_database(url: str) -> str:
    return str(sa.make_url(url).database)


async def run_phase(
    *,
    name: str,
    dsn: str,
    secret: str,
    orgs: list[seeding.SLAOrg],
    tickets: int,
    workers: int,
    window: float | None,
    lead: float,
    patience: float,
    rng: random.Random,
    check_open_ticket: bool,
) -> Phase:
    """Seed the phase's tickets, check them, run the workers until every breach is
    flagged (or `patience` past the last deadline), check the database, read the logs."""
    url = async_url(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        began = time.time()
        due = deadlines(tickets, window, began, lead)
        made = await seed_phase(conn, name=name, orgs=orgs, due=due, rng=rng)
        seed_seconds = time.time() - began
        checked = await check_replay(url, secret, conn, made, rng)
        note = ""
        if check_open_ticket:
            await check_like_open_ticket(url, secret, conn, orgs[0], made[0][1])
            note = "; one opened by open_ticket matches a seeded one"
        console.print(
            f"sla_timers/{name}: seeded in {seed_seconds:.1f} s; {checked} seeded tickets "
            f"replay as the clock does{note}"
        )
        if window is not None:
            await asyncio.sleep(max(0.0, began + lead - time.time()))
        observed = await run_workers(
            conn,
            name=name,
            database_url=url,
            secret=secret,
            workers=workers,
            tickets=tickets,
            first_due=due[0].timestamp(),
            until=(due[-1].timestamp() if window is not None else time.time()) + patience,
            window=window is not None,
        )
        found, flag_lags = await verify(conn, [t for _o, t in made])
    finally:
        await conn.close()
    return outcome(
        name=name,
        orgs=orgs,
        tickets=tickets,
        workers=workers,
        window=window,
        due=due,
        seed_seconds=seed_seconds,
        observed=observed,
        found=found,
        flag_lags=flag_lags,
    )


def outcome(
    *,
    name: str,
    orgs: list[seeding.SLAOrg],
    tickets: int,
    workers: int,
    window: float | None,
    due: list[datetime],
    seed_seconds: float,
    observed: Observed,
    found: dict[str, int],
    flag_lags: list[float],
) -> Phase:
    breaches = observed.logs.breaches
    lates = [float(line["late_seconds"]) for _w, line in breaches]
    commits = [committed(line) for _w, line in breaches]
    per_ticket: dict[str, int] = defaultdict(int)
    per_worker = [0] * workers
    for worker, line in breaches:
        per_ticket[line["ticket_id"]] += 1
        per_worker[worker] += 1
    started = observed.started
    first_commit, last_commit = (min(commits), max(commits)) if commits else (started, started)
    count = batches(breaches)
    return Phase(
        name=name,
        tickets=tickets,
        organizations=len(orgs),
        workers=workers,
        seed_seconds=round(seed_seconds, 1),
        first_due_after_start_s=round(
            (due[0] if window is not None else due[-1]).timestamp() - started, 1
        ),
        window_s=window,
        flagged=found["events_flagged"],
        missed=tickets - found["events_flagged"],
        duplicate_events=found["events_twice"],
        duplicate_outbox=found["outbox_twice"],
        duplicate_history=found["history_twice"],
        duplicate_log_lines=sum(1 for n in per_ticket.values() if n > 1),
        missing_outbox=tickets - found["outbox_flagged"],
        not_marked=found["not_marked"],
        still_due=found["still_due"],
        log_lines=len(breaches),
        lag=lag_of(lates),
        flag_lag=lag_of(flag_lags),
        breaches_per_second=round(len(commits) / max(1e-9, last_commit - first_commit), 1),
        drain_s=round(last_commit - started, 2),
        offered_per_second=round(tickets / window, 1) if window else None,
        batches=count,
        mean_batch=round(len(commits) / count, 1) if count else 0.0,
        transactions=observed.transactions,
        per_worker=per_worker,
        worker_cpu_s=[round(c, 1) for c in observed.worker_cpu],
        postgres_cpu_s=round(observed.postgres_cpu, 1),
        machine_busy=round(observed.machine_busy, 2),
        others_cpu_s=round(
            observed.machine_cpu - observed.worker_total_cpu - observed.postgres_cpu, 1
        ),
        observed_s=round(observed.seconds, 1),
        warnings=len(observed.logs.warnings),
        first_warnings=observed.logs.warnings[:5],
        timed_out=observed.timed_out,
    )


# --- the scenario ----------------------------------------------------------------------------


async def scenario(
    *,
    organizations: int,
    tickets: int,
    workers: int,
    window: float,
    lead: float | None,
    patience: float,
    phases: tuple[str, ...] = PHASES,
    keep_database: bool = False,
) -> dict[str, Any]:
    from app.auth.passwords import _hasher
    from app.cli import upgrade_database

    dsn = await create_database()
    secret = secrets.token_urlsafe(48)
    rng = random.Random(11)
    results: list[Phase] = []
    try:
        await asyncio.to_thread(upgrade_database, "head", async_url(dsn))
        conn = await asyncpg.connect(dsn)
        try:
            orgs = await seeding.seed_sla_organizations(
                conn,
                organizations,
                password_hash=_hasher().hash("bench-password-123"),
                first_response_minutes=FIRST_RESPONSE_MINUTES,
                resolution_minutes=RESOLUTION_MINUTES,
            )
        finally:
            await conn.close()
        for index, name in enumerate(phases):
            phase = await run_phase(
                name=name,
                dsn=dsn,
                secret=secret,
                orgs=orgs,
                tickets=tickets,
                workers=workers,
                window=window if name == "window" else None,
                # Seeding runs at ~10,000 tickets a second here; the rest is checks.
                lead=lead if lead is not None else 20 + tickets / 4000,
                patience=patience,
                rng=rng,
                check_open_ticket=index == 0,
            )
            results.append(phase)
            console.print(summary_line(phase))
    finally:
        if keep_database:
            console.print(f"database kept: {dsn}")
        else:
            await drop_database(dsn)
    return {
        "meta": {
            "organizations": organizations,
            "tickets_per_phase": tickets,
            "workers": workers,
            "window_s": window,
            "window_offset_s": WINDOW_OFFSET_SECONDS,
            "first_response_minutes": FIRST_RESPONSE_MINUTES,
            "target_p99_s": TARGET_P99_SECONDS,
            "cpus": os.cpu_count(),
        },
        "phases": {phase.name: asdict(phase) for phase in results},
    }


def summary_line(phase: Phase) -> str:
    lag = (
        f"lag p50 {phase.lag.p50_s:.3f} s, p99 {phase.lag.p99_s:.3f} s, "
        f"max {phase.lag.max_s:.3f} s; "
        if phase.lag
        else ""
    )
    return (
        f"sla_timers/{phase.name}: {phase.flagged:,} of {phase.tickets:,} flagged, "
        f"missed {phase.missed}, twice {phase.duplicate_events}; {lag}"
        f"{phase.breaches_per_second:,.0f} breaches/s"
    )


def markdown(result: dict[str, Any]) -> str:
    """The timers' section of a run's markdown."""
    meta = result["meta"]
    lines = [
        "### SLA timers",
        "",
        f"{meta['tickets_per_phase']:,} tickets per phase in {meta['organizations']} "
        f"organizations (24/7 policy, {meta['first_response_minutes']}-minute first "
        f"response), {meta['workers']} `helpdesk worker` processes, {meta['cpus']} cores. "
        f"window: deadlines spread evenly over [start + {meta['window_offset_s']:.0f} s, "
        f"start + {meta['window_offset_s'] + meta['window_s']:.0f} s]; overdue: every "
        "deadline already past when the workers start. Lag = the commit that flagged the "
        f"breach - its due time (the workers' `sla_breach` log lines); target p99 <= "
        f"{meta['target_p99_s']:.0f} s.",
        "",
    ]
    header = [
        "phase",
        "flagged",
        "missed",
        "twice (events / outbox / history / log)",
        "lag p50 s",
        "lag p99 s",
        "lag max s",
        "> 1 s",
        "p99 <= 1 s",
        "breaches/s",
        "drain s",
        "mean batch",
        "CPU s: workers / PostgreSQL / rest of machine",
        "machine busy",
    ]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for phase in result["phases"].values():
        # Overdue breaches are minutes late by construction: their lag says nothing.
        lag = phase["lag"] if phase["name"] == "window" else None
        rate = f"{phase['breaches_per_second']:,.0f}"
        if phase["offered_per_second"]:
            rate += f" (deadlines at {phase['offered_per_second']:,.0f}/s)"
        cells = [
            phase["name"],
            f"{phase['flagged']:,} / {phase['tickets']:,}",
            str(phase["missed"]),
            " / ".join(
                str(phase[k])
                for k in (
                    "duplicate_events",
                    "duplicate_outbox",
                    "duplicate_history",
                    "duplicate_log_lines",
                )
            ),
            f"{lag['p50_s']:.3f}" if lag else "-",
            f"{lag['p99_s']:.3f}" if lag else "-",
            f"{lag['max_s']:.3f}" if lag else "-",
            f"{lag['over_target']:,}" if lag else "-",
            ("yes" if lag["p99_s"] <= meta["target_p99_s"] else "**no**") if lag else "-",
            rate,
            f"{phase['drain_s']:.1f}",
            f"{phase['mean_batch']:.1f}",
            f"{' + '.join(f'{c:.0f}' for c in phase['worker_cpu_s'])} / "
            f"{phase['postgres_cpu_s']:.0f} / {phase['others_cpu_s']:.0f}",
            f"{phase['machine_busy']:.0%} of {phase['observed_s']:.0f} s",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = []
    for phase in result["phases"].values():
        if phase["timed_out"]:
            notes.append(f"{phase['name']}: timed out before every breach was flagged.")
        if phase["missing_outbox"] or phase["not_marked"] or phase["still_due"]:
            notes.append(
                f"{phase['name']}: {phase['missing_outbox']} without their event, "
                f"{phase['not_marked']} not marked breached, {phase['still_due']} still due."
            )
        if phase["warnings"]:
            notes.append(
                f"{phase['name']}: {phase['warnings']} warning/error lines in the worker logs, "
                f"first: {phase['first_warnings'][:1]}"
            )
        if phase["flag_lag"] and phase["name"] == "window":
            notes.append(
                f"{phase['name']}: the workers' own instant of flagging - due (the log rows' "
                f"`late_seconds`, before the commit): p50 {phase['flag_lag']['p50_s']:.3f} s, "
                f"p99 {phase['flag_lag']['p99_s']:.3f} s; breaches per worker "
                f"{phase['per_worker']}; {phase['batches']:,} batches that flagged "
                f"something, {phase['transactions']:,} transactions in all."
            )
    return "\n".join(lines) + "\n" + "".join(f"\n* {note}" for note in notes) + "\n"
