"""Reports: figures over the organization's tickets for managers. The database
aggregates; the service checks the range and shapes the rows it answers (one a group),
never the tickets themselves."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.errors import ValidationFailed
from app.kit.records import field_error
from app.kit.repository import Record
from app.reports.repository import ReportRepository
from app.reports.schemas import (
    SLAGroupBy,
    SLAReport,
    SLAReportDurations,
    SLAReportFigures,
    SLAReportGroup,
)

# Wide enough for a year against the one before it; bounded so one request cannot
# aggregate an organization's whole history.
MAX_RANGE = timedelta(days=400)
CENT = Decimal("0.01")


async def sla_report(
    session: AsyncSession, start: datetime, end: datetime, group_by: SLAGroupBy
) -> SLAReport:
    _check_range(start, end)
    rows = await ReportRepository(session).sla_figures(start, end, group_by)
    groups = [
        SLAReportGroup(
            key=_text(row["group_key"]), label=_text(row["label"]), **_figures(row).model_dump()
        )
        for row in rows
        if not row["is_total"]
    ]
    [total] = [_figures(row) for row in rows if row["is_total"]]
    return SLAReport(group_by=group_by, groups=groups, total=total)


def _check_range(start: datetime, end: datetime) -> None:
    if start >= end:
        raise ValidationFailed(
            "`from` must be before `to`.",
            errors=[field_error("to", "must be after from", location="query")],
        )
    if end - start > MAX_RANGE:
        raise ValidationFailed(
            f"A report covers at most {MAX_RANGE.days} days.",
            errors=[
                field_error("to", f"at most {MAX_RANGE.days} days after from", location="query")
            ],
        )


def _figures(row: Record) -> SLAReportFigures:
    tickets, breached = int(row["tickets"]), int(row["breached"])
    return SLAReportFigures(
        tickets=tickets,
        breached=breached,
        compliance_percent=_compliance(tickets, breached),
        first_response_seconds=SLAReportDurations(
            median=row["first_response_median"], p90=row["first_response_p90"]
        ),
        resolution_seconds=SLAReportDurations(
            median=row["resolution_median"], p90=row["resolution_p90"]
        ),
    )


def _compliance(tickets: int, breached: int) -> float | None:
    """Decimal, half up: a binary float would round 2.675 down."""
    if tickets == 0:
        return None
    share = Decimal(100 * (tickets - breached)) / Decimal(tickets)
    return float(share.quantize(CENT, rounding=ROUND_HALF_UP))


def _text(value: Any) -> str | None:
    """A group's key or label as the API writes it: an id's or enum's text."""
    return None if value is None else str(value)
