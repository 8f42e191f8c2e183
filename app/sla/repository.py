"""Every statement of the SLA clock: a ticket's event log, and the policies it is
measured against."""

from __future__ import annotations

import uuid
from typing import Any, cast

import sqlalchemy as sa

from app.kit.pagination import PageParams, PageResult, SortKey
from app.kit.repository import Record, Repository, scoped
from app.models.sla import BusinessHours, SLAPolicy
from app.models.ticket import TicketSLAEvent
from app.models.user import User
from app.sla.clock import EscalationAction, Event, EventKind, Target

EVENTS = cast(sa.Table, TicketSLAEvent.__table__)
POLICIES = cast(sa.Table, SLAPolicy.__table__)
HOURS = cast(sa.Table, BusinessHours.__table__)
# The log in the order it happened (ids are time-ordered: ties keep writing order).
LOG_ORDER = [SortKey(TicketSLAEvent.at), SortKey(TicketSLAEvent.id)]


class SLARepository(Repository[TicketSLAEvent]):
    model = TicketSLAEvent

    async def log(self, ticket_id: uuid.UUID) -> list[Event]:
        statement = self.prebuilt(
            "log",
            lambda: (
                self.select_rows(
                    EVENTS.c.kind,
                    EVENTS.c.at,
                    EVENTS.c.target,
                    EVENTS.c.cycle,
                    EVENTS.c.at_percent,
                    EVENTS.c.action,
                )
                .where(EVENTS.c.ticket_id == sa.bindparam("ticket_id"))
                .order_by(EVENTS.c.at, EVENTS.c.id)
            ),
        )
        return [
            Event(
                kind=EventKind(row["kind"]),
                at=row["at"],
                target=Target(row["target"]) if row["target"] is not None else None,
                cycle=row["cycle"],
                at_percent=row["at_percent"],
                action=EscalationAction(row["action"]) if row["action"] is not None else None,
            )
            for row in await self.rows(statement, {"ticket_id": ticket_id})
        ]

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
