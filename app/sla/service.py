"""SLA clocks of tickets: which policy measures a ticket, what each ticket change means
for its clocks, and the due fields and status the ticket row shows.

The log is written for every ticket, with or without a policy: starts at creation,
pauses and resumes with the status, fulfilment by the first public staff reply. A policy
is only the measure laid over it, so a policy matched later (a priority change), an
edited target or calendar is applied by replaying the same log — and a ticket without a
policy costs no read of it. Callers hold the ticket's row lock, so each ticket's log is
appended by one transaction at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.business_hours.service import calendar_of
from app.kit.journal import Journal
from app.kit.pagination import PageParams, PageResult
from app.kit.repository import Record
from app.kit.schemas import instant_text
from app.models.ticket import SLAStatus, TicketSLAEvent, TicketStatus
from app.sla.business_time import Calendar
from app.sla.clock import (
    Clock,
    ClockStatus,
    Deadline,
    EscalationAction,
    Event,
    EventKind,
    Policy,
    Summary,
    Target,
    done_key,
)
from app.sla.clock import Escalation as EscalationPoint
from app.sla.repository import SLARepository

S = TicketStatus
# Statuses in which the resolution clock runs; the others pause or end it.
RUNNING_STATUSES = frozenset({S.NEW, S.OPEN})
FINAL_STATUSES = frozenset({S.CLOSED, S.CANCELLED})
# An event's `cycle` when it applies to whichever cycle of its target is the latest.
CURRENT_CYCLE = -1
# The columns the clock sets on the ticket.
DERIVED = (
    "sla_policy_id",
    "first_response_due_at",
    "next_reply_due_at",
    "resolution_due_at",
    "sla_status",
    "sla_breach",
    "sla_next_deadline",
)


# --- which policy --------------------------------------------------------------------------


def matches(conditions: dict[str, Any], *, priority: str, channel: str, tier: str | None) -> bool:
    """An empty list admits every value."""
    return all(
        not conditions.get(name) or value in conditions[name]
        for name, value in (
            ("priorities", priority),
            ("channels", channel),
            ("customer_tiers", tier),
        )
    )


async def match_policy(
    session: AsyncSession, *, priority: str, channel: str, customer_id: uuid.UUID
) -> uuid.UUID | None:
    """The first active policy (by position) whose conditions match the ticket."""
    sla = SLARepository(session)
    policies = await sla.active_policies()
    tier = None
    if any(p["conditions"].get("customer_tiers") for p in policies):
        tier = await sla.customer_tier(customer_id)
    for policy in policies:
        if matches(policy["conditions"], priority=priority, channel=channel, tier=tier):
            return uuid.UUID(str(policy["id"]))
    return None


class Measures:
    """The clock's view of policies (`Policy`), each read once per unit of work: a
    worker's batch measures many tickets against few policies."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.known: dict[uuid.UUID, Policy | None] = {}

    async def get(self, policy_id: uuid.UUID) -> Policy | None:
        """None when the policy no longer exists."""
        if policy_id not in self.known:
            try:
                policy, hours = await SLARepository(self.session).policy_with_calendar(policy_id)
            except KeyError:
                self.known[policy_id] = None
            else:
                calendar = calendar_of(hours) if hours is not None else Calendar.always()
                self.known[policy_id] = policy_measure(policy, calendar)
        return self.known[policy_id]


def policy_measure(policy: Record, calendar: Calendar) -> Policy:
    return Policy(
        minutes={
            Target.FIRST_RESPONSE: policy["first_response_minutes"],
            Target.NEXT_REPLY: policy["next_reply_minutes"],
            Target.RESOLUTION: policy["resolution_minutes"],
        },
        calendar=calendar,
        escalations=tuple(
            EscalationPoint(
                Target(e["target"]),
                e["at_percent"],
                EscalationAction(e["action"]),
                tuple(e.get("skills", ())),
            )
            for e in policy["escalations"]
        ),
    )


# --- what a change means for the clocks ---------------------------------------------------


