"""Business-time arithmetic against a minute-by-minute reference, and the named cases
where helpdesks get it wrong (DST days, half-hour shifts, holidays, interval ends)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.sla.business_time import (
    Calendar,
    Interval,
    NeverOpen,
    add_business_time,
    business_time_between,
)
from tests.support.business_time import (
    MINUTE,
    SUNDAY,
    local,
    reference_between,
    reference_due,
    weekly,
)

# DST changes of 2026 by zone, where the arithmetic is most often wrong.
TRANSITIONS: dict[str, list[date]] = {
    "UTC": [],
    "Asia/Kolkata": [],
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1)],
    "Europe/Berlin": [date(2026, 3, 29), date(2026, 10, 25)],
    "Australia/Lord_Howe": [date(2026, 4, 5), date(2026, 10, 4)],  # half-hour shifts
}


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Calendar, datetime]:
    """A random calendar and a minute instant of 2026 to start from; half the time the
    start is within two days of one of the zone's DST changes."""
    zone = draw(st.sampled_from(sorted(TRANSITIONS)))
    intervals: list[Interval] = []
    # The changes happen on Sundays between 01:00 and 03:00 local: cuts fall there
    # often, so that interval ends land in repeated and skipped hours.
    for weekday in draw(st.sets(st.integers(0, 6), min_size=3)) | {SUNDAY}:
        quarter = st.integers(0, 96) | st.integers(4, 12)
        cuts = sorted(draw(st.sets(quarter, min_size=2, max_size=6)))
        # Quarter hours, sometimes ending at 24:00; pairs of cuts are the intervals.
        for start, end in zip(cuts[::2], cuts[1::2], strict=False):
            intervals.append(Interval(weekday, start * 15, end * 15))
    closed = draw(st.frozensets(st.dates(date(2026, 1, 1), date(2026, 12, 31)), max_size=20))
    if TRANSITIONS[zone] and draw(st.booleans()):
        day = draw(st.sampled_from(TRANSITIONS[zone])) + timedelta(days=draw(st.integers(-2, 0)))
    else:
        day = draw(st.dates(date(2026, 1, 1), date(2026, 12, 1)))
    start = datetime.combine(day, time(), tzinfo=UTC) + draw(st.integers(0, 1439)) * MINUTE
    return Calendar(ZoneInfo(zone), tuple(intervals), closed), start


def _weekly_minutes(calendar: Calendar) -> int:
    return sum(interval.end - interval.start for interval in calendar.intervals)


PROPERTY = settings(
    max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


@PROPERTY
@given(scenario=scenarios(), minutes=st.integers(1, 900))
def test_due_time_matches_the_minute_by_minute_reference(
    scenario: tuple[Calendar, datetime], minutes: int
) -> None:
    calendar, start = scenario
    if _weekly_minutes(calendar) < 240:  # keeps the reference's walk short
        return
    due = add_business_time(calendar, start, minutes * MINUTE)
    assert due == reference_due(calendar, start, minutes)
    assert business_time_between(calendar, start, due) == minutes * MINUTE


@PROPERTY
@given(scenario=scenarios(), length=st.integers(0, 4 * 24 * 60))
def test_business_time_between_matches_the_reference(
    scenario: tuple[Calendar, datetime], length: int
) -> None:
    calendar, start = scenario
    end = start + length * MINUTE
    assert business_time_between(calendar, start, end) == reference_between(calendar, start, end)


# --- named cases ---------------------------------------------------------------------------


def test_new_york_spring_forward_interval_lasts_its_real_time() -> None:
    # 01:00 EST → 04:00 EDT on 2026-03-08: two real hours, not three.
    calendar = weekly("America/New_York", {SUNDAY: [("01:00", "04:00")]})
    start = local("America/New_York", 2026, 3, 8, 1, 0)
    assert business_time_between(calendar, start, start + timedelta(hours=5)) == timedelta(hours=2)
    # Used up exactly at the interval's end: due at that end, not next Sunday.
    due = add_business_time(calendar, start, timedelta(hours=2))
    assert due == datetime(2026, 3, 8, 8, 0, tzinfo=UTC)
    assert add_business_time(calendar, start, timedelta(hours=2, minutes=1)) == datetime(
        2026, 3, 15, 5, 1, tzinfo=UTC
    )


def test_intervals_that_overlap_as_instants_count_once() -> None:
    # On 2026-03-08 New York skips 02:00-03:00: 00:00-02:15 ends at 02:15 read as EST,
    # i.e. 03:15 EDT, over the 03:00-03:15 interval. Found by the property test.
    calendar = weekly("America/New_York", {SUNDAY: [("00:00", "02:15"), ("03:00", "03:15")]})
    start = datetime(2026, 3, 8, tzinfo=UTC)
    assert calendar.open_spans(date(2026, 3, 8)) == [
        (datetime(2026, 3, 8, 5, 0, tzinfo=UTC), datetime(2026, 3, 8, 7, 15, tzinfo=UTC))
    ]
    assert business_time_between(calendar, start, start + timedelta(days=1)) == timedelta(
        hours=2, minutes=15
    )
    assert add_business_time(calendar, start, timedelta(hours=2, minutes=15)) == datetime(
        2026, 3, 8, 7, 15, tzinfo=UTC
    )


def test_new_york_fall_back_interval_lasts_its_real_time() -> None:
    # 01:00 EDT (fold=0) → 04:00 EST on 2026-11-01: four real hours.
    calendar = weekly("America/New_York", {SUNDAY: [("01:00", "04:00")]})
    day = datetime(2026, 11, 1, tzinfo=UTC)
    assert business_time_between(calendar, day, day + timedelta(days=1)) == timedelta(hours=4)
    assert add_business_time(calendar, day, timedelta(hours=4)) == datetime(
        2026, 11, 1, 9, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("day", "hours"),
    [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25), (date(2026, 3, 30), 24)],
)
def test_berlin_whole_days_across_dst(day: date, hours: int) -> None:
    calendar = weekly("Europe/Berlin", {d: [("00:00", "24:00")] for d in range(7)})
    start = datetime.combine(day, time(), tzinfo=ZoneInfo("Europe/Berlin"))
    end = datetime.combine(day + timedelta(days=1), time(), tzinfo=ZoneInfo("Europe/Berlin"))
    assert business_time_between(calendar, start, end) == timedelta(hours=hours)


