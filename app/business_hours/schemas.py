"""Business-hours bodies: a calendar's shape is checked here (wall-clock times, intervals
that do not overlap, real dates, a country and subdivision the `holidays` package
knows); whether a PATCH's subdivision fits the stored country is the service's call,
because a PATCH does not carry the fields it leaves out."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from functools import lru_cache
from itertools import pairwise
from typing import Annotated, Any, ClassVar

import holidays
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationInfo,
    field_validator,
)

from app.kit.schemas import InputModel, PatchModel, ReadModel, Timezone, Title

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MAX_INTERVALS = 200
MAX_HOLIDAYS = 1_000
SUBDIVISION_MAX_LENGTH = 10  # the column's width

# `[0-9]`, not `\d`: the pattern engine reads `\d` as any Unicode digit.
START_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
END_PATTERN = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def minutes_of(clock: str) -> int:
    """Minutes after local midnight of an `HH:MM` wall-clock time (`24:00` is 1440)."""
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


# Strict: `true` is not a weekday (lax mode would read it as 1), nor is "1".
Weekday = Annotated[int, Field(strict=True, ge=0, le=6, description="0 = Monday … 6 = Sunday.")]
Start = Annotated[str, Field(pattern=START_PATTERN, description="`HH:MM`, 00:00 to 23:59.")]
End = Annotated[
    str,
    Field(pattern=END_PATTERN, description="`HH:MM` after `start`; `24:00` is midnight."),
]


class BusinessInterval(InputModel):
    """Open on `weekday` from `start` to `end`, local wall-clock time, within one day (a
    night shift is two intervals: until `24:00`, and from `00:00` the next day)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"weekday": 0, "start": "09:00", "end": "17:00"}]}
    )

    weekday: Weekday
    start: Start
    end: End

    @field_validator("end")
    @classmethod
    def _after_start(cls, end: str, info: ValidationInfo) -> str:
        start = info.data.get("start")
        if start is not None and minutes_of(end) <= minutes_of(start):
            raise ValueError(f"must be after start ({start}); an interval stays within one day")
        return end


def _without_overlaps(intervals: list[BusinessInterval]) -> list[BusinessInterval]:
    """Sorted by weekday and start (the order they are stored and returned in); intervals
    of one weekday may touch but not overlap."""
    ordered = sorted(intervals, key=lambda i: (i.weekday, minutes_of(i.start)))
    for earlier, later in pairwise(ordered):
        if later.weekday == earlier.weekday and minutes_of(later.start) < minutes_of(earlier.end):
            raise ValueError(
                f"{WEEKDAYS[later.weekday]} {earlier.start}-{earlier.end} and "
                f"{later.start}-{later.end} overlap"
            )
    return ordered


Intervals = Annotated[
    list[BusinessInterval],
    Field(min_length=1, max_length=MAX_INTERVALS),
    AfterValidator(_without_overlaps),
]


