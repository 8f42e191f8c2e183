"""Business time: how SLA clocks count. Pure, no I/O.

A calendar is an IANA time zone, weekly intervals of local wall-clock time and closed
local dates (holidays). Business time is the real elapsed time that falls inside an
interval. An interval's ends are local wall-clock times made instants the way
`zoneinfo` does with `fold=0`, so across a DST change an interval lasts the real time
between its two ends (an hour more or less), and an end of `24:00` is the next day's
midnight. A due time is the earliest instant at which the business time since the start
reaches the target: a start outside hours waits for the next interval, and a target used
up exactly at an interval's end is due at that end.

Both operations walk intervals, never minutes: each local day costs one lookup, so a
30-day target on a calendar open one hour a week is a few thousand steps.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 24 * 60
# A calendar that never opens (no intervals, or every date closed) has no due time:
# walking stops after this many local days instead of running forever.
HORIZON_DAYS = 366 * 30


class NeverOpen(ValueError):
    """The calendar has no business time within the horizon to reach the target in."""


@dataclass(frozen=True, slots=True)
class Interval:
    """Open on `weekday` (Monday = 0) from `start` to `end`, minutes after local midnight
    (`end` up to 1440, which is `24:00`)."""

    weekday: int
    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError("weekday must be 0 (Monday) to 6 (Sunday)")
        if not 0 <= self.start < self.end <= MINUTES_PER_DAY:
            raise ValueError("an interval ends after it starts, within one day")


@dataclass(frozen=True, slots=True)
class Calendar:
    zone: ZoneInfo
    intervals: tuple[Interval, ...]
    # Local dates on which no interval counts: a set, or anything answering `in`
    # (a `holidays` country calendar, which computes its years on demand).
    closed: Container[date] = frozenset()
    _by_weekday: tuple[tuple[Interval, ...], ...] = field(init=False, repr=False)
    # Every local day open from midnight to midnight and no date closed: business time
    # is wall-clock time (the days' spans meet end to start, DST days included).
    around_the_clock: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_weekday: list[list[Interval]] = [[] for _ in range(7)]
        for interval in self.intervals:
            by_weekday[interval.weekday].append(interval)
        for day in by_weekday:
            day.sort(key=lambda interval: interval.start)
            for earlier, later in pairwise(day):
                if later.start < earlier.end:
                    raise ValueError("intervals of one day must not overlap")
        object.__setattr__(self, "_by_weekday", tuple(tuple(day) for day in by_weekday))
        whole_days = all(
            [(i.start, i.end) for i in day] == [(0, MINUTES_PER_DAY)] for day in by_weekday
        )
        # A `holidays` calendar reads as empty until a year is asked for: only a plain
        # set is known to close nothing.
        nothing_closed = isinstance(self.closed, frozenset | set) and not self.closed
        object.__setattr__(self, "around_the_clock", whole_days and nothing_closed)

    @classmethod
    def always(cls) -> Calendar:
        """24/7: every instant is business time (a policy without business hours)."""
        return cls(ZoneInfo("UTC"), tuple(Interval(day, 0, MINUTES_PER_DAY) for day in range(7)))

    def open_spans(self, day: date) -> list[tuple[datetime, datetime]]:
        """The business time of local date `day` as disjoint (start, end) instants in
        UTC, in order. Intervals apart on the wall clock can overlap as instants (an end
        in a skipped hour reads an hour late): a moment counts once."""
        if day in self.closed:
            return []
        spans = sorted(
            (self._instant(day, interval.start), self._instant(day, interval.end))
            for interval in self._by_weekday[day.weekday()]
        )
        merged: list[tuple[datetime, datetime]] = []
        for start, end in spans:
            if end <= start:
                continue
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    def _instant(self, day: date, minutes: int) -> datetime:
        if minutes == MINUTES_PER_DAY:
            day, minutes = day + timedelta(days=1), 0
        wall = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=self.zone)
        return wall.astimezone(UTC)  # fold=0: zoneinfo's reading of a repeated or skipped time

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()


def add_business_time(calendar: Calendar, start: datetime, target: timedelta) -> datetime:
    """The instant at which `target` of business time has elapsed since `start`."""
    if start.tzinfo is None:
        raise ValueError("start must be an aware datetime")
    if target <= timedelta(0):
        raise ValueError("the target must be positive")
    start = start.astimezone(UTC)
    if calendar.around_the_clock:
        return start + target
    remaining = target
    # A span of the day before can reach past midnight only at `24:00`, which ends at
    # midnight; starting one day early is still the simple, safe choice across zones.
    first = calendar.local_date(start) - timedelta(days=1)
    counted_until = start  # business time before this instant is spent or not ours
    for offset in range(HORIZON_DAYS):
        for span_start, span_end in calendar.open_spans(first + timedelta(days=offset)):
            begin = max(span_start, counted_until)
            if span_end <= begin:
                continue
            available = span_end - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
            counted_until = span_end
    raise NeverOpen("the calendar has no business time to reach the target in")


def business_time_between(calendar: Calendar, start: datetime, end: datetime) -> timedelta:
    """The business time inside [start, end) (zero when end is not after start)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be aware datetimes")
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    total = timedelta(0)
    if end <= start:
        return total
    if calendar.around_the_clock:
        return end - start
    day = calendar.local_date(start) - timedelta(days=1)
    last = calendar.local_date(end) + timedelta(days=1)
    counted_until = start
    while day <= last:
        for span_start, span_end in calendar.open_spans(day):
            overlap = min(span_end, end) - max(span_start, counted_until)
            if overlap > timedelta(0):
                total += overlap
            counted_until = max(counted_until, span_end)
        day += timedelta(days=1)
    return total
