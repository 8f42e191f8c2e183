"""SLA clocks replayed from an event log: pauses over a weekend, policies applied to the
same log, breach and escalation points that fall due once and are then recorded, cycles
of the next reply, and a property tying the due time back to the running spans."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.sla.business_time import Calendar, Interval, business_time_between
from app.sla.clock import (
    Clock,
    ClockStatus,
    Deadline,
    Escalation,
    EscalationAction,
    Event,
    EventKind,
    Policy,
    Target,
    done_key,
    escalation_minutes,
)

MINUTE = timedelta(minutes=1)
BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = Calendar(BERLIN, tuple(Interval(day, 9 * 60, 17 * 60) for day in range(5)))
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

START, PAUSE, RESUME, FULFIL = EventKind.START, EventKind.PAUSE, EventKind.RESUME, EventKind.FULFIL
STOP, BREACH, ESCALATE = EventKind.STOP, EventKind.BREACH, EventKind.ESCALATE
FIRST, NEXT, RESOLUTION = Target.FIRST_RESPONSE, Target.NEXT_REPLY, Target.RESOLUTION


def at(minutes: int) -> datetime:
    return T0 + minutes * MINUTE


def always(**minutes: int) -> Policy:
    return Policy({Target(name): value for name, value in minutes.items()}, Calendar.always())


def test_a_resolution_paused_over_a_weekend_rolls_to_tuesday() -> None:
    # The DST weekend of 2026 in Berlin: Friday is UTC+1, Monday UTC+2; wall time counts.
    events = [
        Event(START, datetime(2026, 3, 27, 16, 0, tzinfo=BERLIN), RESOLUTION),
        Event(PAUSE, datetime(2026, 3, 27, 16, 30, tzinfo=BERLIN), RESOLUTION),
    ]
    policy = Policy({RESOLUTION: 480}, OFFICE)
    # Paused: nothing is due and no point can be reached.
    paused = Clock(events).summarize(policy)
    assert paused.resolution_due_at is None
    assert paused.deadlines == ()
    events.append(Event(RESUME, datetime(2026, 3, 30, 10, 0, tzinfo=BERLIN), RESOLUTION))
    # 30 min on Friday, Monday 10:00-17:00 (7 h), the last 30 min on Tuesday morning.
    due = datetime(2026, 3, 31, 9, 30, tzinfo=BERLIN)
    summary = Clock(events).summarize(policy)
    assert summary.resolution_due_at == due
    assert due == datetime(2026, 3, 31, 7, 30, tzinfo=UTC)
    assert summary.deadlines == (Deadline(BREACH, RESOLUTION, 0, due),)


def test_another_policy_replays_the_same_spans() -> None:
    # Running 0-20 and from 60 on: the 40 paused minutes never count, whatever the target.
    events = [Event(START, at(0), RESOLUTION), Event(PAUSE, at(20), RESOLUTION)]
    events.append(Event(RESUME, at(60), RESOLUTION))
    clock = Clock(events)
    short = clock.summarize(always(resolution=60)).resolution_due_at
    long = clock.summarize(always(resolution=120)).resolution_due_at
    assert (short, long) == (at(100), at(160))
    assert short is not None
    assert long is not None
    assert long - short == timedelta(minutes=60)
    for due, minutes in ((short, 60), (long, 120)):
        running = business_time_between(Calendar.always(), at(0), at(20))
        running += business_time_between(Calendar.always(), at(60), due)
        assert running == timedelta(minutes=minutes)


def test_a_first_response_in_time_leaves_nothing_pending() -> None:
    summary = Clock([Event(START, at(0), FIRST), Event(FULFIL, at(30), FIRST)]).summarize(
        always(first_response=60)
    )
    assert summary.deadlines == ()
    assert not summary.breached
    # A fulfilled cycle still shows the due time it had, for reports to compare with.
    assert summary.first_response_due_at == at(60)


def test_a_late_first_response_is_due_at_its_threshold_until_recorded() -> None:
    events = [Event(START, at(0), FIRST), Event(FULFIL, at(90), FIRST)]
    policy = always(first_response=60)
    # A worker that wakes after the reply still flags the breach, at the instant it fell.
    late = Clock(events).summarize(policy)
    assert late.deadlines == (Deadline(BREACH, FIRST, 0, at(60)),)
    assert not late.breached
    recorded = Clock([*events, Event(BREACH, at(91), FIRST)]).summarize(policy)
    assert recorded.deadlines == ()
    assert recorded.breached


def test_an_escalation_falls_due_at_its_percentage_until_recorded() -> None:
    notify = Escalation(RESOLUTION, 50, EscalationAction.NOTIFY)
    policy = Policy({RESOLUTION: 100}, Calendar.always(), (notify,))
    events = [Event(START, at(0), RESOLUTION)]
    escalate = Deadline(ESCALATE, RESOLUTION, 0, at(50), 50, EscalationAction.NOTIFY)
    breach = Deadline(BREACH, RESOLUTION, 0, at(100))
    assert Clock(events).summarize(policy).deadlines == (escalate, breach)
    events.append(Event(ESCALATE, at(51), RESOLUTION, 0, 50, EscalationAction.NOTIFY))
    assert Clock(events).summarize(policy).deadlines == (breach,)
    assert escalate.key == done_key(ESCALATE, RESOLUTION, 0, 50, EscalationAction.NOTIFY)


def test_an_escalation_is_too_late_once_the_target_is_met() -> None:
    # Reached at 50 min and fulfilled after it: the warning has nothing left to warn of.
    policy = Policy(
        {RESOLUTION: 100},
        Calendar.always(),
        (Escalation(RESOLUTION, 50, EscalationAction.NOTIFY),),
    )
    met = [Event(START, at(0), RESOLUTION), Event(FULFIL, at(70), RESOLUTION)]
    assert Clock(met).summarize(policy).deadlines == ()
    # Met late: the breach is still owed, the escalation is not.
    late = [Event(START, at(0), RESOLUTION), Event(FULFIL, at(120), RESOLUTION)]
    assert Clock(late).summarize(policy).deadlines == (Deadline(BREACH, RESOLUTION, 0, at(100)),)


def test_escalation_minutes_round_up_to_a_whole_minute() -> None:
    assert escalation_minutes(75, 10) == 8  # 7.5 rounds up: never before 75 %
    assert escalation_minutes(50, 100) == 50
    assert escalation_minutes(1, 10) == 1  # 0.1 min is still at least a minute in


def test_next_reply_cycles_count_up_and_breach_once_each() -> None:
    events = [
        Event(START, at(0), NEXT, 0),
        Event(FULFIL, at(45), NEXT, 0),  # late: 30 min target
        Event(BREACH, at(46), NEXT, 0),
        Event(START, at(60), NEXT, 1),
    ]
    clock = Clock(events)
    current = clock.current(NEXT)
    assert current is not None
    assert (current.number, current.status) == (1, ClockStatus.RUNNING)
    assert clock.next_cycle(NEXT) == 2
    assert clock.is_open(NEXT)
    # Cycle 0's recorded breach does not cover cycle 1: each cycle has its own key.
    assert done_key(BREACH, NEXT, 0) != done_key(BREACH, NEXT, 1)
    summary = clock.summarize(always(next_reply=30))
    assert summary.next_reply_due_at == at(90)
    assert summary.deadlines == (Deadline(BREACH, NEXT, 1, at(90)),)


def test_stop_ends_a_cycle_with_nothing_owed() -> None:
    # Stopped after the target was reached (a cancelled ticket): no breach to flag.
    events = [Event(START, at(0), RESOLUTION), Event(STOP, at(200), RESOLUTION)]
    policy = always(resolution=100)
    clock = Clock([*events, Event(RESUME, at(300), RESOLUTION)])  # a stop is final
    summary = clock.summarize(policy)
    assert summary.resolution_due_at is None
    assert summary.deadlines == ()
    assert not clock.is_open(RESOLUTION)


def test_next_deadline_is_the_earliest_pending() -> None:
    policy = Policy(
        {FIRST: 30, RESOLUTION: 100},
        Calendar.always(),
        (Escalation(RESOLUTION, 20, EscalationAction.REASSIGN),),
    )
    events = [Event(START, at(0), RESOLUTION), Event(START, at(5), FIRST)]
    summary = Clock(events).summarize(policy)
    assert [d.at for d in summary.deadlines] == [at(20), at(35), at(100)]
    assert summary.next_deadline == at(20)
    assert Clock([]).summarize(policy).next_deadline is None


# --- the property: the due time is where the running spans add up to the target ----------

ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe"]
# Days shortly before the DST changes of 2026, so that ten days often cross one.
NEAR_DST = [date(2026, 3, 2), date(2026, 3, 24), date(2026, 3, 31), date(2026, 10, 20)]


@st.composite
def calendars(draw: st.DrawFn) -> Calendar:
    intervals = []
    for weekday in draw(st.sets(st.integers(0, 6), min_size=1, max_size=5)):
        start, end = sorted(draw(st.sets(st.integers(0, 96), min_size=2, max_size=2)))
        intervals.append(Interval(weekday, start * 15, end * 15))
    return Calendar(ZoneInfo(draw(st.sampled_from(ZONES))), tuple(intervals))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(
    calendar=calendars(),
    day=st.sampled_from(NEAR_DST) | st.dates(date(2026, 1, 1), date(2026, 12, 20)),
    offsets=st.lists(st.integers(0, 10 * 24 * 60), min_size=1, max_size=9),
    minutes=st.integers(1, 3000),
)
def test_due_time_is_where_the_running_spans_reach_the_target(
    calendar: Calendar, day: date, offsets: list[int], minutes: int
) -> None:
    base = datetime.combine(day, time(), tzinfo=UTC)
    instants = [base + offset * MINUTE for offset in sorted(offsets)]
    # Start, then pause/resume pairs: an odd count of instants ends running.
    instants = instants[: len(instants) - (len(instants) + 1) % 2]
    kinds = [START] + [PAUSE, RESUME] * (len(instants) // 2)
    clock = Clock(Event(k, t, RESOLUTION) for k, t in zip(kinds, instants, strict=True))
    due = clock.summarize(Policy({RESOLUTION: minutes}, calendar)).resolution_due_at
    assert due is not None  # some interval opens every week
    spans = list(zip(instants[::2], [*instants[1::2], due], strict=True))

    def running_until(end: datetime) -> timedelta:
        return sum(
            (business_time_between(calendar, a, min(b, end)) for a, b in spans), timedelta(0)
        )

    assert running_until(due) == minutes * MINUTE
    assert running_until(due - MINUTE) < minutes * MINUTE  # and not a minute later than needed
