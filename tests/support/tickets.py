"""What a ticket write left in the database: its history and outbox rows."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from app.db.database import Database
from app.models.outbox import OutboxEvent
from app.models.ticket import TicketHistory
from tests.support.identity import Tenant


async def history_rows(
    database: Database, tenant: Tenant, ticket_id: uuid.UUID
) -> list[TicketHistory]:
    """Every history row but the ticket's creation, oldest first."""
    async with database.tenant_session(tenant.org.id) as session:
        rows = await session.scalars(
            sa.select(TicketHistory)
            .where(TicketHistory.ticket_id == ticket_id, TicketHistory.field != "ticket")
            .order_by(TicketHistory.id)
        )
        return list(rows)


async def event_rows(
    database: Database, tenant: Tenant, ticket_id: uuid.UUID, event_type: str | None = None
) -> list[OutboxEvent]:
    """The ticket's outbox events (of one type, if given), oldest first."""
    async with database.tenant_session(tenant.org.id) as session:
        statement = sa.select(OutboxEvent).where(OutboxEvent.aggregate_id == ticket_id)
        if event_type is not None:
            statement = statement.where(OutboxEvent.event_type == event_type)
        return list(await session.scalars(statement.order_by(OutboxEvent.id)))
