"""SLA policies: the targets tickets must meet and the calendar their clocks count in.
Names need not be unique (the model has no such index); a policy's `business_hours_id`
names a live calendar of the organization when it is set or changed. `preview` answers
the due times a policy would give a ticket opened at an instant, with the business-time
arithmetic the SLA clock uses."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.business_hours.service import calendar_of
from app.db.unit_of_work import UnitOfWork
from app.kit.errors import ValidationFailed
from app.kit.pagination import PageParams, PageResult
from app.kit.records import apply_changes, field_error
from app.kit.repository import Record
from app.models.sla import SLAPolicy
from app.models.ticket import Priority
from app.sla.business_time import Calendar, NeverOpen, add_business_time
from app.sla.clock import Target as SLATarget
from app.sla.clock import escalation_minutes
from app.sla.recompute import POLICY_MEASURE_FIELDS, policies_changed
from app.sla_policies.repository import SLAPolicyRepository
from app.sla_policies.schemas import (
    EscalationPreview,
    PreviewCalendar,
    SLAPolicyCreate,
    SLAPolicyUpdate,
    SLAPreview,
)


async def list_sla_policies(
    session: AsyncSession,
    page: PageParams,
    *,
    is_active: bool | None = None,
    include_deleted: bool = False,
) -> PageResult[Record]:
    return await SLAPolicyRepository(session).list_page(
        page, is_active=is_active, include_deleted=include_deleted
    )


async def get_sla_policy(
    session: AsyncSession, policy_id: uuid.UUID, *, include_deleted: bool = False
) -> SLAPolicy:
    return await SLAPolicyRepository(session).get(policy_id, include_deleted=include_deleted)


async def create_sla_policy(session: AsyncSession, data: SLAPolicyCreate) -> SLAPolicy:
    policies = SLAPolicyRepository(session)
    if data.business_hours_id is not None:
        await _check_business_hours(policies, data.business_hours_id)
    policy = SLAPolicy(**data.stored())
    session.add(policy)
    await session.flush()
    return policy


async def update_sla_policy(
    uow: UnitOfWork, policy_id: uuid.UUID, data: SLAPolicyUpdate
) -> SLAPolicy:
    """A change of what the policy measures (targets, calendar, escalations) is applied
    to its open tickets after the commit."""
    policies = SLAPolicyRepository(uow.session)
    policy = await policies.get(policy_id)
    changes = data.changes()
    hours_id = changes.get("business_hours_id")
    # Only a changed reference is checked: a policy whose calendar was deleted since
    # keeps it (and counts 24/7) until it is pointed elsewhere.
    if hours_id is not None and hours_id != policy.business_hours_id:
        await _check_business_hours(policies, hours_id)
    measured = {name: getattr(policy, name) for name in POLICY_MEASURE_FIELDS}
    apply_changes(policy, changes)
    await uow.session.flush()
    if any(getattr(policy, name) != value for name, value in measured.items()):
        policies_changed(uow, [policy.id], "policy_changed")
    return policy


async def delete_sla_policy(session: AsyncSession, policy_id: uuid.UUID) -> None:
    (await get_sla_policy(session, policy_id)).soft_delete()
    await session.flush()


async def restore_sla_policy(session: AsyncSession, policy_id: uuid.UUID) -> SLAPolicy:
    """Names are not unique, so a restore never clashes; a live policy is unchanged."""
    policy = await get_sla_policy(session, policy_id, include_deleted=True)
    if policy.is_deleted:
        policy.restore()
        await session.flush()
    return policy


async def _check_business_hours(policies: SLAPolicyRepository, hours_id: uuid.UUID) -> None:
    if await policies.live_business_hours(hours_id) is None:
        raise ValidationFailed(
            "A referenced resource does not exist.",
            errors=[field_error("business_hours_id", "no such business hours calendar")],
        )


# --- preview -----------------------------------------------------------------------------


def _due(calendar: Calendar, start: datetime, minutes: int | None) -> datetime | None:
    if minutes is None:
        return None
    try:
        return add_business_time(calendar, start, timedelta(minutes=minutes))
    except NeverOpen:
        return None


async def preview_sla_policy(
    session: AsyncSession, policy_id: uuid.UUID, start: datetime, priority: Priority | None
) -> SLAPreview:
    policies = SLAPolicyRepository(session)
    policy = await policies.get(policy_id)
    hours = None
    if policy.business_hours_id is not None:
        hours = await policies.live_business_hours(policy.business_hours_id)
    calendar = calendar_of(hours) if hours is not None else Calendar.always()
    targets = {
        SLATarget.FIRST_RESPONSE: policy.first_response_minutes,
        SLATarget.NEXT_REPLY: policy.next_reply_minutes,
        SLATarget.RESOLUTION: policy.resolution_minutes,
    }
    escalations = []
    for item in policy.escalations:
        target = SLATarget(item["target"])
        minutes = targets[target]
        due = (
            None
            if minutes is None
            else _due(calendar, start, escalation_minutes(item["at_percent"], minutes))
        )
        escalations.append(
            EscalationPreview(
                target=target, at_percent=item["at_percent"], action=item["action"], due_at=due
            )
        )
    preview = SLAPreview(
        policy_id=policy.id,
        start=start,
        calendar=PreviewCalendar(
            business_hours_id=hours["id"] if hours is not None else None,
            timezone=hours["timezone"] if hours is not None else "UTC",
        ),
        first_response_due_at=_due(calendar, start, targets[SLATarget.FIRST_RESPONSE]),
        next_reply_due_at=_due(calendar, start, targets[SLATarget.NEXT_REPLY]),
        resolution_due_at=_due(calendar, start, targets[SLATarget.RESOLUTION]),
        escalations=escalations,
    )
    if priority is not None:
        admitted = policy.conditions.get("priorities") or []
        preview.matches = not admitted or priority.value in admitted
    return preview
