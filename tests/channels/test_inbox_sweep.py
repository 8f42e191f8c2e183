"""A message stored but never placed — its request died between the transaction that
stored it and the one that places it — is placed by the inbox sweep, once, and a
redelivery afterwards is the duplicate it would have been."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from app.channels import service as channels
from app.db.database import Database
from app.db.dependencies import committing
from app.kit.jobs import run_job
from app.models.channel import ChannelType, InboundMessage, InboundStatus
from tests.channels.helpers import deliver, envelope, inbox_rows, make_channel, signed
from tests.support.identity import Tenant


async def stored_only(
    database: Database, tenant: Tenant, channel: dict[str, Any]
) -> dict[str, Any]:
    """Store a delivery as `receive` does, and stop there (as if the process died)."""
    message = envelope()
    body = json.dumps(message).encode()
    delivery = channels.Delivery(
        kind=ChannelType.EMAIL,
        channel_id=uuid.UUID(channel["id"]),
        content_type="application/json",
        body=body,
        headers=signed(channel["secret"], body),
    )
    async with committing(database.tenant_unit(tenant.org.id)) as uow:
        await channels._store(uow, delivery)
    return message


async def backdate(database: Database, minutes: int, *tenants: Tenant) -> None:
    async with database.system_session() as session:
        await session.execute(
            sa.update(InboundMessage)
            .where(
                InboundMessage.status == InboundStatus.RECEIVED,
                InboundMessage.organization_id.in_([t.org.id for t in tenants]),
            )
            .values(
                created_at=InboundMessage.created_at - sa.func.make_interval(0, 0, 0, 0, 0, minutes)
            )
        )
        await session.commit()


async def test_the_sweep_places_a_message_whose_request_died(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant
) -> None:
    channel = await make_channel(client, tenant_a)
    message = await stored_only(database, tenant_a, channel)
    [row] = await inbox_rows(database, tenant_a, channel["id"])
    assert row.status is InboundStatus.RECEIVED
    # Just stored: its request may still be placing it.
    assert await run_job(database, channels.sweep_inbox, None) == 0
    await backdate(database, 3, tenant_a)
    assert await run_job(database, channels.sweep_inbox, None) >= 1

    outcome = await run_job(database, channels.place_stored, tenant_a.org.id, inbox_id=str(row.id))
    # The test app's own periodic sweep may have placed it a moment before.
    assert outcome in (InboundStatus.CREATED, "settled")
    [placed] = await inbox_rows(database, tenant_a, channel["id"])
    assert placed.status is InboundStatus.CREATED and placed.ticket_id is not None
    # Placed once: the job again, or the sender's redelivery, changes nothing.
    again = await run_job(database, channels.place_stored, tenant_a.org.id, inbox_id=str(row.id))
    assert again == "settled"
    redelivered = (await deliver(client, channel, message)).json()
    assert (redelivered["status"], redelivered["ticket_id"]) == (
        "duplicate",
        str(placed.ticket_id),
    )
    assert len(await inbox_rows(database, tenant_a, channel["id"])) == 1


async def test_the_sweep_reads_every_tenant_and_each_job_runs_in_its_own(
    client: httpx.AsyncClient, database: Database, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    ours, theirs = await make_channel(client, tenant_a), await make_channel(client, tenant_b)
    await stored_only(database, tenant_a, ours)
    await stored_only(database, tenant_b, theirs)
    await backdate(database, 3, tenant_a, tenant_b)
    later = datetime.now(UTC) + timedelta(minutes=10)
    assert await run_job(database, channels.sweep_inbox, None, now=later) >= 2
    [their_row] = await inbox_rows(database, tenant_b, theirs["id"])
    # A job bound to one organization cannot reach another's message.
    wrong = await run_job(
        database, channels.place_stored, tenant_a.org.id, inbox_id=str(their_row.id)
    )
    assert wrong == "settled"
    [still] = await inbox_rows(database, tenant_b, theirs["id"])
    assert still.status is InboundStatus.RECEIVED
