"""A ticket's SLA clocks, replayed from its event log. Pure, no I/O.

Each target (first response, next reply, resolution) runs in cycles: the first response
and the resolution have one cycle per ticket, the next reply one per unanswered customer
comment. A cycle is a series of events — `start`, then `pause`/`resume`, and it ends
with `fulfil` or `stop` — that make its running spans. Business time accrues only inside
running spans, on the policy's calendar. Because the log keeps the spans rather than a
remaining balance, a new target, a new calendar or another policy is applied by
replaying the same log: pause time is never lost and nothing is counted twice.

A threshold (the target's minutes for a breach, a percentage of them for an escalation)
is reached at the instant the business time of the cycle's spans adds up to it. It is
due once reached, whether the cycle is still running or was fulfilled or paused after
that instant (a worker that wakes late still flags it); the log records each breach and
escalation once (`done_key`), and those recorded are no longer pending.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.sla.business_time import Calendar, NeverOpen, add_business_time, business_time_between


class Target(enum.StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_REPLY = "next_reply"
    RESOLUTION = "resolution"


class EventKind(enum.StrEnum):
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    FULFIL = "fulfil"
    STOP = "stop"
    BREACH = "breach"
    ESCALATE = "escalate"
    RECOMPUTE = "recompute"


class EscalationAction(enum.StrEnum):
    NOTIFY = "notify"
    REASSIGN = "reassign"
    RAISE_PRIORITY = "raise_priority"


class ClockStatus(enum.StrEnum):
    """Where a cycle stands: `running` and `paused` owe the target; `fulfilled` met it
    (late or not); `stopped` no longer owes it (a cancelled ticket)."""

    RUNNING = "running"
    PAUSED = "paused"
    FULFILLED = "fulfilled"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    at: datetime
    target: Target | None = None
    cycle: int = 0
    at_percent: int | None = None
    action: EscalationAction | None = None
    reason: str | None = None  # why the measure changed (recompute)
    flagged_at: datetime | None = None  # when a worker recorded a breach or escalation


@dataclass(frozen=True, slots=True)
class Escalation:
    target: Target
    at_percent: int
    action: EscalationAction
    skills: tuple[str, ...] = ()  # a reassignment's needed skills


@dataclass(frozen=True, slots=True)
class Policy:
    """What the clocks are measured against: minutes per target (None: not tracked) on a
    calendar, and the escalation points."""

    minutes: dict[Target, int | None]
    calendar: Calendar
    escalations: tuple[Escalation, ...] = ()

    def skills_for(self, event: Event) -> tuple[str, ...]:
        """The skills the escalation recorded by `event` asks of a new assignee."""
        for escalation in self.escalations:
            if (escalation.target, escalation.at_percent, escalation.action) == (
                event.target,
                event.at_percent,
                event.action,
            ):
                return escalation.skills
        return ()


def done_key(
    kind: EventKind,
    target: Target,
    cycle: int,
    at_percent: int | None = None,
    action: EscalationAction | None = None,
) -> str:
    """The identity of a breach or an escalation, unique per ticket in the log: what
    makes each happen exactly once however many workers race for it."""
    if kind is EventKind.BREACH:
        return f"breach:{target.value}:{cycle}"
    return f"escalate:{target.value}:{cycle}:{at_percent}:{action.value if action else ''}"


def escalation_minutes(at_percent: int, target_minutes: int) -> int:
    """The business minutes into a target at which an escalation fires: `at_percent` of
    the target, rounded up to a whole minute (never before the percentage is reached)."""
    return max(1, math.ceil(at_percent * target_minutes / 100))


@dataclass(slots=True)
class Cycle:
    target: Target
    number: int
    spans: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    status: ClockStatus = ClockStatus.RUNNING

    def reached_at(self, calendar: Calendar, threshold: timedelta) -> datetime | None:
        """The instant the cycle's business time reaches `threshold`: within its spans, or
        past the last one while it runs; None when it has not (and cannot yet)."""
        spent = timedelta(0)
        for begin, end in self.spans:
            if end is None:
                return _add(calendar, begin, threshold - spent)
            inside = business_time_between(calendar, begin, end)
            if spent + inside >= threshold:
                return _add(calendar, begin, threshold - spent)
            spent += inside
        return None

    def projected_due(self, calendar: Calendar, threshold: timedelta) -> datetime | None:
        """The due time to show: as `reached_at`, and for a fulfilled cycle the instant it
        would have been due had it kept running (a fact a report compares with)."""
        if self.status is ClockStatus.FULFILLED and self.spans:
            begin, _end = self.spans[-1]
            kept_running = [*self.spans[:-1], (begin, None)]
            return Cycle(self.target, self.number, kept_running).reached_at(calendar, threshold)
        return self.reached_at(calendar, threshold)


def _add(calendar: Calendar, start: datetime, remaining: timedelta) -> datetime | None:
    if remaining <= timedelta(0):
        return start
    try:
        return add_business_time(calendar, start, remaining)
    except NeverOpen:
        return None


@dataclass(frozen=True, slots=True)
class Deadline:
    """A breach or escalation point not yet recorded, and when it falls due."""

    kind: EventKind
    target: Target
    cycle: int
    at: datetime
    at_percent: int | None = None
    action: EscalationAction | None = None

    @property
    def key(self) -> str:
        return done_key(self.kind, self.target, self.cycle, self.at_percent, self.action)

    def recorded(self, flagged_at: datetime) -> Event:
        """The log's record that this deadline was acted on at `flagged_at`."""
        return Event(
            self.kind,
            self.at,
            self.target,
            self.cycle,
            self.at_percent,
            self.action,
            flagged_at=flagged_at,
        )


