"""Business hours: the calendars SLA clocks run on. Names are unique per organization
(case-insensitive, live rows); a holiday subdivision belongs to the calendar's holiday
country. `calendar_of` turns a stored calendar into the `Calendar` the business-time
arithmetic (`app.sla.business_time`) counts on."""

from __future__ import annotations

import uuid
from collections.abc import Container
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from sqlalchemy.ext.asyncio import AsyncSession

from app.business_hours.repository import BusinessHoursRepository
from app.business_hours.schemas import (
    BusinessHoursCreate,
    BusinessHoursUpdate,
    minutes_of,
    subdivision_problem,
)
from app.db.unit_of_work import UnitOfWork
from app.kit.errors import ValidationFailed
from app.kit.pagination import PageParams, PageResult
from app.kit.records import apply_changes, field_error
from app.kit.repository import Record
from app.models.sla import BusinessHours
from app.sla.business_time import Calendar, Interval
from app.sla.recompute import CALENDAR_MEASURE_FIELDS, calendar_changed

CALENDAR_FIELDS = ("timezone", "intervals", "holidays", "holiday_country", "holiday_subdivision")


async def list_business_hours(
    session: AsyncSession, page: PageParams, *, q: str | None = None, include_deleted: bool = False
) -> PageResult[Record]:
    return await BusinessHoursRepository(session).list_page(
        page, q=q, include_deleted=include_deleted
    )


async def get_business_hours(
    session: AsyncSession, hours_id: uuid.UUID, *, include_deleted: bool = False
) -> BusinessHours:
    return await BusinessHoursRepository(session).get(hours_id, include_deleted=include_deleted)


async def create_business_hours(session: AsyncSession, data: BusinessHoursCreate) -> BusinessHours:
    calendars = BusinessHoursRepository(session)
    await calendars.check_name_free(data.name)
    hours = BusinessHours(**data.stored())
    session.add(hours)
    await session.flush()
    return hours


async def update_business_hours(
    uow: UnitOfWork, hours_id: uuid.UUID, data: BusinessHoursUpdate
) -> BusinessHours:
    """A change of the hours (zone, intervals, holidays) is applied to the open tickets
    of every policy counting in the calendar, after the commit."""
    calendars = BusinessHoursRepository(uow.session)
    hours = await calendars.get(hours_id)
    changes = data.changes()
    if {"holiday_country", "holiday_subdivision"} & changes.keys():
        _check_subdivision(
            changes.get("holiday_country", hours.holiday_country),
            changes.get("holiday_subdivision", hours.holiday_subdivision),
        )
    if "name" in changes:
        await calendars.check_name_free(changes["name"], exclude=hours.id)
    measured = {name: getattr(hours, name) for name in CALENDAR_MEASURE_FIELDS}
    apply_changes(hours, changes)
    await uow.session.flush()
    if any(getattr(hours, name) != value for name, value in measured.items()):
        await calendar_changed(uow, hours.id, "calendar_changed")
    return hours


async def delete_business_hours(uow: UnitOfWork, hours_id: uuid.UUID) -> None:
    """Soft: SLA policies that name the calendar keep their `business_hours_id` and
    count 24/7 until it is restored (their open tickets are recomputed either way)."""
    (await get_business_hours(uow.session, hours_id)).soft_delete()
    await uow.session.flush()
    await calendar_changed(uow, hours_id, "calendar_deleted")


async def restore_business_hours(uow: UnitOfWork, hours_id: uuid.UUID) -> BusinessHours:
    calendars = BusinessHoursRepository(uow.session)
    hours = await calendars.get(hours_id, include_deleted=True)
    if hours.is_deleted:
        await calendars.check_name_free(hours.name, exclude=hours.id)
        hours.restore()
        await uow.session.flush()
        await calendar_changed(uow, hours.id, "calendar_restored")
    return hours


def _check_subdivision(country: str | None, subdivision: str | None) -> None:
    """The pair a PATCH leaves: what it sends over what is stored."""
    problem = subdivision_problem(country, subdivision)
    if problem is not None:
        raise ValidationFailed(
            "The holiday subdivision does not fit the holiday country.",
            errors=[field_error("holiday_subdivision", problem)],
        )


# --- the calendar the arithmetic counts on ---------------------------------------------


@dataclass(frozen=True, slots=True)
class ClosedDates:
    """Closed local dates: the calendar's own, and a country's public holidays (which
    the `holidays` object computes year by year as dates are asked about)."""

    explicit: frozenset[date]
    public: Container[date]

    def __contains__(self, day: object) -> bool:
        return day in self.explicit or day in self.public


@lru_cache(maxsize=512)
def public_holidays(country: str, subdivision: str | None) -> holidays.HolidayBase:
    """A country's public holidays, one table per process: the package works a year out
    on its first look-up there, which costs more than the rest of a request, and keeps
    it for the next."""
    return holidays.country_holidays(country, subdiv=subdivision)


def calendar_of(hours: BusinessHours | Record) -> Calendar:
    """The `Calendar` of a stored calendar, an ORM object or a row dict alike."""
    if isinstance(hours, dict):
        fields = hours
    else:
        fields = {name: getattr(hours, name) for name in CALENDAR_FIELDS}
    intervals = tuple(
        Interval(item["weekday"], minutes_of(item["start"]), minutes_of(item["end"]))
        for item in fields["intervals"]
    )
    explicit = frozenset(date.fromisoformat(day) for day in fields["holidays"])
    closed: Container[date] = explicit
    if fields["holiday_country"] is not None:
        # Observed days included (the default): a holiday moved off a weekend closes the
        # day the country takes off instead.
        public = public_holidays(fields["holiday_country"], fields["holiday_subdivision"])
        closed = ClosedDates(explicit, public)
    return Calendar(ZoneInfo(fields["timezone"]), intervals, closed)
