"""Due times of the clock for a matrix of calendars, targets and pauses, each against the
minute-by-minute reference: a minute counts when it is business time and the ticket
is not paused. The calendars cross a DST change (Berlin, New York), a half-hour shift
(Lord Howe) and a public holiday; the pauses include a ticket pending over a weekend."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from app.sla.business_time import Calendar
from app.sla.clock import Clock, Event, EventKind, Policy, Target
from tests.support.business_time import MINUTE, is_business, local, weekly

OFFICE = {d: [("09:00", "17:00")] for d in range(5)}
# (calendar, a start: the Friday afternoon before a clock change or a holiday)
CALENDARS: dict[str, tuple[Calendar, datetime]] = {
    "24/7 UTC": (Calendar.always(), local("UTC", 2026, 3, 27, 14, 0)),
    "Berlin office, spring forward": (
        weekly("Europe/Berlin", OFFICE),
        local("Europe/Berlin", 2026, 3, 27, 14, 0),
    ),
    "New York office, fall back": (
        weekly("America/New_York", OFFICE),
        local("America/New_York", 2026, 10, 30, 14, 0),
    ),
    "Lord Howe around the clock, half-hour shift": (
        weekly("Australia/Lord_Howe", {d: [("00:00", "24:00")] for d in range(7)}),
        local("Australia/Lord_Howe", 2026, 4, 3, 14, 0),
    ),
    "Berlin office, Easter Monday closed": (
        weekly("Europe/Berlin", OFFICE, closed=frozenset({local("UTC", 2026, 4, 6).date()})),
        local("Europe/Berlin", 2026, 4, 2, 15, 0),
    ),
}
TARGETS = [30, 8 * 60, 3 * 8 * 60]
# Pauses as (from, to) offsets from the start.
PAUSES: dict[str, list[tuple[timedelta, timedelta]]] = {
    "never paused": [],
    "pending two hours": [(timedelta(minutes=20), timedelta(hours=2, minutes=20))],
    "pending over the weekend": [(timedelta(hours=2), timedelta(days=3, hours=1))],
    "pending twice": [
        (timedelta(minutes=10), timedelta(minutes=40)),
        (timedelta(hours=20), timedelta(hours=30)),
    ],
}


def reference(
    calendar: Calendar, start: datetime, minutes: int, pauses: list[tuple[datetime, datetime]]
) -> datetime:
    moment, counted = start, 0
    while True:
        paused = any(begin <= moment < end for begin, end in pauses)
        if not paused and is_business(calendar, moment):
            counted += 1
            if counted == minutes:
                return moment + MINUTE
        moment += MINUTE


@pytest.mark.parametrize("pause_name", PAUSES)
@pytest.mark.parametrize("minutes", TARGETS)
@pytest.mark.parametrize("calendar_name", CALENDARS)
def test_resolution_due_matches_the_reference(
    calendar_name: str, minutes: int, pause_name: str
) -> None:
    calendar, start = CALENDARS[calendar_name]
    pauses = [(start + a, start + b) for a, b in PAUSES[pause_name]]
    events = [Event(EventKind.START, start, Target.RESOLUTION)]
    for begin, end in pauses:
        events += [
            Event(EventKind.PAUSE, begin, Target.RESOLUTION),
            Event(EventKind.RESUME, end, Target.RESOLUTION),
        ]
    policy = Policy(
        minutes={Target.FIRST_RESPONSE: None, Target.NEXT_REPLY: None, Target.RESOLUTION: minutes},
        calendar=calendar,
    )
    due = Clock(events).summarize(policy).resolution_due_at
    expected = reference(calendar, start, minutes, pauses)
    assert due == expected
