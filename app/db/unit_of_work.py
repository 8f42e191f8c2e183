"""The unit of work: one transaction of a request or a job, and what waits on its commit.

The request dependency (`app.db.dependencies`) and the job wrapper (`app.kit.jobs`)
create one and are the only places that commit it; services receive it (or just its
session, when they need nothing else), flush, and queue work for after the commit.
A rollback drops the work queued since the rolled-back point — the unit's start, or a
savepoint's (`savepoint`) — so a job or event relay never runs for changes that did
not happen.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db.session import bind_tenant, dialect_name, session_organization

AfterCommit = Callable[[], Awaitable[None]]
log = structlog.get_logger(__name__)

# A coalesced job scheduled closer than this to its start goes to the next slot instead,
# so clock skew between an API replica and a worker cannot start it before the commit.
COALESCE_MARGIN_SECONDS = 0.02


class JobQueue(Protocol):
    """Where queued jobs go: arq on Redis, or the in-process runner (`app.kit.jobs`)."""

    async def enqueue(
        self,
        name: str,
        *,
        organization_id: uuid.UUID | None,
        job_id: str | None = None,
        run_at: float | None = None,
        **kwargs: Any,
    ) -> None: ...

    async def close(self) -> None: ...


@dataclass(eq=False)
class UnitOfWork:
    session: AsyncSession
    settings: Settings
    # None where no runner is attached (migrations, one-off scripts): the periodic
    # sweeps pick up what a job would have done.
    jobs: JobQueue | None = None
    after_commit_callbacks: list[AfterCommit] = field(default_factory=list)

    @property
    def organization_id(self) -> uuid.UUID | None:
        """The tenant of this unit (None while unbound, and in the system session)."""
        return session_organization(self.session.sync_session)

    @property
    def dialect(self) -> str:
        return dialect_name(self.session)

    async def bind_tenant(self, organization_id: uuid.UUID) -> None:
        await bind_tenant(self.session, organization_id)

    def after_commit(self, callback: AfterCommit) -> None:
        """Run `callback` once this unit has committed; a rollback drops it."""
        self.after_commit_callbacks.append(callback)

    def enqueue(
        self,
        name: str,
        *,
        job_id: str | None = None,
        coalesce_seconds: float | None = None,
        run_at: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Queue a job of this unit's organization for when the unit commits (to start
        then, or at `run_at`, epoch seconds).

        With `coalesce_seconds`, every commit that asks within the same time slot shares
        one job (`job_id` names the group), run when the slot ends: a busy tenant's
        writes cost one queued job per slot, not one per request, and the job still
        starts after each of those commits."""
        queue = self.jobs
        if queue is None:
            return
        organization_id = self.organization_id

        async def send() -> None:
            start = run_at
            slot_job_id = job_id
            if coalesce_seconds is not None:
                slot_job_id, start = coalesced(job_id or name, coalesce_seconds)
            await queue.enqueue(
                name, organization_id=organization_id, job_id=slot_job_id, run_at=start, **kwargs
            )

        self.after_commit(send)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """A savepoint of this unit's transaction: an exception in the block rolls back
        what the block wrote and drops the after-commit work it queued (a job never runs
        for changes that did not happen), and goes on up."""
        callbacks = self.after_commit_callbacks
        queued = len(callbacks)
        try:
            async with self.session.begin_nested():
                yield
        except BaseException:
            # Unless the block committed the unit meanwhile (a new list then).
            del callbacks[queued:]
            raise

    async def commit(self) -> None:
        """Commit, then run the after-commit work. The commit is what the caller's answer
        stands on: a callback that fails (Redis down for an enqueue) is logged and the
        rest still run — the periodic sweeps pick up what a lost enqueue missed."""
        await self.session.commit()
        callbacks, self.after_commit_callbacks = self.after_commit_callbacks, []
        for callback in callbacks:
            try:
                await callback()
            except Exception:
                log.exception("after_commit_failed", callback=getattr(callback, "__name__", ""))

    async def rollback(self) -> None:
        self.after_commit_callbacks.clear()
        await self.session.rollback()

    async def close(self) -> None:
        self.after_commit_callbacks.clear()
        if self.session.in_transaction():  # a commit or rollback failed, or none ran
            await self.session.close()
        else:
            # Nothing to roll back or give back to the pool: closing is bookkeeping
            # without I/O, which needs no trip through SQLAlchemy's async bridge.
            self.session.sync_session.close()


def coalesced(group: str, seconds: float, *, now: float | None = None) -> tuple[str, float]:
    """The job id shared by the current `seconds`-long slot, and the slot's end."""
    now = time.time() if now is None else now
    slot = math.floor((now + COALESCE_MARGIN_SECONDS) / seconds)
    return f"{group}@{slot}", (slot + 1) * seconds
