"""The ticket change feed (`GET /changes`): every created, updated and deleted ticket of
the organization, in commit order, for integrations that sync instead of polling lists.

On PostgreSQL a change is served only once every transaction that started before it has
finished (`xact_id < pg_snapshot_xmin(pg_current_snapshot())`), ordered by
(xact_id, id): a transaction that commits late cannot land behind a cursor that has
already moved on. The price is that a long-running transaction holds the feed back
until it ends. SQLite serialises writers, so the time-ordered id is commit order.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.pagination import SortKey
from app.models.ticket import Ticket, TicketChange

_SETTLED = sa.cast(
    sa.cast(sa.func.pg_snapshot_xmin(sa.func.pg_current_snapshot()), sa.Text), sa.BigInteger
)


def feed_query(dialect: str) -> sa.Select[TicketChange]:
    statement = sa.select(TicketChange)
    if dialect == "postgresql":
        statement = statement.where(TicketChange.xact_id < _SETTLED)
    return statement


def feed_order(dialect: str) -> list[SortKey]:
    if dialect == "postgresql":
        return [SortKey(TicketChange.xact_id), SortKey(TicketChange.id)]
    return [SortKey(TicketChange.id)]


async def current_tickets(
    session: AsyncSession, changes: Sequence[TicketChange]
) -> dict[uuid.UUID, Ticket]:
    """The live state of the changed tickets, in one query; deleted ones are absent
    (their entries are tombstones)."""
    ids = {change.ticket_id for change in changes}
    if not ids:
        return {}
    rows = await session.scalars(sa.select(Ticket).where(Ticket.id.in_(ids)))
    return {ticket.id: ticket for ticket in rows}
