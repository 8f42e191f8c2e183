"""SLA timers: the loop that flags breaches and runs escalations when they fall due.

The database is the queue. Each open ticket's earliest pending deadline is
`tickets.sla_next_deadline`, kept by every write of the ticket's clocks and indexed
where it is set. A pass reads which organizations have a deadline due (system session,
a bounded index range), then per organization runs `flag_due` in a job unit of work of
that organization — row-level security on, as for a request — which claims due tickets
`FOR UPDATE SKIP LOCKED`, acts through the tickets service and commits. Nothing lives
in Redis: workers may die, Redis may be emptied or down, and the next pass still finds
every deadline. Exactly once comes from the row lock and the log's unique `done_key`:
a deadline recorded is no longer pending, and a transaction that dies records nothing.

Waking up: a loop sleeps until the earliest known deadline, at most
`SLA_TIMER_POLL_SECONDS` (0.5 s by default).
Deadlines are known in advance (a clock sets its deadline when it starts or resumes),
so a due one is usually met by a loop already awake for it; the short poll bounds the
lag of a deadline written meanwhile that falls sooner than the one slept for.
`helpdesk worker` runs one loop per process beside its arq jobs; in embedded mode the
API process runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from prometheus_client import Counter, Histogram

from app.db.database import Database
from app.db.unit_of_work import UnitOfWork
from app.kit.jobs import run_job, transient
from app.kit.journal import Journal
from app.sla.clock import Event, EventKind
from app.sla.repository import SLARepository, TimerQueueRepository
from app.sla.service import Measures
from app.tickets.repository import TicketRepository, TicketWrite
from app.tickets.service import act_on_deadlines

CLAIM_BATCH = 100
# Embedded SQLite has one writer for the whole database, API requests included: its loop
# takes a few tickets a transaction and leaves the lock free a moment between them.
EMBEDDED_CLAIM_BATCH = 10
EMBEDDED_PAUSE_SECONDS = 0.05
# Organizations a worker visits at once on PostgreSQL: a visit mostly waits on round
# trips, so a few overlap on one core, and a pass over many busy organizations ends
# sooner (the lag of a deadline is about the time between two visits of its tenant).
LANES = 2
# Due rows a pass looks at to find the organizations with work (a bounded read however
# many are overdue; a pass that finds full batches runs again at once).
SCAN_ROWS = 1000
# A deadline due but held by another transaction (a worker's batch, an API write) is
# not ours to take: the loop looks again this soon rather than spinning.
MIN_SLEEP_SECONDS = 0.05
# A ticket whose deadline fails to process for a reason other than the database's
# availability is tried again this much later, so it cannot hold up the others.
FAILED_RETRY_SECONDS = 60.0
MAX_BACKOFF_SECONDS = 5.0
# A batch that takes longer is cancelled (rolled back, its tickets claimable again): a
# hung connection must not hold its tickets' locks for good.
BATCH_TIMEOUT_SECONDS = 60.0
GRACE_SECONDS = 10.0

log = structlog.get_logger(__name__)

TIMERS_CLAIMED = Counter("helpdesk_sla_timers_claimed_total", "Tickets claimed by SLA timers")
BREACHES_FLAGGED = Counter(
    "helpdesk_sla_breaches_flagged_total", "SLA breaches flagged", ["target"]
)
ESCALATIONS_RUN = Counter("helpdesk_sla_escalations_total", "SLA escalations run", ["action"])
TIMER_FAILURES = Counter("helpdesk_sla_timer_failures_total", "Failed timer passes", ["kind"])
BREACH_LAG = Histogram(
    "helpdesk_sla_breach_lag_seconds",
    "From a breach's due time to the commit that flagged it",
    buckets=(0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 5, 10, 30, 60, 300),
)


class TimerFailed(Exception):
    """Acting on one ticket's deadlines failed (the cause is chained)."""

    def __init__(self, ticket_id: uuid.UUID) -> None:
        super().__init__(f"SLA deadlines of ticket {ticket_id} failed")
        self.ticket_id = ticket_id


