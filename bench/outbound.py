"""The `outbound` scenario: outbound webhooks delivered by real `helpdesk worker`
processes to a receiver on this machine (`python -m bench.run --only outbound`).

Setup, in a database of its own: `--outbound-organizations` organizations as
`bench.seed` makes them, each with one webhook subscription to every event (`["*"]`)
pointing at the receiver, `http://127.0.0.1:<port>/hooks/<n>`. The receiver is a process
of its own (uvicorn serving `receiver`, a raw ASGI app of this module): it answers every
POST 200 at once and keeps, per request, the instant it arrived, the path, the
`webhook-id` header and the body. It checks nothing (no signature), so what is measured
is our side. The subscriptions are INSERTed as `create_webhook` writes them (the API
refuses plain-http URLs in production, and the receiver has no TLS); every delivery
checks the receiver's address with WEBHOOK_ALLOW_PRIVATE_TARGETS on, as an on-premises
receiver needs. One organization's subscription is read back through the API.

Two phases, each with `--outbound-workers` workers started for it and stopped after:

* **lag**: tickets created through the API (uvicorn started as `bench.run` starts ours,
  agents logged in through `/auth/token`) at a steady `--outbound-rate` per second for
  `--outbound-duration` seconds, round-robin over the organizations; each create commits
  one `ticket.created` event. The load generator is a few lines of asyncio on
  keep-alive connections (a client library's CPU would be taken from the system under
  test). Lag = the receiver's arrival instant - the event's `created_at` (the payload's
  `timestamp`: PostgreSQL's `now()`, the start of the creating transaction, which
  commits later: milliseconds on an idle API, more when the machine is saturated), an
  upper bound of commit -> delivery; the lower bound, arrival - the instant the create's
  201 reached the load generator (after the commit), is reported beside it, and so is
  the split at the relay's stamp (`outbox_events.dispatched_at`). PostgreSQL records no
  commit instants (`track_commit_timestamp` is off). Target: p99 <= 1 s. A warm-up of a
  few seconds at the same rate is delivered and checked first, not measured.
* **throughput**: a backlog of `--outbound-backlog` `ticket.created` events of seeded
  tickets, committed in one transaction while no worker runs (the rows `open_ticket`
  writes through `Journal`: the payload formula is checked against every event the API
  wrote in the lag phase), and nothing queued in Redis for them: the workers find them
  as they find any event whose relay was never queued (Redis down, a crash after the
  commit), through the outbox's periodic sweep. Reported: deliveries per second from
  the first delivery to the last, the busiest second and ten seconds, the time from the
  workers' start until the receiver has every one, and when the relay stamped them.

Each phase checks the receiver's records against the outbox: every event of the phase
delivered to its organization's subscription exactly once (at-least-once is the
contract: a second delivery is counted, not fatal), none missing, none misrouted; and
the deliveries' rows: every one `succeeded` (a pending one could still be sent again).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import secrets
import socket
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import asyncpg
import httpx
from rich.console import Console
from uuid_utils.compat import uuid7

from bench import seed as seeding
from bench import sla_timers
from bench.common import (
    RUN_DIR,
    async_url,
    connection_headroom,
    create_database,
    drop_database,
    forget_jobs,
    redis_url,
    start,
    stop,
)

console = Console()
PHASES = ("lag", "throughput")
TARGET_P99_SECONDS = 1.0
PASSWORD = "bench-password-123"  # noqa: S105 - the seeded users' password, bench only
# Creates in flight at most: far above what 100/s needs; a stalled API shows as the
# schedule slipping (reported), not as an unbounded pile of requests.
CONCURRENCY = 64
# After the last expected delivery: a second delivery of one would show by then (one
# after a lost record waits for its lease, a minute: the rows' states cover that).
SETTLE_SECONDS = 3.0
POLL_SECONDS = 0.5


# --- the receiver (its own process: `uvicorn bench.outbound:receiver`) --------------------

# (arrival, path, webhook-id, body) per POST, in arrival order; only ever appended, so
# `/records?from=n` pages are stable.
_received: list[tuple[float, str, str, str]] = []


async def receiver(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """POST anything: kept, answered 200 with no body. GET /count: how many kept;
    GET /records?from=n: those from the n-th on, one JSON array per line."""
    if scope["type"] != "http":
        return
    arrived = time.time()
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["method"] == "POST":
        webhook_id = next((v for k, v in scope["headers"] if k == b"webhook-id"), b"")
        _received.append((arrived, scope["path"], webhook_id.decode(), body.decode()))
        await _answer(send, 200, b"")
    elif scope["path"] == "/count":
        await _answer(send, 200, str(len(_received)).encode())
    elif scope["path"] == "/records":
        first = int(parse_qs(scope["query_string"].decode()).get("from", ["0"])[0])
        await _answer(send, 200, "\n".join(json.dumps(r) for r in _received[first:]).encode())
    else:
        await _answer(send, 404, b"")


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True, slots=True)
class Received:
    arrived: float
    path: str
    webhook_id: str
    event_id: str
    event_type: str
    timestamp: float  # the payload's: the event's created_at


class Receiver:
    """The bench's side of the receiver: its records, read as they come."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.fetched = 0
        self.records: list[Received] = []
        self.malformed: list[str] = []
        self.events: set[str] = set()  # event ids received at least once

    def url(self, n: int) -> str:
        return f"{self.base}/hooks/{n}"

    async def fetch(self, client: httpx.AsyncClient) -> None:
        response = await client.get(f"{self.base}/records", params={"from": self.fetched})
        response.raise_for_status()
        for line in response.text.splitlines():
            self.fetched += 1
            arrived, path, webhook_id, body = json.loads(line)
            try:
                payload = json.loads(body)
                record = Received(
                    arrived,
                    path,
                    webhook_id,
                    payload["id"],
                    payload["type"],
                    datetime.fromisoformat(payload["timestamp"]).timestamp(),
                )
            except (ValueError, KeyError, TypeError):
                self.malformed.append(body[:300])
                continue
            self.records.append(record)
            self.events.add(record.event_id)