def creation_events(status: TicketStatus, at: datetime) -> list[Event]:
    events = [
        Event(EventKind.START, at, Target.FIRST_RESPONSE),
        Event(EventKind.START, at, Target.RESOLUTION),
    ]
    return events + status_events(S.NEW, status, at) if status is not S.NEW else events


def status_events(old: TicketStatus, new: TicketStatus, at: datetime) -> list[Event]:
    """Pending pauses the resolution clock; resolved meets it and pauses the reply
    clocks until a reopen; closed and cancelled end whatever still runs. An event for a
    clock not in the matching state changes nothing when replayed."""

    def on_every(kind: EventKind, targets: Sequence[Target]) -> list[Event]:
        # The next reply has a cycle per customer comment: the latest is the one meant.
        return [
            Event(kind, at, t, cycle=CURRENT_CYCLE if t is Target.NEXT_REPLY else 0)
            for t in targets
        ]

    replies = (Target.FIRST_RESPONSE, Target.NEXT_REPLY)
    if old is new:
        return []
    if new in FINAL_STATUSES:
        return on_every(EventKind.STOP, tuple(Target))
    if new is S.RESOLVED:
        return [Event(EventKind.FULFIL, at, Target.RESOLUTION), *on_every(EventKind.PAUSE, replies)]
    if new is S.PENDING:
        return [Event(EventKind.PAUSE, at, Target.RESOLUTION)]
    if old is S.RESOLVED:  # reopened
        return on_every(EventKind.RESUME, (*replies, Target.RESOLUTION))
    if old is S.PENDING:
        return [Event(EventKind.RESUME, at, Target.RESOLUTION)]
    return []


def recompute_event(at: datetime, reason: str) -> Event:
    """Marks in the log that the measure changed (another policy, target or calendar):
    the due times from then on are the replay of the same log by the new measure."""
    return Event(EventKind.RECOMPUTE, at, reason=reason)


def reply_events(clock: Clock | None, *, by_staff: bool, at: datetime) -> list[Event]:
    """A public comment: staff's fulfils the first response and the next reply owed;
    a customer's, once the first response is met, starts a next-reply cycle (when none
    is owed already). Without the log (`clock` None) no next-reply cycle is started."""
    if by_staff:
        return [
            Event(EventKind.FULFIL, at, Target.FIRST_RESPONSE),
            Event(EventKind.FULFIL, at, Target.NEXT_REPLY, cycle=CURRENT_CYCLE),
        ]
    if clock is None or clock.is_open(Target.FIRST_RESPONSE) or clock.is_open(Target.NEXT_REPLY):
        return []
    cycle = clock.next_cycle(Target.NEXT_REPLY)
    return [Event(EventKind.START, at, Target.NEXT_REPLY, cycle=cycle)]


# --- the ticket's view of its clocks --------------------------------------------------------


def resolve_cycles(clock: Clock, events: Sequence[Event]) -> list[Event]:
    """Events with `CURRENT_CYCLE` get their target's latest cycle; dropped when the
    target has none (nothing to pause, resume, fulfil or stop)."""
    resolved = []
    for event in events:
        if event.cycle == CURRENT_CYCLE:
            current = clock.current(event.target) if event.target else None
            if current is None:
                continue
            resolved.append(Event(event.kind, event.at, event.target, current.number))
        else:
            resolved.append(event)
    return resolved


def status_of(clock: Clock, summary: Summary, ticket_status: TicketStatus) -> SLAStatus | None:
    if summary.breached:
        return SLAStatus.BREACHED
    if ticket_status is S.CANCELLED:
        return None
    if ticket_status in (S.RESOLVED, S.CLOSED):
        return SLAStatus.FULFILLED
    if clock.is_open(Target.FIRST_RESPONSE):
        return SLAStatus.FIRST_RESPONSE_DUE
    resolution = clock.current(Target.RESOLUTION)
    if resolution is not None and resolution.status is ClockStatus.PAUSED:
        return SLAStatus.PAUSED
    if resolution is not None and resolution.status is ClockStatus.RUNNING:
        return SLAStatus.RESOLUTION_DUE
    return SLAStatus.FULFILLED


