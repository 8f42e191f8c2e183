"""Every statement of the SLA clock: a ticket's event log, and the policies it is
measured against."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from app.kit.pagination import PageParams, PageResult, SortKey
from app.kit.repository import PlatformRepository, Record, Repository, scoped
from app.models.sla import BusinessHours, SLAPolicy
from app.models.ticket import Ticket, TicketSLAEvent
from app.models.user import User
from app.sla.clock import EscalationAction, Event, EventKind, Target

EVENTS = cast(sa.Table, TicketSLAEvent.__table__)
POLICIES = cast(sa.Table, SLAPolicy.__table__)
HOURS = cast(sa.Table, BusinessHours.__table__)
TICKETS = cast(sa.Table, Ticket.__table__)
# The rows of the partial index `ix_tickets_sla_next_deadline`: the timer queue.
QUEUED = (TICKETS.c.sla_next_deadline.is_not(None), TICKETS.c.deleted_at.is_(None))
# The log in the order it happened (ids are time-ordered: ties keep writing order).
LOG_ORDER = [SortKey(TicketSLAEvent.at), SortKey(TicketSLAEvent.id)]


class SLARepository(Repository[TicketSLAEvent]):
    model = TicketSLAEvent

    async def log(self, ticket_id: uuid.UUID) -> list[Event]:
        return (await self.logs([ticket_id]))[ticket_id]

    async def logs(self, ticket_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Event]]:
        """The logs of several tickets in one read, each in the order it happened."""
        statement = self.prebuilt(
            "logs",
            lambda: (
                self.select_rows(
                    EVENTS.c.ticket_id,
                    EVENTS.c.kind,
                    EVENTS.c.at,
                    EVENTS.c.target,
                    EVENTS.c.cycle,
                    EVENTS.c.at_percent,
                    EVENTS.c.action,
                )
                .where(EVENTS.c.ticket_id.in_(sa.bindparam("ticket_ids", expanding=True)))
                .order_by(EVENTS.c.ticket_id, EVENTS.c.at, EVENTS.c.id)
            ),
        )
        found: dict[uuid.UUID, list[Event]] = {ticket_id: [] for ticket_id in ticket_ids}
        for row in await self.rows(statement, {"ticket_ids": list(ticket_ids)}):
            found[row["ticket_id"]].append(
                Event(
                    kind=EventKind(row["kind"]),
                    at=row["at"],
                    target=Target(row["target"]) if row["target"] is not None else None,
                    cycle=row["cycle"],
                    at_percent=row["at_percent"],
                    action=EscalationAction(row["action"]) if row["action"] is not None else None,
                )
            )
        return found

    async def visit_timers(self) -> bool:
        """Take the organization's timer visit for this transaction: False when another
        transaction has it (another worker's batch; both would claim the same due rows,
        one in vain), so the caller moves on. Held until the transaction ends."""
        return await self.advisory_lock("sla_timers", wait=False)

    async def log_page(self, ticket_id: uuid.UUID, page: PageParams) -> PageResult[Record]:
        statement = self.select_rows().where(EVENTS.c.ticket_id == ticket_id)
        return await self.page_rows(statement, page, LOG_ORDER)

    async def active_policies(self) -> list[Record]:
        """The live, active policies in matching order (position, then creation)."""

        def build() -> sa.Select[Any]:
            return scoped(
                sa.select(POLICIES.c.id, POLICIES.c.conditions)
                .where(*self.scope(SLAPolicy), POLICIES.c.is_active)
                .order_by(POLICIES.c.position, POLICIES.c.id)
            )

        return await self.rows(self.prebuilt("active_policies", build))

    async def customer_tier(self, user_id: uuid.UUID) -> str | None:
        table = cast(sa.Table, User.__table__)
        statement: sa.Select[Any] = sa.select(table.c.customer_tier).where(
            *self.scope(User), table.c.id == user_id
        )
        row = await self.row(scoped(statement))
        return row["customer_tier"] if row is not None else None

    async def policies_on_calendar(self, hours_id: uuid.UUID) -> list[uuid.UUID]:
        """The policies counting in a calendar, deleted ones too (a ticket keeps the
        policy it got)."""
        statement = sa.select(POLICIES.c.id).where(
            *self.scope(SLAPolicy, include_deleted=True), POLICIES.c.business_hours_id == hours_id
        )
        rows = await self.rows(scoped(statement, include_deleted=True))
        return [row["id"] for row in rows]

    async def policy_with_calendar(self, policy_id: uuid.UUID) -> tuple[Record, Record | None]:
        """A policy (deleted or inactive ones too: a ticket keeps the policy it got) and
        its live business-hours calendar, if any; KeyError when it no longer exists."""
        policy = await self.row(
            scoped(
                sa.select(*POLICIES.c).where(
                    *self.scope(SLAPolicy, include_deleted=True), POLICIES.c.id == policy_id
                ),
                include_deleted=True,
            )
        )
        if policy is None:
            raise KeyError(policy_id)
        hours = None
        if policy["business_hours_id"] is not None:
            hours = await self.row(
                scoped(
                    sa.select(*HOURS.c).where(
                        *self.scope(BusinessHours), HOURS.c.id == policy["business_hours_id"]
                    )
                )
            )
        return policy, hours


class TimerQueueRepository(PlatformRepository[Ticket]):
    """The timer queue across tenants (system session): which organizations have a
    deadline due, and when the next one falls. Acting on a ticket is done in the
    organization's own session (`TicketRepository.claim_due`)."""

    model = Ticket

    async def due_organizations(self, now: datetime, scan: int) -> list[uuid.UUID]:
        """The organizations among the `scan` earliest due deadlines, earliest first:
        a bounded read however many are overdue."""
        earliest = (
            sa.select(TICKETS.c.organization_id, TICKETS.c.sla_next_deadline)
            .where(*QUEUED, TICKETS.c.sla_next_deadline <= now)
            .order_by(TICKETS.c.sla_next_deadline)
            .limit(scan)
            .subquery()
        )
        statement = (
            sa.select(earliest.c.organization_id)
            .group_by(earliest.c.organization_id)
            .order_by(sa.func.min(earliest.c.sla_next_deadline))
        )
        return list((await self.session.execute(statement)).scalars())

    async def next_deadline(self) -> datetime | None:
        statement = sa.select(sa.func.min(TICKETS.c.sla_next_deadline)).where(*QUEUED)
        found: datetime | None = (await self.session.execute(statement)).scalar()
        return found
