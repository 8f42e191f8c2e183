"""The look-ups every inbound delivery, login and delivery worker makes, read through
their indexes at a few thousand rows — in the plan PostgreSQL makes for the values and
in the generic one it settles on for a prepared statement — so their cost does not grow
with an organization's users, a channel's mail or the deliveries already made."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.repository import PlatformAccountRepository
from app.channels.repository import (
    DueReplyRepository,
    InboxRepository,
    ThreadingRepository,
    UnplacedInboxRepository,
)
from app.db.database import Database
from app.models.channel import Channel, ChannelType
from app.models.organization import Organization
from app.models.webhook import WebhookSubscription
from app.users.repository import SuperuserRepository, UserRepository
from app.webhooks.repository import DeliveryRepository, DueDeliveryRepository
from tests.support.plans import Sent, generic_plan_of, plan_of, sent

USERS = 3000
MESSAGES = 3000
DELIVERED = 3000
REPLIES = 3000
# The tables that grow with use (a small one, read whole, may be cheaper so).
LARGE = {"users", "inbound_messages", "webhook_deliveries", "ticket_comments"}


class Busy(NamedTuple):
    organization: uuid.UUID
    channel: uuid.UUID
    slug: str
    subscription: uuid.UUID


@pytest.fixture(scope="module")
async def busy(database: Database) -> Busy:
    """An organization with `USERS` customers, a channel that opened `MESSAGES`
    tickets (inbox rows `created`), a ticket with `REPLIES` replies mailed (`sent`) and
    a webhook subscription with `DELIVERED` events delivered, built in SQL."""
    async with database.system_session() as session:
        org = Organization(name="Busy", slug=f"busy-{uuid.uuid4().hex[:10]}")
        session.add(org)
        await session.flush()
        channel = Channel(
            organization_id=org.id, type=ChannelType.EMAIL, name="Mail", secret="whsec_x"
        )
        subscription = WebhookSubscription(
            organization_id=org.id, url="https://hooks.example.org/x", secret="whsec_x"
        )
        session.add_all([channel, subscription])
        await session.flush()
        await session.execute(
            sa.text(
                """
                INSERT INTO users (id, organization_id, email, role)
                SELECT gen_random_uuid(), :org, 'customer-' || g || '@example.org', 'customer'
                FROM generate_series(1, :n) AS g
                """
            ),
            {"org": org.id, "n": USERS},
        )
        await session.execute(
            sa.text(
                """
                INSERT INTO inbound_messages (id, organization_id, channel_id, external_id,
                    content_type, raw_body, status, sender_email, created_at, updated_at)
                SELECT gen_random_uuid(), :org, :channel, 'm-' || g, 'application/json',
                    '\\x7b7d', 'created', 'customer-' || (g % 50) || '@example.org',
                    now() - g * interval '1 minute', now()
                FROM generate_series(1, :n) AS g
                """
            ),
            {"org": org.id, "channel": channel.id, "n": MESSAGES},
        )
        await session.execute(
            sa.text(
                """
                INSERT INTO webhook_deliveries (id, organization_id, subscription_id, event_id,
                    event_type, aggregate_id, payload, status, delivered_at, created_at,
                    updated_at)
                SELECT gen_random_uuid(), :org, :subscription, gen_random_uuid(),
                    'ticket.updated', gen_random_uuid(), '{}', 'succeeded', now(), now(), now()
                FROM generate_series(1, :n) AS g
                """
            ),
            {"org": org.id, "subscription": subscription.id, "n": DELIVERED},
        )
        await session.execute(
            sa.text(
                """
                WITH ticket AS (
                    INSERT INTO tickets (id, organization_id, ticket_number, subject,
                        description, status, priority, channel, customer_id, created_at,
                        updated_at)
                    SELECT gen_random_uuid(), :org, 'TK-000001', 'Printer', '', 'open',
                        'medium', 'email', id, now(), now()
                    FROM users WHERE organization_id = :org LIMIT 1
                    RETURNING id, customer_id
                )
                INSERT INTO ticket_comments (id, organization_id, ticket_id, author_id, content,
                    comment_type, delivery_status, created_at, updated_at)
                SELECT gen_random_uuid(), :org, ticket.id, ticket.customer_id, 'Reply ' || g,
                    'public', 'sent', now(), now()
                FROM ticket CROSS JOIN generate_series(1, :n) AS g
                """
            ),
            {"org": org.id, "n": REPLIES},
        )
        await session.commit()
    async with database.system_session() as session:
        for table in ("users", "inbound_messages", "webhook_deliveries", "ticket_comments"):
            await session.execute(sa.text(f"ANALYZE {table}"))
        await session.commit()
    return Busy(org.id, channel.id, org.slug, subscription.id)


Run = Callable[[AsyncSession], Awaitable[Any]]
# A look-up: what it runs, and the index (any of these, space-separated) it must read.
Lookup = tuple[Run, str]


async def the_statement(session: AsyncSession, run: Run) -> Sent:
    with sent(session) as statements:
        await run(session)
    [statement] = [s for s in statements if "set_config" not in s[0]]
    return statement


async def reads_its_index(session: AsyncSession, statement: Sent, indexes: str) -> None:
    for found in (await plan_of(session, statement), await generic_plan_of(session, statement)):
        assert any(used in indexes.split() for _, used in found), found
        assert not any(kind == "Seq Scan" and table in LARGE for kind, table in found), found


def tenant_lookups(busy: Busy) -> dict[str, Lookup]:
    """Each look-up a tenant's delivery, admin or delivery job makes."""
    since, now = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)
    return {
        "sender's user": (
            lambda s: ThreadingRepository(s).user_by_email("customer-7@example.org"),
            "uq_users_email",
        ),
        "sender's new tickets this hour": (
            lambda s: InboxRepository(s).tickets_opened_since(
                busy.channel, "customer-7@example.org", since
            ),
            "ix_inbound_messages_sender_created",
        ),
        "an endpoint's due deliveries": (
            lambda s: DeliveryRepository(s).claim_due(busy.subscription, now, 50),
            "ix_webhook_deliveries_subscription_due ix_webhook_deliveries_aggregate_order",
        ),
        "an endpoint enabled again": (
            lambda s: DeliveryRepository(s).resume(busy.subscription, now),
            "ix_webhook_deliveries_subscription_due ix_webhook_deliveries_aggregate_order",
        ),
        "email taken": (
            lambda s: UserRepository(s).check_email_free("someone-new@example.org"),
            "uq_users_email",
        ),
    }


