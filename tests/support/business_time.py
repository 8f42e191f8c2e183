"""Business time from its definition, minute by minute: the reference the arithmetic
and the clock are checked against, and calendars written compactly."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.sla.business_time import Calendar, Interval

MINUTE = timedelta(minutes=1)
SUNDAY = 6


def hm(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def weekly(zone: str, spans: dict[int, list[tuple[str, str]]], **kwargs: object) -> Calendar:
    intervals = tuple(
        Interval(day, hm(start), hm(end)) for day, pairs in spans.items() for start, end in pairs
    )
    return Calendar(ZoneInfo(zone), intervals, **kwargs)  # type: ignore[arg-type]


def local(zone: str, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=ZoneInfo(zone))  # type: ignore[misc]


# --- the reference: minute by minute, from the definition --------------------------------


def is_business(calendar: Calendar, moment: datetime) -> bool:
    """Whether the minute starting at `moment` is inside an interval, straight from the
    definition: some open local date's interval, its ends read with fold=0."""
    today = moment.astimezone(calendar.zone).date()
    for day in (today - timedelta(days=1), today):
        if day in calendar.closed:
            continue
        for interval in calendar.intervals:
            if interval.weekday != day.weekday():
                continue
            ends = []
            for minutes in (interval.start, interval.end):
                when = day + timedelta(days=minutes // 1440)
                wall = time((minutes % 1440) // 60, minutes % 60)
                ends.append(datetime.combine(when, wall, tzinfo=calendar.zone).astimezone(UTC))
            if ends[0] <= moment < ends[1]:
                return True
    return False


def reference_due(calendar: Calendar, start: datetime, minutes: int) -> datetime:
    moment, counted = start, 0
    while True:
        if is_business(calendar, moment):
            counted += 1
            if counted == minutes:
                return moment + MINUTE
        moment += MINUTE


def reference_between(calendar: Calendar, start: datetime, end: datetime) -> timedelta:
    moment, counted = start, 0
    while moment < end:
        counted += is_business(calendar, moment)
        moment += MINUTE
    return counted * MINUTE