class BatchFailed(Exception):
    """Writing a batch failed and no single ticket can be named (the cause is chained):
    its tickets are taken again one per transaction."""

    def __init__(self, size: int) -> None:
        super().__init__(f"an SLA timer batch of {size} tickets failed")
        self.size = size


@dataclass(slots=True)
class Batch:
    claimed: int = 0
    recorded: list[tuple[uuid.UUID, Event]] = field(default_factory=list)


async def flag_due(uow: UnitOfWork, *, limit: int = CLAIM_BATCH) -> Batch:
    """Claim up to `limit` of this organization's tickets with a deadline due and act
    on each, unless another worker is visiting the organization. The batch's writes and
    journal rows go out together at the end, a few statements for the whole batch (the
    caller commits)."""
    if not await SLARepository(uow.session).visit_timers():
        return Batch(claimed=0)
    tickets = TicketRepository(uow.session)
    claimed = await tickets.claim_due(datetime.now(UTC), limit)
    batch = Batch(claimed=len(claimed))
    if not claimed:
        return batch
    logs = await SLARepository(uow.session).logs([ticket["id"] for ticket in claimed])
    measures = Measures(uow.session)
    journal = Journal(uow)
    writes: list[TicketWrite] = []
    for ticket in claimed:
        try:
            with structlog.contextvars.bound_contextvars(ticket_id=str(ticket["id"])):
                events = await act_on_deadlines(
                    uow, journal, writes, ticket, logs[ticket["id"]], measures, datetime.now(UTC)
                )
        except Exception as error:
            if transient(error):
                raise
            raise TimerFailed(ticket["id"]) from error
        batch.recorded.extend((ticket["id"], event) for event in events)
    try:
        await tickets.write_many(writes)
        await journal.write()
    except Exception as error:
        if transient(error):
            raise
        if len(claimed) == 1:
            raise TimerFailed(claimed[0]["id"]) from error
        raise BatchFailed(len(claimed)) from error
    return batch


async def defer_timer(uow: UnitOfWork, *, ticket_id: uuid.UUID, seconds: float) -> None:
    await TicketRepository(uow.session).defer_deadline(
        ticket_id, datetime.now(UTC) + timedelta(seconds=seconds)
    )