def derived_values(
    clock: Clock, policy_id: uuid.UUID | None, policy: Policy | None, status: TicketStatus
) -> dict[str, Any]:
    """The ticket columns the clock determines."""
    if policy is None:
        # A breach stays a fact of the ticket's past, measured or not.
        return dict.fromkeys(name for name in DERIVED if name != "sla_breach")
    summary = clock.summarize(policy)
    return {
        "sla_policy_id": policy_id,
        "first_response_due_at": summary.first_response_due_at,
        "next_reply_due_at": summary.next_reply_due_at,
        "resolution_due_at": summary.resolution_due_at,
        "sla_status": status_of(clock, summary, status),
        "sla_breach": summary.breached,
        "sla_next_deadline": summary.next_deadline,
    }


class TicketClock:
    """One ticket's clocks within a write: the log so far (read only when a policy
    measures the ticket), the events this write adds, and the columns they lead to."""

    def __init__(
        self,
        session: AsyncSession,
        ticket_id: uuid.UUID,
        log: list[Event] | None,
        measures: Measures | None = None,
    ) -> None:
        self.session = session
        self.ticket_id = ticket_id
        self.log = log  # None: not read, as no policy measures the ticket
        self.measures = measures or Measures(session)
        self.added: list[Event] = []
        self._clock: Clock | None = None

    @classmethod
    def new(cls, session: AsyncSession, ticket_id: uuid.UUID) -> TicketClock:
        return cls(session, ticket_id, [])

    @classmethod
    async def load(
        cls, session: AsyncSession, ticket_id: uuid.UUID, *, policy_id: uuid.UUID | None
    ) -> TicketClock:
        """`policy_id`: the policy measuring the ticket after this write."""
        log = None if policy_id is None else await SLARepository(session).log(ticket_id)
        return cls(session, ticket_id, log)

    @property
    def clock(self) -> Clock:
        if self._clock is None:
            self._clock = Clock([*(self.log or []), *self.added])
        return self._clock

    @property
    def known_clock(self) -> Clock | None:
        """The clock when the whole log is known."""
        return self.clock if self.log is not None else None

    def add(self, events: Sequence[Event]) -> None:
        for event in events:
            self.added.extend(resolve_cycles(self.clock, [event]))
            self._clock = None

    def journal(self, journal: Journal) -> None:
        for event in self.added:
            journal.add(
                TicketSLAEvent,
                ticket_id=self.ticket_id,
                kind=event.kind,
                target=event.target,
                cycle=event.cycle,
                at=event.at,
                at_percent=event.at_percent,
                action=event.action,
                done_key=_done_key(event),
                details=_details(event),
            )

    async def values(self, policy_id: uuid.UUID | None, status: TicketStatus) -> dict[str, Any]:
        policy = await self.measures.get(policy_id) if policy_id is not None else None
        if policy is None or self.log is None:
            return derived_values(self.clock, None, None, status)
        return derived_values(self.clock, policy_id, policy, status)


def _done_key(event: Event) -> str | None:
    if event.kind not in (EventKind.BREACH, EventKind.ESCALATE):
        return None
    assert event.target is not None
    return done_key(event.kind, event.target, event.cycle, event.at_percent, event.action)


def _details(event: Event) -> dict[str, Any]:
    if event.reason:
        return {"reason": event.reason}
    if event.flagged_at is not None:
        return {
            "due_at": instant_text(event.at),
            "flagged_at": instant_text(event.flagged_at),
            "late_seconds": lateness(event),
        }
    return {}


def lateness(event: Event) -> float:
    """How long after its due time a breach or escalation was recorded, in seconds."""
    assert event.flagged_at is not None
    return round(max(0.0, (event.flagged_at - event.at).total_seconds()), 3)


def due_deadlines(clock: Clock, policy: Policy, now: datetime) -> list[Deadline]:
    """The breaches and escalations not yet recorded whose time has come, in order."""
    return [d for d in clock.summarize(policy).deadlines if d.at <= now]


async def list_events(
    session: AsyncSession, ticket_id: uuid.UUID, page: PageParams
) -> PageResult[Record]:
    return await SLARepository(session).log_page(ticket_id, page)
