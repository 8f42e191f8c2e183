"""The append-only rows a change writes beside itself — ticket history, the change feed,
outbox events — collected while a service makes the change and written by its explicit
`write()`, in one statement.

Nothing reads, updates or deletes these rows in the unit of work that writes them, so
they are not ORM objects (an identity map and per-object flush bookkeeping would buy
nothing): each row is a single-row `INSERT`, and on PostgreSQL those are chained as
data-modifying CTEs of one statement — one round trip for the whole journal. Single-row
VALUES, because SQLAlchemy caches the compiled form of those (never of a multi-row
VALUES): a write path's journal compiles once. Every row is stamped with the unit's
organization.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

import sqlalchemy as sa

from app.db.base import Base, new_id
from app.db.tenancy import TenantMixin
from app.db.unit_of_work import UnitOfWork
from app.kit.outbox import RELAY_COALESCE_SECONDS, RELAY_JOB
from app.kit.repository import scoped
from app.models.outbox import OutboxEvent


class Journal:
    def __init__(self, uow: UnitOfWork) -> None:
        organization_id = uow.organization_id
        if organization_id is None:
            raise TypeError("journal rows belong to a tenant: bind the unit of work first")
        self.uow = uow
        self.organization_id: uuid.UUID = organization_id
        self.rows: list[tuple[type[Base], dict[str, Any]]] = []

    def add(self, model: type[Base], **values: Any) -> None:
        if not issubclass(model, TenantMixin):
            raise TypeError(f"{model.__name__} is not a tenant model")
        row = {"id": new_id(), **values, "organization_id": self.organization_id}
        self.rows.append((model, row))

    def event(
        self,
        event_type: str,
        *,
        aggregate_type: str,
        aggregate_id: uuid.UUID,
        payload: dict[str, Any],
    ) -> None:
        """A domain event in the outbox; `write` queues its relay for after the commit
        (every event of the organization committed within the same slot shares one)."""
        self.add(
            OutboxEvent,
            event_type=event_type,
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            payload=payload,
        )

    async def write(self) -> None:
        """Write what was collected (and forget it, so a second call writes nothing)."""
        inserts = [
            scoped(sa.insert(cast(sa.Table, model.__table__)).values(row))
            for model, row in self.rows
        ]
        if any(model is OutboxEvent for model, _row in self.rows):
            self.uow.enqueue(
                RELAY_JOB,
                job_id=f"{RELAY_JOB}:{self.organization_id}",
                coalesce_seconds=RELAY_COALESCE_SECONDS,
            )
        self.rows = []
        if not inserts:
            return
        session = self.uow.session
        if self.uow.dialect != "postgresql":  # SQLite has no data-modifying CTEs
            for insert in inserts:
                await session.execute(insert)
            return
        *earlier, last = inserts
        statement = last.add_cte(*(insert.cte(f"journal_{i}") for i, insert in enumerate(earlier)))
        await session.execute(statement)