class TimerLoop:
    """One worker's timer loop: `run()` until `stop()`; a stop lets the batch under way
    commit, a cancellation rolls it back (its tickets are claimed again by the next
    pass of any worker)."""

    def __init__(
        self,
        database: Database,
        *,
        batch: int | None = None,
        poll_seconds: float | None = None,
    ) -> None:
        self.database = database
        postgres = database.dialect == "postgresql"
        self.batch = batch or (CLAIM_BATCH if postgres else EMBEDDED_CLAIM_BATCH)
        self.pause = 0.0 if postgres else EMBEDDED_PAUSE_SECONDS
        self.lanes = LANES if postgres else 1
        self.poll_seconds = poll_seconds or database.settings.sla_timer_poll_seconds
        self.stopping = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Run the loop as a task of the running event loop."""
        self.task = asyncio.create_task(self.run(), name="sla-timers")

    def stop(self) -> None:
        self.stopping.set()

    async def close(self, grace_seconds: float = GRACE_SECONDS) -> None:
        """Stop: the batch under way may commit within `grace_seconds`; past that it
        is cancelled, which rolls it back (its tickets are claimed again by any
        worker's next pass)."""
        self.stop()
        if self.task is None:
            return
        try:
            await asyncio.wait_for(self.task, timeout=grace_seconds)
        except TimeoutError:
            log.warning("sla_timers_cancelled", grace_seconds=grace_seconds)

    async def run(self) -> None:
        """Pass after pass until stopped. A failed pass is logged and retried with a
        backoff (the database restarting, a bug in one pass): the loop itself never
        dies of it."""
        backoff = 0.0
        while not self.stopping.is_set():
            try:
                more = await self.run_once()
                backoff = 0.0
            except Exception as error:
                backoff = min(MAX_BACKOFF_SECONDS, max(0.1, backoff * 2))
                if transient(error):
                    TIMER_FAILURES.labels("database").inc()
                    log.warning(
                        "sla_timers_database_unavailable", error=str(error), retry_in=backoff
                    )
                else:
                    TIMER_FAILURES.labels("pass").inc()
                    log.exception("sla_timers_pass_failed", retry_in=backoff)
                await self._sleep(backoff)
                continue
            if more:
                await self._sleep(self.pause)
            else:
                await self._sleep(await self._until_next_deadline())

    async def run_once(self) -> bool:
        """One pass over the organizations with a deadline due, `self.lanes` of them at a
        time; True when some batch came back full (more may be due at once)."""
        async with self.database.system_session() as session:
            organizations = await TimerQueueRepository(session).due_organizations(
                datetime.now(UTC), SCAN_ROWS
            )
        pending = iter(organizations)
        full = False

        async def lane() -> None:
            nonlocal full
            for organization_id in pending:
                if self.stopping.is_set():
                    return
                batch = await self._flag(organization_id)
                full = full or batch.claimed >= self.batch

        try:
            async with asyncio.TaskGroup() as lanes:
                for _ in range(min(self.lanes, len(organizations))):
                    lanes.create_task(lane())
        except ExceptionGroup as failed:
            # The others were cancelled (their transactions rolled back); the loop
            # reacts to the first cause, a database outage or not.
            raise failed.exceptions[0] from None
        return full

    async def _flag(self, organization_id: uuid.UUID) -> Batch:
        try:
            return await self._flag_batch(organization_id, self.batch)
        except BatchFailed as failed:
            TIMER_FAILURES.labels("batch").inc()
            log.warning(
                "sla_timer_batch_failed",
                organization_id=str(organization_id),
                size=failed.size,
                exc_info=failed.__cause__,
            )
            size = failed.size
        # One ticket per transaction: a failure names its ticket, which is put aside,
        # and the rest of the batch is flagged in this pass all the same.
        for _ in range(size):
            if (await self._flag_batch(organization_id, 1)).claimed == 0:
                break
        return Batch(claimed=self.batch)  # go again at once, in batches

    async def _flag_batch(self, organization_id: uuid.UUID, limit: int) -> Batch:
        try:
            batch: Batch = await run_job(self.database, flag_due, organization_id, limit=limit)
        except TimerFailed as failed:
            TIMER_FAILURES.labels("ticket").inc()
            log.error(
                "sla_timer_ticket_failed",
                organization_id=str(organization_id),
                ticket_id=str(failed.ticket_id),
                retry_in=FAILED_RETRY_SECONDS,
                exc_info=failed.__cause__,
            )
            await run_job(
                self.database,
                defer_timer,
                organization_id,
                ticket_id=failed.ticket_id,
                seconds=FAILED_RETRY_SECONDS,
            )
            return Batch(claimed=limit)  # the others are still due: go again
        committed = datetime.now(UTC)
        TIMERS_CLAIMED.inc(batch.claimed)
        for ticket_id, event in batch.recorded:
            assert event.target is not None
            if event.kind is EventKind.BREACH:
                BREACHES_FLAGGED.labels(event.target.value).inc()
                BREACH_LAG.observe((committed - event.at).total_seconds())
            elif event.action is not None:
                ESCALATIONS_RUN.labels(event.action.value).inc()
            log.info(
                f"sla_{event.kind.value}",
                organization_id=str(organization_id),
                ticket_id=str(ticket_id),
                target=event.target.value,
                action=event.action.value if event.action else None,
                due_at=event.at.isoformat(),
                late_seconds=round((committed - event.at).total_seconds(), 3),
            )
        return batch

    async def _until_next_deadline(self) -> float:
        async with self.database.system_session() as session:
            deadline = await TimerQueueRepository(session).next_deadline()
        if deadline is None:
            return self.poll_seconds
        wait = (deadline - datetime.now(UTC)).total_seconds()
        return min(self.poll_seconds, max(MIN_SLEEP_SECONDS, wait))

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