ANY = Busy(uuid.uuid4(), uuid.uuid4(), "slug", uuid.uuid4())


@pytest.mark.parametrize("name", list(tenant_lookups(ANY)))
async def test_a_tenants_lookups_read_their_index(
    database: Database, busy: Busy, name: str
) -> None:
    run, index = tenant_lookups(busy)[name]
    async with database.tenant_session(busy.organization) as session:
        statement = await the_statement(session, run)
        await reads_its_index(session, statement, index)


def platform_lookups(busy: Busy) -> dict[str, Lookup]:
    """Each look-up across tenants (the system session)."""
    before = datetime.now(UTC)
    return {
        "login": (
            lambda s: PlatformAccountRepository(s).login_user("customer-7@example.org", busy.slug),
            "uq_users_email",
        ),
        "superuser by email": (
            lambda s: SuperuserRepository(s).by_email("root@example.org"),
            "uq_users_superuser_email uq_users_email",
        ),
        "inbox sweep": (
            lambda s: UnplacedInboxRepository(s).unplaced(before, 100),
            "ix_inbound_messages_received",
        ),
        "webhook sweep": (
            lambda s: DueDeliveryRepository(s).due_subscriptions(before, 100),
            # Any of the indexes of pending deliveries: they hold nothing delivered.
            "ix_webhook_deliveries_due ix_webhook_deliveries_aggregate_order "
            "ix_webhook_deliveries_subscription_due",
        ),
        "reply sweep": (
            lambda s: DueReplyRepository(s).due(before, 100),
            "ix_ticket_comments_delivery_due",
        ),
    }


@pytest.mark.parametrize("name", list(platform_lookups(ANY)))
async def test_lookups_across_tenants_read_their_index(
    database: Database, busy: Busy, name: str
) -> None:
    run, index = platform_lookups(busy)[name]
    async with database.system_session() as session:
        statement = await the_statement(session, run)
        await reads_its_index(session, statement, index)