@dataclass(frozen=True, slots=True)
class Summary:
    """What the ticket row shows, derived from the log."""

    first_response_due_at: datetime | None
    next_reply_due_at: datetime | None
    resolution_due_at: datetime | None
    breached: bool
    deadlines: tuple[Deadline, ...]

    @property
    def next_deadline(self) -> datetime | None:
        return min((d.at for d in self.deadlines), default=None)


class Clock:
    """The cycles of one ticket's log, in order."""

    def __init__(self, events: Iterable[Event]) -> None:
        self.cycles: dict[tuple[Target, int], Cycle] = {}
        self.done: set[str] = set()
        for event in sorted(events, key=lambda e: e.at):
            self._apply(event)

    def _apply(self, event: Event) -> None:
        if event.kind in (EventKind.BREACH, EventKind.ESCALATE):
            assert event.target is not None
            self.done.add(
                done_key(event.kind, event.target, event.cycle, event.at_percent, event.action)
            )
            return
        if event.target is None:  # recompute: an explanation, not a change of the spans
            return
        key = (event.target, event.cycle)
        if event.kind is EventKind.START:
            self.cycles[key] = Cycle(event.target, event.cycle, [(event.at, None)])
            return
        cycle = self.cycles.get(key)
        if cycle is None:
            return
        running = cycle.spans and cycle.spans[-1][1] is None
        if event.kind is EventKind.RESUME:
            # A paused cycle runs again; so does a met resolution, which a status met
            # (resolved) and a status takes back (reopened). A reply, once met, stays met.
            reopened = cycle.status is ClockStatus.FULFILLED and cycle.target is Target.RESOLUTION
            if cycle.status is ClockStatus.PAUSED or reopened:
                cycle.spans.append((event.at, None))
                cycle.status = ClockStatus.RUNNING
            return
        if running:
            begin, _ = cycle.spans[-1]
            cycle.spans[-1] = (begin, max(begin, event.at))
        if event.kind is EventKind.PAUSE:
            if cycle.status is ClockStatus.RUNNING:
                cycle.status = ClockStatus.PAUSED
        elif event.kind is EventKind.FULFIL:
            if cycle.status in (ClockStatus.RUNNING, ClockStatus.PAUSED):
                cycle.status = ClockStatus.FULFILLED
        elif event.kind is EventKind.STOP:
            cycle.status = ClockStatus.STOPPED

    def current(self, target: Target) -> Cycle | None:
        cycles = [c for (t, _n), c in self.cycles.items() if t is target]
        return max(cycles, key=lambda c: c.number, default=None)

    def next_cycle(self, target: Target) -> int:
        current = self.current(target)
        return 0 if current is None else current.number + 1

    def is_open(self, target: Target) -> bool:
        """The target is owed: its latest cycle runs or is paused."""
        current = self.current(target)
        return current is not None and current.status in (ClockStatus.RUNNING, ClockStatus.PAUSED)

    def summarize(self, policy: Policy) -> Summary:
        calendar = policy.calendar
        due: dict[Target, datetime | None] = {}
        deadlines: list[Deadline] = []
        for target in Target:
            minutes = policy.minutes.get(target)
            current = self.current(target)
            if minutes is None or current is None:
                due[target] = None
                continue
            limit = timedelta(minutes=minutes)
            showing = current.status in (ClockStatus.RUNNING, ClockStatus.FULFILLED)
            due[target] = current.projected_due(calendar, limit) if showing else None
            for cycle in (c for (t, _n), c in self.cycles.items() if t is target):
                deadlines.extend(self._pending(cycle, policy, minutes))
        deadlines.sort(key=lambda d: d.at)
        return Summary(
            first_response_due_at=due[Target.FIRST_RESPONSE],
            next_reply_due_at=due[Target.NEXT_REPLY] if self.is_open(Target.NEXT_REPLY) else None,
            resolution_due_at=due[Target.RESOLUTION],
            breached=any(key.startswith("breach:") for key in self.done),
            deadlines=tuple(deadlines),
        )

    def _pending(self, cycle: Cycle, policy: Policy, minutes: int) -> Sequence[Deadline]:
        if cycle.status is ClockStatus.STOPPED:
            return ()
        found = []
        points: list[tuple[EventKind, int, int | None, EscalationAction | None]] = [
            (EventKind.BREACH, minutes, None, None)
        ]
        points.extend(
            (EventKind.ESCALATE, escalation_minutes(e.at_percent, minutes), e.at_percent, e.action)
            for e in policy.escalations
            if e.target is cycle.target
        )
        for kind, threshold, at_percent, action in points:
            key = done_key(kind, cycle.target, cycle.number, at_percent, action)
            if key in self.done:
                continue
            if kind is EventKind.ESCALATE and cycle.status is ClockStatus.FULFILLED:
                continue  # an escalation is a warning: too late once the target is met
            at = cycle.reached_at(policy.calendar, timedelta(minutes=threshold))
            if at is not None:
                found.append(Deadline(kind, cycle.target, cycle.number, at, at_percent, action))
        return found