def receiver_command(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--lifespan",
        "off",
        "--no-access-log",
        "--log-level",
        "warning",
        "--app-dir",
        str(Path(__file__).resolve().parent.parent),
        "bench.outbound:receiver",
    ]


# --- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


async def wait_ready(
    client: httpx.AsyncClient, url: str, process: Any, log: Path, patience: float = 60
) -> None:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: exited: {tail(log)}")
        try:
            if (await client.get(url, timeout=1)).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.3)
    raise SystemExit(f"{url} did not become ready")


def api_command(port: int) -> list[str]:
    """Ours, as `bench.run` starts it: a uvicorn worker per core."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(os.cpu_count() or 1),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--factory",
        "app.main:app_factory",
    ]


def api_env(database_url: str, secret: str, queue: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "SECRET_KEY": secret,
        "ENVIRONMENT": "production",
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_PER_MINUTE": "0",
        # 100 creates a second keep a few connections busy; this leaves PostgreSQL's 100
        # to the workers' pools.
        "DATABASE_POOL_SIZE": "10",
        "DATABASE_MAX_OVERFLOW": "0",
        "REDIS_URL": redis_url(),
        "JOB_QUEUE_NAME": queue,
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    }


def worker_env(database_url: str, secret: str, queue: str) -> dict[str, str]:
    return sla_timers.worker_env(database_url, secret, queue) | {
        "WEBHOOK_ALLOW_PRIVATE_TARGETS": "true"
    }


@dataclass
class Usage:
    """CPU seconds over a phase: the workers' (from ready to stopped), PostgreSQL's (every
    backend, other databases' too), the API's (lag phase), the receiver's, this process's
    (the load generator and the polling), and the machine's share in use."""

    workers: list[float] = field(default_factory=list)
    postgres: float = 0.0
    api: float = 0.0
    receiver: float = 0.0
    bench: float = 0.0
    machine_busy: float = 0.0
    seconds: float = 0.0
    transactions: int = 0  # the phase's database committed or rolled back
    peak_connections: int = 0  # to the phase's database, sampled every POLL_SECONDS


def tree_cpu(pid: int | None) -> float:
    """A process's CPU and its children's (uvicorn's workers)."""
    if pid is None:
        return 0.0
    total = sla_timers.cpu_seconds(pid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
            if parent == pid:
                total += sla_timers.cpu_seconds(int(entry.name))
    return total


class Meter:
    def __init__(self, run: Run, workers: list[Any], api_pid: int | None = None) -> None:
        self.run = run
        self.processes = workers
        self.api_pid = api_pid
        self.began = time.time()
        self.workers = [sla_timers.cpu_seconds(p.pid) for p in workers]
        self.postgres = sla_timers.postgres_cpu()
        self.machine = sla_timers.machine_cpu()
        self.receiver = sla_timers.cpu_seconds(run.receiver_process.pid)
        self.api = tree_cpu(api_pid)
        self.bench = time.process_time()
        self.transactions = 0
        self.peak = 0

    async def begin(self) -> Meter:
        self.transactions = await sla_timers.transactions(self.run.conn, self.run.database)
        return self

    async def sample(self) -> None:
        count = await self.run.conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            self.run.database,
        )
        self.peak = max(self.peak, int(count))

    async def read(self) -> Usage:
        """Before the workers stop (their CPU is gone with them)."""
        postgres = sla_timers.postgres_cpu()
        machine = sla_timers.machine_cpu()
        total = machine[1] - self.machine[1]
        usage = Usage(
            workers=[
                round(sla_timers.cpu_seconds(p.pid) - c, 1)
                for p, c in zip(self.processes, self.workers, strict=True)
            ],
            postgres=round(sum(v - self.postgres.get(pid, 0.0) for pid, v in postgres.items()), 1),
            api=round(tree_cpu(self.api_pid) - self.api, 1),
            receiver=round(
                sla_timers.cpu_seconds(self.run.receiver_process.pid) - self.receiver, 1
            ),
            bench=round(time.process_time() - self.bench, 1),
            machine_busy=round((machine[0] - self.machine[0]) / total, 2) if total else 0.0,
            seconds=round(time.time() - self.began, 1),
            peak_connections=self.peak,
        )
        await asyncio.sleep(1)  # the statistics collector's delay
        usage.transactions = (
            await sla_timers.transactions(self.run.conn, self.run.database) - self.transactions
        )
        return usage


# --- setup ------------------------------------------------------------------------------------


@dataclass
class Agent:
    organization: int  # its index: the subscription's path ends in it
    token: str
    customers: list[uuid.UUID]


@dataclass
class Run:
    """What both phases share."""

    url: str
    secret: str
    database: str
    conn: asyncpg.Connection
    client: httpx.AsyncClient
    orgs: list[seeding.SeededOrg]
    paths: dict[uuid.UUID, str]  # organization -> its subscription's path
    receiver: Receiver
    receiver_process: Any
    workers: int
    patience: float
    warnings: list[str] = field(default_factory=list)


def new_secret() -> str:
    """The Standard Webhooks format our subscriptions' secrets have."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def subscribe(conn: asyncpg.Connection, orgs: list[seeding.SeededOrg], rx: Receiver) -> None:
    """One live, active subscription to every event per organization, created by its
    admin, the row `create_webhook` inserts."""
    admins = dict(
        await conn.fetch(
            "SELECT organization_id, id FROM users WHERE role = 'admin' "
            "AND organization_id = ANY($1::uuid[])",
            [o.id for o in orgs],
        )
    )
    await conn.executemany(
        "INSERT INTO webhook_subscriptions (id, organization_id, url, description, events, "
        "secret, is_active, created_by_id, created_at, updated_at) "
        "VALUES ($1, $2, $3, 'Bench receiver', $4::jsonb, $5, true, $6, now(), now())",
        [
            (uuid7(), org.id, rx.url(n), json.dumps(["*"]), new_secret(), admins[org.id])
            for n, org in enumerate(orgs)
        ],
    )


async def log_in(client: httpx.AsyncClient, base: str, org: seeding.SeededOrg, role: str) -> str:
    response = await client.post(
        f"{base}/api/v1/auth/token",
        data={
            "grant_type": "password",
            "username": f"{role}0@{org.slug}.example.com",
            "password": PASSWORD,
            "client_id": org.slug,
        },
    )
    if response.status_code != 200:
        raise SystemExit(f"log-in of {role}0 of {org.slug}: {response.status_code} {response.text}")
    return str(response.json()["access_token"])


async def check_subscription(run: Run, base: str) -> None:
    """The first organization's subscription as its admin reads it through the API."""
    token = await log_in(run.client, base, run.orgs[0], "admin")
    response = await run.client.get(
        f"{base}/api/v1/webhooks", headers={"Authorization": f"Bearer {token}"}
    )
    items = response.json().get("items", []) if response.status_code == 200 else []
    if [(i["url"], i["event_types"], i["is_active"]) for i in items] != [
        (run.receiver.url(0), ["*"], True)
    ]:
        raise SystemExit(f"the seeded subscription reads back as {response.text[:1000]}")


# --- producing events ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Create:
    scheduled: float
    sent: float
    answered: float
    status: int
    ticket_id: str | None


class Connection:
    """One keep-alive HTTP/1.1 connection to the API, for the load generator: a few
    lines of asyncio instead of a client library, whose per-request CPU would be taken
    from the API and the workers on a machine of two cores."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, token: str, body: bytes) -> tuple[int, bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        writer.write(
            (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
        try:
            status = int((await reader.readline()).split()[1])
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and value.strip().lower() == "close":
                    close = True
            answer = await reader.readexactly(length)
        except (OSError, IndexError, ValueError, asyncio.IncompleteReadError):
            self.close()
            raise
        if close:
            self.close()
        return status, answer

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def produce(port: int, agents: list[Agent], rate: float, seconds: float) -> list[Create]:
    """Creates at a steady `rate` (open loop: each due at its own instant, whatever the
    earlier ones take; sent as soon as one of CONCURRENCY connections is free),
    round-robin over the agents' organizations."""
    total = max(1, round(rate * seconds))
    due: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    done: list[Create] = []

    async def connection() -> None:
        http = Connection(port)
        try:
            while (item := await due.get()) is not None:
                i, scheduled = item
                agent = agents[i % len(agents)]
                body = json.dumps(
                    {
                        "subject": f"Outbound bench {i}",
                        "customer_id": str(agent.customers[i % len(agent.customers)]),
                        "tags": ["bench"],
                    }
                ).encode()
                sent = time.time()
                try:
                    status, answer = await http.post("/api/v1/tickets", agent.token, body)
                except (OSError, IndexError, ValueError, asyncio.IncompleteReadError):
                    done.append(Create(scheduled, sent, time.time(), 0, None))
                    continue
                ticket = json.loads(answer).get("id") if status == 201 else None
                done.append(Create(scheduled, sent, time.time(), status, ticket))
        finally:
            http.close()

    senders = [asyncio.create_task(connection()) for _ in range(CONCURRENCY)]
    origin = time.time() + 0.1
    for i in range(total):
        scheduled = origin + i / rate
        delay = scheduled - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        due.put_nowait((i, scheduled))
    for _ in senders:
        due.put_nowait(None)
    await asyncio.gather(*senders)
    return done


async def insert_backlog(run: Run, count: int) -> list[str]:
    """`count` `ticket.created` events of seeded tickets, round-robin over the
    organizations, in one transaction: the rows `Journal.event` writes (a UUIDv7 id,
    `created_at` the transaction's `now()`, undispatched). Returns their ids."""
    numbers = {
        row["id"]: row["ticket_number"]
        for row in await run.conn.fetch(
            "SELECT id, ticket_number FROM tickets WHERE id = ANY($1::uuid[])",
            [t for org in run.orgs for t in org.ticket_ids],
        )
    }
    rows = []
    for i in range(count):
        org = run.orgs[i % len(run.orgs)]
        ticket = org.ticket_ids[i // len(run.orgs)]
        payload = {"id": str(ticket), "ticket_number": numbers[ticket]}
        rows.append((uuid7(), org.id, "ticket.created", "ticket", ticket, json.dumps(payload)))
    async with run.conn.transaction():
        now = await run.conn.fetchval("SELECT now()")
        await run.conn.copy_records_to_table(
            "outbox_events",
            records=[(*row, now) for row in rows],
            columns=[
                "id",
                "organization_id",
                "event_type",
                "aggregate_type",
                "aggregate_id",
                "payload",
                "created_at",
            ],
        )
    return [str(row[0]) for row in rows]


async def check_payloads(conn: asyncpg.Connection, ids: list[str]) -> tuple[int, int]:
    """(events, of them as `open_ticket` writes `ticket.created`: its ticket's id and
    number, aggregate `ticket`)."""
    row = await conn.fetchrow(
        "SELECT count(*) AS n, count(*) FILTER (WHERE o.event_type = 'ticket.created' "
        "AND o.aggregate_type = 'ticket' AND o.organization_id = t.organization_id "
        "AND o.payload = jsonb_build_object('id', t.id::text, 'ticket_number', "
        "t.ticket_number)) AS same FROM outbox_events o "
        "LEFT JOIN tickets t ON t.id = o.aggregate_id WHERE o.id = ANY($1::uuid[])",
        ids,
    )
    return int(row["n"]), int(row["same"])


# --- checking what arrived ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    organization: uuid.UUID
    aggregate: str
    created_at: float
    dispatched_at: float | None


async def events_of(conn: asyncpg.Connection, ids: list[str] | None) -> dict[str, Event]:
    """The outbox's rows: those of `ids`, or every one (None)."""
    query = "SELECT id, organization_id, aggregate_id, created_at, dispatched_at FROM outbox_events"
    rows = (
        await conn.fetch(query + " WHERE id = ANY($1::uuid[])", ids)
        if ids is not None
        else await conn.fetch(query)
    )
    return {
        str(r["id"]): Event(
            str(r["id"]),
            r["organization_id"],
            str(r["aggregate_id"]),
            r["created_at"].timestamp(),
            r["dispatched_at"].timestamp() if r["dispatched_at"] else None,
        )
        for r in rows
    }


@dataclass
class Lag:
    p50_s: float
    p99_s: float
    max_s: float
    mean_s: float
    over_target: int  # more than TARGET_P99_SECONDS


def lag_of(values: list[float]) -> Lag | None:
    found = sla_timers.lag_of(values)
    if found is None:
        return None
    return Lag(
        round(found.p50_s, 4),
        round(found.p99_s, 4),
        round(found.max_s, 4),
        round(found.mean_s, 4),
        found.over_target,
    )


@dataclass
class Outcome:
    """What the receiver got for a phase's events, and their deliveries' rows."""

    events: int
    delivered: int  # events received at least once at their subscription
    missing: int
    twice: int  # events received more than once at their subscription
    extra_copies: int  # receipts beyond the first, summed
    same_id_twice: int  # events whose one webhook-id arrived more than once
    other_ids: int  # events that arrived under more than one webhook-id
    misrouted: int  # receipts at another organization's subscription
    rows: dict[str, int]  # the deliveries' rows by status
    retried: int  # rows with more than one attempt
    failed_attempts: int  # attempts without a 2xx answer
    first_arrivals: dict[str, float] = field(repr=False, default_factory=dict)


async def outcome(run: Run, events: dict[str, Event]) -> Outcome:
    by_event: dict[str, list[Received]] = defaultdict(list)
    misrouted = 0
    for record in run.receiver.records:
        event = events.get(record.event_id)
        if event is None:
            continue
        if record.path != run.paths[event.organization]:
            misrouted += 1
            continue
        by_event[record.event_id].append(record)
    twice = [got for got in by_event.values() if len(got) > 1]
    ids = list(events)
    rows = await run.conn.fetch(
        "SELECT status, count(*) AS n, count(*) FILTER (WHERE attempt_count > 1) AS retried "
        "FROM webhook_deliveries WHERE event_id = ANY($1::uuid[]) GROUP BY status",
        ids,
    )
    failed = await run.conn.fetchval(
        "SELECT count(*) FROM webhook_delivery_attempts a "
        "JOIN webhook_deliveries d ON d.id = a.delivery_id "
        "WHERE d.event_id = ANY($1::uuid[]) "
        "AND (a.status_code IS NULL OR a.status_code NOT BETWEEN 200 AND 299)",
        ids,
    )
    return Outcome(
        events=len(events),
        delivered=len(by_event),
        missing=len(events) - len(by_event),
        twice=len(twice),
        extra_copies=sum(len(got) - 1 for got in twice),
        same_id_twice=sum(
            1 for got in twice if max(Counter(r.webhook_id for r in got).values()) > 1
        ),
        other_ids=sum(1 for got in twice if len({r.webhook_id for r in got}) > 1),
        misrouted=misrouted,
        rows={r["status"]: int(r["n"]) for r in rows},
        retried=sum(int(r["retried"]) for r in rows),
        failed_attempts=int(failed),
        first_arrivals={e: min(r.arrived for r in got) for e, got in by_event.items()},
    )


async def watch(
    run: Run, name: str, expected: set[str], until: float, processes: list[Any], meter: Meter
) -> bool:
    """Until the receiver has every one of `expected`; False when `until` came first."""
    shown = time.monotonic()
    while True:
        await run.receiver.fetch(run.client)
        await meter.sample()
        if expected <= run.receiver.events:
            return True
        if time.time() > until:
            return False
        for process in processes:
            if process.poll() is not None:
                raise SystemExit(f"outbound/{name}: a worker exited (see {RUN_DIR})")
        if time.monotonic() - shown > 10:
            shown = time.monotonic()
            got = len(expected & run.receiver.events)
            console.print(f"outbound/{name}: {got:,} of {len(expected):,} delivered")
        await asyncio.sleep(POLL_SECONDS)


class Workers:
    """`helpdesk worker` processes for one phase, on a queue of their own (the API's too,
    in the lag phase); stopped, and their queue dropped, however the phase ends."""

    def __init__(self, run: Run, name: str, queue: str) -> None:
        self.run = run
        self.name = name
        self.queue = queue
        self.processes: list[Any] = []
        self.logs: list[Path] = []
        self.started = 0.0

    async def __aenter__(self) -> Workers:
        before = await sla_timers.backends(self.run.conn, self.run.database)
        self.started = time.time()
        self.processes, self.logs = sla_timers.start_workers(
            self.run.workers,
            worker_env(self.run.url, self.run.secret, self.queue),
            f"outbound-{self.name}",
        )
        try:
            await sla_timers.wait_connected(
                self.run.conn, self.run.database, self.processes, self.logs, before=before
            )
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *_exc: object) -> None:
        # Blocking, not awaited: a cancelled run (Ctrl-C) still stops every one.
        for process in self.processes:
            stop(process, timeout=30)
        await forget_jobs(self.queue)
        logs = sla_timers.WorkerLogs(self.logs)
        logs.read()
        self.run.warnings += [f"{self.name}: {w}" for w in logs.warnings]


# --- the phases ------------------------------------------------------------------------------


@dataclass
class LagPhase:
    rate: float  # offered, events per second
    duration_s: float
    warmup_s: float
    creates: int
    create_errors: int
    achieved_rate: float  # 201s / (last answer - first send)
    schedule_slip_p99_s: float  # how late the creates were sent, p99
    create_p50_ms: float
    create_p99_ms: float
    other_events: int  # events besides the creates' ticket.created (expected: none)
    outcome: Outcome
    warmup: Outcome
    lag: Lag | None  # arrival - created_at: the upper bound of commit -> delivery
    lag_after_answer: Lag | None  # arrival - the 201's arrival: the lower bound
    relay_lag: Lag | None  # dispatched_at - created_at
    after_relay: Lag | None  # arrival - dispatched_at
    deliveries_per_second: float
    usage: Usage
    timed_out: bool


@dataclass
class ThroughputPhase:
    backlog: int
    seed_s: float
    payloads_like_api: int  # backlog events shaped as the API writes ticket.created
    outcome: Outcome
    deliveries_per_second: float  # first delivery to the last
    drain_s: float  # workers started to the last delivery
    first_after_s: float  # workers started to the first delivery
    relayed_first_after_s: float | None  # workers started to the first relay stamp
    # The first relay stamp to the last delivery: the drain without the wait for the
    # first relay, which depends on when in the periodic sweep's cycle the workers start.
    drain_after_relay_s: float | None
    relayed_last_after_s: float | None
    relayed_per_second: float
    # Relay stamps in bursts more than 5 s apart: (seconds after the start, events).
    relay_waves: list[tuple[float, int]]
    peak_1s: int  # deliveries in the busiest second
    peak_10s_per_second: float  # in the busiest ten seconds, per second
    idle_seconds: int  # whole seconds between the first and last delivery with none
    usage: Usage
    timed_out: bool


def waves(offsets: list[float], gap: float = 5.0) -> list[tuple[float, int]]:
    """Sorted instants grouped where more than `gap` seconds separate them: (the first
    of each group, its size)."""
    found: list[tuple[float, int]] = []
    previous = None
    for at in offsets:
        if previous is None or at - previous > gap:
            found.append((round(at, 1), 0))
        found[-1] = (found[-1][0], found[-1][1] + 1)
        previous = at
    return found


def quantile_ms(values: list[float], q: float) -> float:
    return round(sla_timers.quantile(sorted(values), q) * 1000, 1)


async def lag_phase(
    run: Run,
    *,
    rate: float,
    duration: float,
    warmup: float,
    api_port: int,
    api_pid: int,
    queue: str,
) -> LagPhase:
    base = f"http://127.0.0.1:{api_port}"
    agents = []
    for n, org in enumerate(run.orgs):
        agents.append(Agent(n, await log_in(run.client, base, org, "agent"), org.customers))
    async with Workers(run, "lag", queue) as workers:
        meter = await Meter(run, workers.processes, api_pid).begin()
        console.print(f"outbound/lag: warm-up, {warmup:g} s at {rate:g}/s")
        warm = await produce(api_port, agents, rate, warmup)
        if not any(c.status == 201 for c in warm):
            raise SystemExit(f"outbound/lag: no create succeeded: {warm[0]}")
        warm_events = await events_of(run.conn, None)
        if not await watch(
            run, "lag", set(warm_events), time.time() + run.patience, workers.processes, meter
        ):
            raise SystemExit("outbound/lag: the warm-up's events were not all delivered")
        console.print(
            f"outbound/lag: {len(warm_events)} warm-up events delivered; "
            f"{duration:g} s at {rate:g}/s"
        )
        meter = await Meter(run, workers.processes, api_pid).begin()
        creates = await produce(api_port, agents, rate, duration)
        everything = await events_of(run.conn, None)
        events = {k: v for k, v in everything.items() if k not in warm_events}
        finished = await watch(
            run, "lag", set(events), time.time() + run.patience, workers.processes, meter
        )
        await asyncio.sleep(SETTLE_SECONDS)
        await run.receiver.fetch(run.client)
        usage = await meter.read()
    # The relay stamps are read once every event is delivered, so all are there.
    events = await events_of(run.conn, list(events))
    warm_events = await events_of(run.conn, list(warm_events))
    got = await outcome(run, events)
    created = {c.ticket_id: c for c in creates if c.ticket_id is not None}
    by_ticket = {e.aggregate: e for e in events.values() if e.aggregate in created}
    first = got.first_arrivals
    ok = [c for c in creates if c.status == 201]
    achieved = len(ok) / (max(c.answered for c in ok) - min(c.sent for c in creates)) if ok else 0.0
    arrivals = sorted(first.values())
    return LagPhase(
        rate=rate,
        duration_s=duration,
        warmup_s=warmup,
        creates=len(creates),
        create_errors=len(creates) - len(ok),
        achieved_rate=round(achieved, 1),
        schedule_slip_p99_s=round(
            sla_timers.quantile(sorted(c.sent - c.scheduled for c in creates), 0.99), 4
        ),
        create_p50_ms=quantile_ms([c.answered - c.sent for c in ok], 0.5),
        create_p99_ms=quantile_ms([c.answered - c.sent for c in ok], 0.99),
        other_events=len(events) - len(by_ticket),
        outcome=got,
        warmup=await outcome(run, warm_events),
        lag=lag_of([first[e] - events[e].created_at for e in first]),
        lag_after_answer=lag_of(
            [first[e.id] - created[t].answered for t, e in by_ticket.items() if e.id in first]
        ),
        relay_lag=lag_of(
            [e.dispatched_at - e.created_at for e in events.values() if e.dispatched_at]
        ),
        after_relay=lag_of(
            [first[e] - stamp for e in first if (stamp := events[e].dispatched_at) is not None]
        ),
        deliveries_per_second=round(
            len(arrivals) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0, 1
        ),
        usage=usage,
        timed_out=not finished,
    )


async def throughput_phase(run: Run, *, backlog: int, queue: str) -> ThroughputPhase:
    began = time.time()
    ids = await insert_backlog(run, backlog)
    seed_s = time.time() - began
    _total, like_api = await check_payloads(run.conn, ids)
    expected = set(ids)
    console.print(
        f"outbound/throughput: {backlog:,} events committed in {seed_s:.1f} s; "
        f"starting {run.workers} workers"
    )
    async with Workers(run, "throughput", queue) as workers:
        # From the workers' start, not their readiness: a backlog waits from there.
        started = workers.started
        meter = await Meter(run, workers.processes).begin()
        finished = await watch(
            run,
            "throughput",
            expected,
            time.time() + run.patience,
            workers.processes,
            meter,
        )
        await asyncio.sleep(SETTLE_SECONDS)
        await run.receiver.fetch(run.client)
        usage = await meter.read()
    events = await events_of(run.conn, ids)
    got = await outcome(run, events)
    arrivals = sorted(got.first_arrivals.values())
    stamps = sorted(e.dispatched_at for e in events.values() if e.dispatched_at)
    per_second = Counter(math.floor(a - started) for a in arrivals)
    window = 0
    for second in per_second:
        window = max(window, sum(per_second.get(second + k, 0) for k in range(10)))
    span = (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else 0.0
    return ThroughputPhase(
        backlog=backlog,
        seed_s=round(seed_s, 1),
        payloads_like_api=like_api,
        outcome=got,
        deliveries_per_second=round(len(arrivals) / span, 1) if span else 0.0,
        drain_s=round(arrivals[-1] - started, 1) if arrivals else 0.0,
        first_after_s=round(arrivals[0] - started, 1) if arrivals else 0.0,
        relayed_first_after_s=round(stamps[0] - started, 1) if stamps else None,
        relayed_last_after_s=round(stamps[-1] - started, 1) if stamps else None,
        drain_after_relay_s=round(arrivals[-1] - stamps[0], 1) if stamps and arrivals else None,
        relayed_per_second=round(len(stamps) / (stamps[-1] - stamps[0]), 1)
        if len(stamps) > 1 and stamps[-1] > stamps[0]
        else 0.0,
        relay_waves=waves([s - started for s in stamps]),
        peak_1s=max(per_second.values(), default=0),
        peak_10s_per_second=round(window / 10, 1),
        idle_seconds=sum(
            1
            for s in range(math.floor(arrivals[0] - started), math.floor(arrivals[-1] - started))
            if s not in per_second
        )
        if arrivals
        else 0,
        usage=usage,
        timed_out=not finished,
    )


# --- the scenario ----------------------------------------------------------------------------


async def with_api(
    run: Run, processes: list[Any], queues: list[str], **options: Any
) -> dict[str, Any]:
    """The lag phase, with our API started for it (and stopped after); then the check
    that the events it wrote are shaped as `insert_backlog` writes them."""
    queue = f"arq:bench-outbound:{uuid.uuid4().hex}"
    queues.append(queue)
    port = free_port()
    log = RUN_DIR / "outbound-api.log"
    api = start(api_command(port), api_env(run.url, run.secret, queue), log)
    processes.append(api)
    await wait_ready(run.client, f"http://127.0.0.1:{port}/readyz", api, log)
    await check_subscription(run, f"http://127.0.0.1:{port}")
    lag = await lag_phase(run, api_port=port, api_pid=api.pid, queue=queue, **options)
    await asyncio.to_thread(stop, api)
    total, like = await check_payloads(run.conn, list(await events_of(run.conn, None)))
    if total != like:
        raise SystemExit(
            f"outbound/lag: {total - like} of the API's {total} events are not shaped as "
            "the backlog's are: fix insert_backlog"
        )
    return asdict(lag)


async def run_phases(
    run: Run,
    phases: tuple[str, ...],
    processes: list[Any],
    queues: list[str],
    *,
    backlog: int,
    **options: Any,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    await subscribe(run.conn, run.orgs, run.receiver)
    if "lag" in phases:
        results["lag"] = await with_api(run, processes, queues, **options)
        console.print(summary_line("lag", results["lag"]))
    if "throughput" in phases:
        queue = f"arq:bench-outbound:{uuid.uuid4().hex}"
        queues.append(queue)
        throughput = await throughput_phase(run, backlog=backlog, queue=queue)
        if throughput.payloads_like_api != backlog:
            raise SystemExit("outbound/throughput: backlog events differ from the API's")
        results["throughput"] = asdict(throughput)
        console.print(summary_line("throughput", results["throughput"]))
    for phase in results.values():
        for name in ("outcome", "warmup"):
            if name in phase:
                phase[name].pop("first_arrivals", None)
    return results


async def scenario(
    *,
    organizations: int,
    rate: float,
    duration: float,
    warmup: float,
    backlog: int,
    workers: int,
    patience: float,
    phases: tuple[str, ...] = PHASES,
    keep_database: bool = False,
) -> dict[str, Any]:
    from app.auth.passwords import _hasher
    from app.cli import upgrade_database

    allowed, in_use = await connection_headroom()
    if allowed - in_use < 60:
        console.print(
            f"[yellow]PostgreSQL has {allowed - in_use} connections free ({in_use} in use by "
            "others); the workers' and the API's pools may want 60: expect errors[/yellow]"
        )
    dsn = await create_database()
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    processes: list[Any] = []  # stopped whatever happens, the last started first
    queues: list[str] = []
    conn: asyncpg.Connection | None = None
    try:
        await asyncio.to_thread(upgrade_database, "head", async_url(dsn))
        console.print(f"outbound: seeding {organizations} organizations")
        orgs = await seeding.seed(
            dsn,
            organizations=organizations,
            tickets_per_org=math.ceil(backlog / organizations) if "throughput" in phases else 0,
            password_hash=_hasher().hash(PASSWORD),
            progress=lambda _kind, _n: None,
            keep_ids_for=organizations,
        )
        conn = await asyncpg.connect(dsn)
        rx = Receiver(free_port())
        log = RUN_DIR / "outbound-receiver.log"
        processes.append(start(receiver_command(rx.port), {}, log))
        async with httpx.AsyncClient(timeout=60) as client:
            await wait_ready(client, f"{rx.base}/count", processes[0], log)
            run = Run(
                url=async_url(dsn),
                secret=secrets.token_urlsafe(48),
                database=sla_timers.sa_database(dsn),
                conn=conn,
                client=client,
                orgs=orgs,
                paths={org.id: f"/hooks/{n}" for n, org in enumerate(orgs)},
                receiver=rx,
                receiver_process=processes[0],
                workers=workers,
                patience=patience,
            )
            results = await run_phases(
                run,
                phases,
                processes,
                queues,
                backlog=backlog,
                rate=rate,
                duration=duration,
                warmup=warmup,
            )
            unknown = {r.event_id for r in rx.records} - set(await events_of(conn, None))
    finally:
        for process in reversed(processes):
            stop(process)  # blocking, as in Workers
        for queue in queues:
            await forget_jobs(queue)
        if conn is not None:
            await conn.close()
        if keep_database:
            console.print(f"database kept: {dsn}")
        else:
            await drop_database(dsn)
    meta = {
        "organizations": organizations,
        "workers": workers,
        "rate_per_s": rate,
        "duration_s": duration,
        "warmup_s": warmup,
        "backlog": backlog,
        "target_p99_s": TARGET_P99_SECONDS,
        "cpus": os.cpu_count(),
        "received_requests": len(rx.records),
        "unknown_events_received": len(unknown),
        "malformed_bodies": len(rx.malformed),
        "worker_warnings": len(run.warnings),
        "first_warnings": run.warnings[:5],
    }
    return {"meta": meta, "phases": results}


# --- reporting -------------------------------------------------------------------------------


def summary_line(name: str, phase: dict[str, Any]) -> str:
    got = phase["outcome"]
    line = (
        f"outbound/{name}: {got['delivered']:,} of {got['events']:,} delivered, missing "
        f"{got['missing']}, twice {got['twice']}; {phase['deliveries_per_second']:,.1f} "
        "deliveries/s"
    )
    if phase.get("lag"):
        lag = phase["lag"]
        line += (
            f"; lag p50 {lag['p50_s']:.3f} s, p99 {lag['p99_s']:.3f} s, max {lag['max_s']:.3f} s"
        )
    if "drain_s" in phase:
        line += f"; drained {phase['drain_s']:.1f} s after the workers started"
    return line


def _lag_cells(lag: dict[str, Any] | None) -> list[str]:
    if not lag:
        return ["-"] * 4
    return [
        f"{lag['p50_s']:.3f}",
        f"{lag['p99_s']:.3f}",
        f"{lag['max_s']:.3f}",
        str(lag["over_target"]),
    ]


def _usage(usage: dict[str, Any]) -> str:
    return (
        f"{' + '.join(f'{c:.0f}' for c in usage['workers'])} / {usage['postgres']:.0f} / "
        f"{usage['api']:.0f} / {usage['receiver']:.0f} / {usage['bench']:.0f}"
    )


def markdown(result: dict[str, Any]) -> str:
    """The outbound webhooks' section of a run's markdown."""
    meta = result["meta"]
    phases = result["phases"]
    lines = [
        "### Outbound webhooks",
        "",
        f'{meta["organizations"]} organizations, one subscription each (`["*"]`) to a '
        f"receiver on 127.0.0.1 (uvicorn, a raw ASGI app answering 200 at once, checking "
        f"nothing), {meta['workers']} `helpdesk worker` processes, {meta['cpus']} cores. "
        "Each phase: every event delivered exactly once at its organization's "
        "subscription (keyed by event id; a second receipt is counted, not fatal).",
        "",
        "| phase | events | delivered | missing | twice (same webhook-id / another) | "
        "misrouted | rows succeeded / pending / failed | deliveries/s | "
        "CPU s: workers / PostgreSQL / API / receiver / bench | machine busy | "
        "transactions per event | peak connections |",
        "|" + "---|" * 12,
    ]
    for name, phase in phases.items():
        got = phase["outcome"]
        rows = got["rows"]
        usage = phase["usage"]
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    f"{got['events']:,}",
                    f"{got['delivered']:,}",
                    str(got["missing"]),
                    f"{got['twice']} ({got['same_id_twice']} / {got['other_ids']})",
                    str(got["misrouted"]),
                    f"{rows.get('succeeded', 0):,} / {rows.get('pending', 0)} / "
                    f"{rows.get('failed', 0)}",
                    f"{phase['deliveries_per_second']:,.1f}",
                    _usage(usage),
                    f"{usage['machine_busy']:.0%} of {usage['seconds']:.0f} s",
                    f"{usage['transactions'] / got['events']:.1f}" if got["events"] else "-",
                    str(usage["peak_connections"]),
                ]
            )
            + " |"
        )
    notes: list[str] = []
    if "lag" in phases:
        lag = phases["lag"]
        verdict = "yes" if lag["lag"] and lag["lag"]["p99_s"] <= meta["target_p99_s"] else "no"
        lines += [
            "",
            f"**Lag phase**: {lag['creates']:,} tickets created through the API at "
            f"{lag['rate']:g}/s for {lag['duration_s']:g} s (achieved "
            f"{lag['achieved_rate']:,.1f}/s, {lag['create_errors']} errors, create p50 "
            f"{lag['create_p50_ms']:.0f} ms / p99 {lag['create_p99_ms']:.0f} ms, sends "
            f"late by p99 {lag['schedule_slip_p99_s'] * 1000:.0f} ms), after "
            f"{lag['warmup_s']:g} s of warm-up. Target p99 <= {meta['target_p99_s']:g} s "
            f"(commit -> delivery, upper bound): **{verdict}**.",
            "",
            "| measure (seconds) | p50 | p99 | max | > 1 s |",
            "|---|---|---|---|---|",
            "| commit -> delivery, upper bound: arrival - event `created_at` (the creating "
            "transaction's `now()`) | " + " | ".join(_lag_cells(lag["lag"])) + " |",
            "| commit -> delivery, lower bound: arrival - the create's 201 at the client | "
            + " | ".join(_lag_cells(lag["lag_after_answer"]))
            + " |",
            "| event `created_at` -> relayed (`dispatched_at`) | "
            + " | ".join(_lag_cells(lag["relay_lag"]))
            + " |",
            "| relayed -> arrival | " + " | ".join(_lag_cells(lag["after_relay"])) + " |",
        ]
        warm = lag["warmup"]
        notes.append(
            f"lag: warm-up events {warm['events']}, delivered {warm['delivered']}, missing "
            f"{warm['missing']}, twice {warm['twice']}; events besides the creates' "
            f"`ticket.created`: {lag['other_events']}."
        )
        if lag["timed_out"]:
            notes.append("lag: timed out before every event was delivered.")
    if "throughput" in phases:
        tp = phases["throughput"]
        lines += [
            "",
            f"**Throughput phase**: {tp['backlog']:,} `ticket.created` events committed in "
            f"one transaction ({tp['seed_s']:.1f} s) while no worker ran, nothing queued "
            f"for them; then the workers started. First relay stamp "
            f"{tp['relayed_first_after_s']} s after their start (the periodic sweep's "
            f"cycle decides), first delivery {tp['first_after_s']:.1f} s, last "
            f"{tp['drain_s']:.1f} s ({tp['drain_after_relay_s']} s after the first relay "
            "stamp); "
            f"**{tp['deliveries_per_second']:,.1f} deliveries/s** from the first to the "
            f"last (busiest second {tp['peak_1s']:,}, busiest 10 s "
            f"{tp['peak_10s_per_second']:,.1f}/s, {tp['idle_seconds']} whole seconds "
            "in between without a delivery). Relay stamps from "
            f"{tp['relayed_first_after_s']} s to {tp['relayed_last_after_s']} s after the "
            f"start ({tp['relayed_per_second']:,.1f} events/s), in "
            f"{len(tp['relay_waves'])} bursts more than 5 s apart (s after the start: "
            f"events): {', '.join(f'{at:g}: {n:,}' for at, n in tp['relay_waves'])}.",
        ]
        if tp["timed_out"]:
            notes.append("throughput: timed out before every event was delivered.")
    for name, phase in phases.items():
        got = phase["outcome"]
        if phase["usage"]["machine_busy"] >= 0.9:
            notes.append(
                f"{name}: the machine was {phase['usage']['machine_busy']:.0%} busy: "
                "CPU-bound (its CPU columns above say who took it; anything else running "
                "meanwhile took the rest)."
            )
        if got["retried"] or got["failed_attempts"]:
            notes.append(
                f"{name}: {got['retried']} deliveries took more than one attempt; "
                f"{got['failed_attempts']} attempts without a 2xx."
            )
    if meta["unknown_events_received"] or meta["malformed_bodies"]:
        notes.append(
            f"{meta['unknown_events_received']} events received that the outbox does not "
            f"hold; {meta['malformed_bodies']} bodies not the documented envelope."
        )
    if meta["worker_warnings"]:
        notes.append(
            f"{meta['worker_warnings']} warning/error lines in the worker logs, first: "
            f"{meta['first_warnings'][:1]}"
        )
    return "\n".join(lines) + "\n" + "".join(f"\n* {note}" for note in notes) + "\n"