@pytest.mark.parametrize(
    ("day", "length"),
    [
        (date(2026, 4, 5), timedelta(hours=24, minutes=30)),  # clocks go back half an hour
        (date(2026, 10, 4), timedelta(hours=23, minutes=30)),  # forward half an hour
    ],
)
def test_lord_howe_half_hour_shift(day: date, length: timedelta) -> None:
    zone = "Australia/Lord_Howe"
    calendar = weekly(zone, {SUNDAY: [("00:00", "24:00")]})
    start = datetime.combine(day, time(), tzinfo=ZoneInfo(zone))
    assert business_time_between(calendar, start, start + timedelta(days=2)) == length
    assert add_business_time(calendar, start, length) == datetime.combine(
        day + timedelta(days=1), time(), tzinfo=ZoneInfo(zone)
    ).astimezone(UTC)


OFFICE = {d: [("09:00", "17:00")] for d in range(5)}


def test_a_holiday_on_the_friday_before_a_weekend() -> None:
    # Good Friday 2026-04-03 closed: Thursday's last hour, then Monday.
    calendar = weekly("Europe/Berlin", OFFICE, closed=frozenset({date(2026, 4, 3)}))
    start = local("Europe/Berlin", 2026, 4, 2, 16, 0)
    assert add_business_time(calendar, start, timedelta(hours=2)) == local(
        "Europe/Berlin", 2026, 4, 6, 10, 0
    )


def test_a_countrys_public_holidays_close_their_dates() -> None:
    # Berlin's public holidays: Good Friday and Easter Monday 2026 both closed.
    calendar = weekly("Europe/Berlin", OFFICE, closed=holidays.country_holidays("DE", subdiv="BE"))
    start = local("Europe/Berlin", 2026, 4, 2, 16, 0)
    assert add_business_time(calendar, start, timedelta(hours=2)) == local(
        "Europe/Berlin", 2026, 4, 7, 10, 0
    )


def test_back_to_back_intervals_and_a_night_shift_run_on() -> None:
    calendar = weekly(
        "UTC",
        {0: [("09:00", "12:00"), ("12:00", "17:00"), ("22:00", "24:00")], 1: [("00:00", "06:00")]},
    )
    monday = datetime(2026, 1, 5, tzinfo=UTC)
    assert add_business_time(calendar, monday + timedelta(hours=11), timedelta(hours=3)) == (
        monday + timedelta(hours=14)
    )
    assert add_business_time(calendar, monday + timedelta(hours=23), timedelta(hours=2)) == (
        monday + timedelta(days=1, hours=1)
    )


def test_a_start_outside_hours_waits_for_the_next_interval() -> None:
    calendar = weekly("UTC", OFFICE)
    saturday = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    assert add_business_time(calendar, saturday, timedelta(minutes=30)) == datetime(
        2026, 1, 12, 9, 30, tzinfo=UTC
    )
    assert business_time_between(calendar, saturday, saturday + timedelta(hours=30)) == (
        timedelta(0)
    )


def test_a_month_on_an_hour_a_week_walks_intervals_not_minutes() -> None:
    calendar = weekly("Europe/Berlin", {2: [("10:00", "11:00")]})
    start = local("Europe/Berlin", 2026, 1, 1, 0, 0)
    due = add_business_time(calendar, start, timedelta(days=30))  # 720 weekly hours
    assert business_time_between(calendar, start, due) == timedelta(days=30)
    assert due.astimezone(ZoneInfo("Europe/Berlin")).time() == time(11, 0)


def test_24_7_is_wall_clock_time() -> None:
    start = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)
    assert add_business_time(Calendar.always(), start, timedelta(minutes=90)) == start + (
        timedelta(minutes=90)
    )


def test_whole_days_with_a_countrys_holidays_are_not_wall_clock_time() -> None:
    every_day = {d: [("00:00", "24:00")] for d in range(7)}
    assert weekly("Europe/Berlin", every_day).around_the_clock
    closed = weekly("Europe/Berlin", every_day, closed=holidays.country_holidays("DE"))
    assert not closed.around_the_clock
    christmas_eve = local("Europe/Berlin", 2026, 12, 24, 12, 0)
    # 12 hours of the 24th, then the 25th and 26th are closed.
    due = add_business_time(closed, christmas_eve, timedelta(hours=13))
    assert due == local("Europe/Berlin", 2026, 12, 27, 1, 0)


def test_a_calendar_that_never_opens_has_no_due_time() -> None:
    with pytest.raises(NeverOpen):
        add_business_time(weekly("UTC", {}), datetime(2026, 1, 1, tzinfo=UTC), timedelta(minutes=1))


@pytest.mark.parametrize(
    "interval", [(7, 0, 60), (-1, 0, 60), (0, 60, 60), (0, 120, 60), (0, 0, 1441)]
)
def test_invalid_intervals_are_refused(interval: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match=r"interval|weekday"):
        Interval(*interval)


def test_overlapping_intervals_are_refused() -> None:
    with pytest.raises(ValueError, match="overlap"):
        weekly("UTC", {0: [("09:00", "12:00"), ("11:00", "13:00")]})
