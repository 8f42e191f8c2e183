"""A changed measure: when a policy's targets, calendar or escalations change, or a
calendar's hours, the open tickets it measures are replayed with the new measure by a
job after the commit (`app.tickets.service.recompute_clocks`), so their due fields, next
deadline and pending escalations follow, and their logs say why."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from app.db.unit_of_work import UnitOfWork
from app.sla.repository import SLARepository

RECOMPUTE_JOB = "sla.recompute"
POLICY_MEASURE_FIELDS = frozenset(
    {
        "first_response_minutes",
        "next_reply_minutes",
        "resolution_minutes",
        "business_hours_id",
        "escalations",
    }
)
CALENDAR_MEASURE_FIELDS = frozenset(
    {"timezone", "intervals", "holidays", "holiday_country", "holiday_subdivision"}
)


def policies_changed(uow: UnitOfWork, policy_ids: Sequence[uuid.UUID], reason: str) -> None:
    """Queue the recompute of the policies' open tickets for after the commit."""
    if policy_ids:
        uow.enqueue(RECOMPUTE_JOB, policy_ids=[str(p) for p in policy_ids], reason=reason)


async def calendar_changed(uow: UnitOfWork, hours_id: uuid.UUID, reason: str) -> None:
    """Queue the recompute of every policy counting in the calendar."""
    policy_ids = await SLARepository(uow.session).policies_on_calendar(hours_id)
    policies_changed(uow, policy_ids, reason)
