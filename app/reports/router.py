"""/reports: figures over the organization's tickets, for managers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.auth.dependencies import require
from app.auth.permissions import Permission
from app.auth.principal import Principal
from app.db.dependencies import SessionDep
from app.kit.schemas import Instant
from app.reports import service as reports
from app.reports.schemas import SLAGroupBy, SLAReport

router = APIRouter(prefix="/reports", tags=["reports"])

Reader = Annotated[Principal, Depends(require(Permission.REPORTS_READ))]


@router.get("/sla", response_model=SLAReport, summary="SLA compliance report")
async def sla_report(
    _: Reader,
    session: SessionDep,
    from_: Annotated[
        Instant,
        Query(
            alias="from",
            description="Tickets created at or after this instant (ISO 8601 with an offset).",
        ),
    ],
    to: Annotated[
        Instant,
        Query(description="Tickets created before this instant (ISO 8601 with an offset)."),
    ],
    group_by: Annotated[SLAGroupBy, Query(description="What a group is.")] = SLAGroupBy.POLICY,
) -> SLAReport:
    """How the organization met its SLA targets: the live tickets created in
    [`from`, `to`) that an SLA policy measures, in groups by `group_by`, and in `total`.

    - A group's `key` is the policy, agent or department id, or the priority or channel;
      `label` names it. The tickets without an agent (or department) are the group whose
      `key` and `label` are null.
    - `breached` counts the tickets flagged `sla_breach`; `compliance_percent` is the
      share of the others, to two decimals (null when a group has no tickets).
    - `first_response_seconds` and `resolution_seconds` are the median and the 90th
      percentile of `time_to_first_response` and `time_to_resolution` over the tickets
      that have one, by nearest rank: the smallest value that at least half (nine in
      ten) of the values are at or below. Null when none has.
    - Groups come most tickets first, then by `key`.

    **Who:** managers and admins (`reports:read`).

    **Errors:** 422 when `from` is not before `to`, when the range is longer than 400
    days, or for an instant without an offset.
    """
    return await reports.sla_report(session, from_, to, group_by)
