"""The webhook jobs: a subscription's delivery job, and the periodic sweep that queues
one for every subscription with a delivery due.

The delivery job commits its own unit of work between steps, where other jobs commit
once at the end (`run_job`): the lease of what it sends must be durable before a byte
leaves, and no transaction (nor pooled connection) should wait the up to 10 seconds an
endpoint may take to answer. Each `commit()` is the unit's own, with its after-commit
work; `run_job`'s final commit finds nothing left.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from app.db.unit_of_work import UnitOfWork
from app.webhooks import sender
from app.webhooks.repository import DueDeliveryRepository
from app.webhooks.schedule import RetrySchedule
from app.webhooks.service import DELIVER_JOB, claim, queue_delivery, record, utcnow
from app.webhooks.targets import tls_context

SWEEP_JOB = "webhooks.sweep"
# The first retry waits 5 s: a sweep this often keeps retries close to their time.
SWEEP_EVERY_SECONDS = 5.0
SWEEP_LIMIT = 1000
# A job sends at most this many batches, then makes way for other jobs (and queues
# itself again if more is due).
MAX_BATCHES = 10
DEFAULT_SCHEDULE = RetrySchedule()

Clock = Callable[[], datetime]


async def deliver_subscription(
    uow: UnitOfWork,
    *,
    subscription_id: str,
    clock: Clock = utcnow,
    schedule: RetrySchedule = DEFAULT_SCHEDULE,
) -> int:
    """Send the subscription's due deliveries, batch after batch, until none is due;
    returns how many attempts were made. `clock` and `schedule` are the retry timing
    (tests move the clock instead of waiting)."""
    subscription = uuid.UUID(subscription_id)
    attempts = 0
    batch = await claim(uow, subscription, clock())
    await uow.commit()
    for round_ in range(MAX_BATCHES):
        if batch is None or not batch.items:
            return attempts
        outcomes = await sender.send_all(
            batch.url,
            batch.secrets,
            batch.items,
            allow_private=uow.settings.webhook_allow_private_targets,
            tls=tls_context(uow.settings.outbound_ca_file),
        )
        await record(uow, subscription, outcomes, clock(), schedule)
        attempts += len(outcomes)
        # The next batch is claimed in the transaction that records this one (one
        # transaction a batch, not two); it finds what this batch let through: a
        # ticket's next event. The last round claims nothing it would not send.
        last = round_ == MAX_BATCHES - 1
        batch = None if last else await claim(uow, subscription, clock())
        await uow.commit()
    # The next slot's job (its id is not this running job's, which the queue would
    # refuse), queued when `run_job` commits.
    queue_delivery(uow, subscription)
    return attempts


async def sweep_deliveries(uow: UnitOfWork, *, clock: Clock = utcnow) -> int:
    """Platform sweep (system session): a delivery job for every subscription with a
    delivery due — retries, and whatever a lost enqueue or a dead worker left; returns
    how many subscriptions."""
    due = await DueDeliveryRepository(uow.session).due_subscriptions(clock(), SWEEP_LIMIT)
    if uow.jobs is not None:
        for organization_id, subscription_id in due:
            await uow.jobs.enqueue(
                DELIVER_JOB,
                organization_id=organization_id,
                job_id=f"{DELIVER_JOB}:{subscription_id}",
                subscription_id=str(subscription_id),
            )
    return len(due)
