"""`calendar_of`: a stored calendar as the business-time arithmetic counts it — its zone,
its intervals in minutes, its own closed dates and its country's public holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa

from app.business_hours.service import calendar_of
from app.db.database import Database
from app.models.sla import BusinessHours
from app.sla.business_time import Interval, add_business_time, business_time_between
from tests.support.identity import API, Tenant

BERLIN = ZoneInfo("Europe/Berlin")
NINE_TO_FIVE = [{"weekday": day, "start": "09:00", "end": "17:00"} for day in range(5)]


def stored(**fields: Any) -> dict[str, Any]:
    """A row dict as `select_rows` returns it."""
    return {
        "name": "Office",
        "timezone": "Europe/Berlin",
        "intervals": NINE_TO_FIVE,
        "holidays": [],
        "holiday_country": None,
        "holiday_subdivision": None,
        **fields,
    }


def test_zone_and_intervals_in_minutes() -> None:
    calendar = calendar_of(
        stored(
            intervals=[
                {"weekday": 0, "start": "08:30", "end": "12:00"},
                {"weekday": 6, "start": "22:15", "end": "24:00"},
            ]
        )
    )
    assert calendar.zone == BERLIN
    assert calendar.intervals == (Interval(0, 510, 720), Interval(6, 1335, 1440))


def test_an_orm_object_and_its_row_give_the_same_calendar() -> None:
    fields = stored(holidays=["2025-06-02"], holiday_country="FR")
    orm = BusinessHours(**fields)
    from_row, from_object = calendar_of(fields), calendar_of(orm)
    assert (from_object.zone, from_object.intervals) == (from_row.zone, from_row.intervals)
    for day in (date(2025, 6, 2), date(2025, 7, 14), date(2025, 7, 15)):
        assert (day in from_object.closed) == (day in from_row.closed)


def test_explicit_dates_are_closed() -> None:
    calendar = calendar_of(stored(holidays=["2025-12-24", "2025-12-31"]))
    assert date(2025, 12, 24) in calendar.closed
    assert date(2025, 12, 31) in calendar.closed
    assert date(2025, 12, 23) not in calendar.closed
    assert date(2025, 4, 18) not in calendar.closed  # Good Friday: no country, no closing
    assert list(calendar.open_spans(date(2025, 12, 24))) == []


def test_a_country_closes_its_public_holidays() -> None:
    calendar = calendar_of(stored(holidays=["2025-12-24"], holiday_country="DE"))
    assert date(2025, 4, 18) in calendar.closed  # Good Friday
    assert date(2025, 4, 21) in calendar.closed  # Easter Monday
    assert date(2026, 4, 3) in calendar.closed  # Good Friday, another year
    assert date(2025, 10, 3) in calendar.closed  # German Unity Day
    assert date(2025, 12, 24) in calendar.closed  # the calendar's own date, still
    assert date(2025, 4, 17) not in calendar.closed
    assert date(2025, 8, 15) not in calendar.closed  # Assumption: Bavaria's, not Germany's


def test_a_subdivision_adds_its_regional_holidays() -> None:
    bavaria = calendar_of(stored(holiday_country="DE", holiday_subdivision="BY"))
    berlin = calendar_of(stored(holiday_country="DE", holiday_subdivision="BE"))
    assert date(2025, 1, 6) in bavaria.closed  # Epiphany
    assert date(2025, 1, 6) not in berlin.closed
    assert date(2025, 3, 8) in berlin.closed  # International Women's Day
    assert date(2025, 4, 18) in bavaria.closed and date(2025, 4, 18) in berlin.closed


def test_observed_days_close_too() -> None:
    """Independence Day 2026 is a Saturday; the United States take Friday off."""
    calendar = calendar_of(stored(timezone="America/New_York", holiday_country="US"))
    assert date(2026, 7, 4) in calendar.closed
    assert date(2026, 7, 3) in calendar.closed


def test_due_times_skip_the_closed_days() -> None:
    """Thursday before Easter 2025, 16:00 in Berlin: one hour left that day, then Good
    Friday, the weekend and Easter Monday are closed; the second hour ends Tuesday 10:00."""
    calendar = calendar_of(stored(holiday_country="DE"))
    start = datetime(2025, 4, 17, 16, 0, tzinfo=BERLIN)
    due = add_business_time(calendar, start, timedelta(hours=2))
    assert due == datetime(2025, 4, 22, 10, 0, tzinfo=BERLIN)
    assert business_time_between(calendar, start, due) == timedelta(hours=2)
    without = calendar_of(stored())
    assert add_business_time(without, start, timedelta(hours=2)) == datetime(
        2025, 4, 18, 10, 0, tzinfo=BERLIN
    )


async def test_a_calendar_made_through_the_api_counts(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    response = await client.post(
        f"{API}/business-hours",
        json={
            "name": "Munich",
            "timezone": "Europe/Berlin",
            "intervals": [{"weekday": 0, "start": "09:00", "end": "10:00"}],
            "holidays": ["2025-01-13"],
            "holiday_country": "DE",
            "holiday_subdivision": "BY",
        },
        headers=tenant_a["admin"].headers,
    )
    assert response.status_code == 201, response.text
    async with database.tenant_session(tenant_a.org.id) as session:
        row = await session.scalar(
            sa.select(BusinessHours).where(BusinessHours.id == response.json()["id"])
        )
    assert row is not None
    calendar = calendar_of(row)
    # Mondays only: 13 January is the calendar's own holiday, 6 January is Epiphany.
    start = datetime(2025, 1, 1, tzinfo=UTC)
    assert add_business_time(calendar, start, timedelta(minutes=30)) == datetime(
        2025, 1, 20, 9, 30, tzinfo=BERLIN
    )