def _iso_date_text(value: Any) -> Any:
    """What the document promises (`format: date`), not Pydantic's lax extras: a number
    would be read as seconds since 1970, a date-time as its date."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
        raise ValueError("must be an ISO 8601 date, e.g. 2025-12-25")
    return value


LocalDate = Annotated[date, BeforeValidator(_iso_date_text)]


def _sorted_dates(dates: list[date]) -> list[date]:
    # A date listed twice closes the day once: accepted, and stored once.
    return sorted(set(dates))


Holidays = Annotated[
    list[LocalDate],
    Field(
        max_length=MAX_HOLIDAYS,
        description="Local dates on which no interval counts, besides the country's public "
        "holidays. Stored sorted, each date once.",
    ),
    AfterValidator(_sorted_dates),
]


@lru_cache(maxsize=1)
def supported_regions() -> dict[str, frozenset[str]]:
    """ISO 3166-1 alpha-2 codes of the countries the `holidays` package computes, each
    with its subdivision codes (aliases such as `UK` for `GB` left out: one code each;
    the few subdivision names longer than the column left out too)."""
    return {
        country: frozenset(s for s in subdivisions if len(s) <= SUBDIVISION_MAX_LENGTH)
        for country, subdivisions in holidays.list_supported_countries(
            include_aliases=False
        ).items()
    }


def _known_country(code: str) -> str:
    if code not in supported_regions():
        raise ValueError(
            f"'{code}' is not a country with a public-holiday calendar "
            "(ISO 3166-1 alpha-2, e.g. DE, US)"
        )
    return code


Country = Annotated[
    str,
    Field(
        pattern=r"^[A-Z]{2}$",
        description="ISO 3166-1 alpha-2 code: its public holidays (observed days included) "
        "close the calendar too.",
    ),
    AfterValidator(_known_country),
]
Subdivision = Annotated[
    str,
    Field(
        min_length=1,
        max_length=SUBDIVISION_MAX_LENGTH,
        description="A subdivision code of `holiday_country` (e.g. `BY` for Bavaria in DE): "
        "its regional holidays count too. Needs `holiday_country`.",
    ),
]


def subdivision_problem(country: str | None, subdivision: str | None) -> str | None:
    """Why `subdivision` cannot go with `country`, or None when it can."""
    if subdivision is None:
        return None
    if country is None:
        return "a subdivision needs holiday_country"
    known = supported_regions().get(country, frozenset())
    if subdivision in known:
        return None
    if not known:
        return f"{country} has no subdivisions"
    return f"'{subdivision}' is not a subdivision of {country}; one of: {', '.join(sorted(known))}"


WEEKDAYS_9_TO_5: list[JsonValue] = [
    {"weekday": day, "start": "09:00", "end": "17:00"} for day in range(5)
]


class BusinessHoursCreate(InputModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Berlin office",
                    "timezone": "Europe/Berlin",
                    "intervals": [
                        *WEEKDAYS_9_TO_5[:4],
                        {"weekday": 4, "start": "09:00", "end": "12:30"},
                        {"weekday": 4, "start": "13:30", "end": "15:00"},
                    ],
                    "holidays": ["2025-12-24", "2025-12-31"],
                    "holiday_country": "DE",
                    "holiday_subdivision": "BE",
                },
                {
                    "name": "Night desk",
                    "timezone": "America/New_York",
                    "intervals": [
                        {"weekday": 0, "start": "22:00", "end": "24:00"},
                        {"weekday": 1, "start": "00:00", "end": "06:00"},
                    ],
                },
            ]
        }
    )

    name: Title
    timezone: Timezone = Field(description="IANA time zone of the intervals and holidays.")
    intervals: Intervals
    holidays: Holidays = []
    holiday_country: Country | None = None
    holiday_subdivision: Subdivision | None = None

    @field_validator("holiday_subdivision")
    @classmethod
    def _of_the_country(cls, subdivision: str | None, info: ValidationInfo) -> str | None:
        if "holiday_country" not in info.data:  # the country was refused: said there
            return subdivision
        problem = subdivision_problem(info.data["holiday_country"], subdivision)
        if problem is not None:
            raise ValueError(problem)
        return subdivision

    def stored(self) -> dict[str, Any]:
        """The columns' values: dates as ISO text, intervals as plain objects."""
        return self.model_dump(mode="json")


class BusinessHoursUpdate(PatchModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"holidays": ["2025-12-24", "2025-12-31", "2026-12-24"]},
                {"holiday_country": "US", "holiday_subdivision": "NY"},
                {"intervals": WEEKDAYS_9_TO_5, "timezone": "Europe/London"},
            ]
        }
    )

    __nullable__: ClassVar[frozenset[str]] = frozenset({"holiday_country", "holiday_subdivision"})

    name: Title | None = None
    timezone: Timezone | None = None
    intervals: Intervals | None = None
    holidays: Holidays | None = None
    holiday_country: Country | None = None
    holiday_subdivision: Subdivision | None = None

    def changes(self) -> dict[str, Any]:
        """The fields sent, in their stored form (dates as ISO text)."""
        return self.model_dump(mode="json", exclude_unset=True)


class BusinessIntervalRead(ReadModel):
    weekday: int
    start: str
    end: str


class BusinessHoursRead(ReadModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0191a3c5-3b4c-7d5e-8f6a-7b8c9d0e1fa6",
                    "name": "Berlin office",
                    "timezone": "Europe/Berlin",
                    "intervals": WEEKDAYS_9_TO_5,
                    "holidays": ["2025-12-24", "2025-12-31"],
                    "holiday_country": "DE",
                    "holiday_subdivision": "BE",
                    "created_at": "2024-11-02T08:00:00Z",
                    "updated_at": "2025-01-20T13:37:42Z",
                    "deleted_at": None,
                }
            ]
        }
    )

    id: uuid.UUID
    name: str
    timezone: str
    intervals: list[BusinessIntervalRead]
    holidays: list[date]
    holiday_country: str | None
    holiday_subdivision: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None
