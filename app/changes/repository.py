"""The change feed's statements.

On PostgreSQL a change is served only once every transaction that started before it has
finished (`xact_id < pg_snapshot_xmin(pg_current_snapshot())`), ordered by
(xact_id, id): a transaction that commits late cannot land behind a cursor that has
already moved on. The cursor names the last change served by its id alone — the
transaction ids are PostgreSQL's, counted across tenants, and never leave the server.
SQLite serialises writers, so there the time-ordered id is commit order.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from app.kit.pagination import SortKey
from app.kit.repository import Record, Repository, scoped
from app.models.ticket import Ticket, TicketChange
from app.tickets.repository import TICKETS

_SETTLED = sa.cast(
    sa.cast(sa.func.pg_snapshot_xmin(sa.func.pg_current_snapshot()), sa.Text), sa.BigInteger
)
# What a cursor holds: the id of the last change served.
CURSOR_KEYS = [SortKey(TicketChange.id)]


class ChangeRepository(Repository[TicketChange]):
    model = TicketChange

    async def settled_after(self, after: uuid.UUID | None, limit: int) -> Sequence[TicketChange]:
        """Up to `limit` changes settled after the change `after` (from the start when
        None), in commit order. An `after` that names no change of this tenant is a
        LookupError."""
        statement = self.select()
        if self.dialect == "postgresql":
            statement = statement.where(TicketChange.xact_id < _SETTLED)
            order: list[Any] = [TicketChange.xact_id, TicketChange.id]
        else:
            order = [TicketChange.id]
        if after is not None:
            last = await self.row(
                self.select_rows(TicketChange.__table__.c.xact_id).where(
                    TicketChange.__table__.c.id == after
                )
            )
            if last is None:
                raise LookupError(after)
            if self.dialect == "postgresql":
                resume = sa.tuple_(*order) > sa.tuple_(last["xact_id"], after)
            else:
                resume = TicketChange.id > after
            statement = statement.where(resume)
        return await self.all(statement.order_by(*order).limit(limit))

    async def live_tickets(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, Record]:
        """The live state of the changed tickets; deleted ones are absent (tombstones)."""
        if not ids:
            return {}
        statement = sa.select(*TICKETS.c).where(*self.scope(Ticket), TICKETS.c.id.in_(ids))
        return {row["id"]: row for row in await self.rows(scoped(statement))}
