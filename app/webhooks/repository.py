"""Every statement of the webhooks domain: subscriptions, their deliveries and attempts,
and the one platform read the sweep makes across tenants (which subscriptions have a
delivery due)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from app.kit.pagination import PageParams, PageResult, SortKey
from app.kit.repository import PlatformRepository, Record, Repository, scoped, stated
from app.models.user import Role, User
from app.models.webhook import (
    DeliveryStatus,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookSubscription,
)

SUBSCRIPTIONS = cast(sa.Table, WebhookSubscription.__table__)
DELIVERIES = cast(sa.Table, WebhookDelivery.__table__)
ATTEMPTS = cast(sa.Table, WebhookDeliveryAttempt.__table__)
USERS = cast(sa.Table, User.__table__)

SUBSCRIPTION_ORDER = [SortKey(SUBSCRIPTIONS.c.id)]
# Newest first, on `ix_webhook_deliveries_subscription`.
DELIVERY_ORDER = [
    SortKey(DELIVERIES.c.created_at, descending=True),
    SortKey(DELIVERIES.c.id, descending=True),
]
# Lists leave the body out; a single delivery shows it.
DELIVERY_COLUMNS = tuple(
    column for column in DELIVERIES.c if column.name not in {"payload", "organization_id"}
)
SENDING_COLUMNS = (
    SUBSCRIPTIONS.c.id,
    SUBSCRIPTIONS.c.url,
    SUBSCRIPTIONS.c.secret,
    SUBSCRIPTIONS.c.previous_secret,
    SUBSCRIPTIONS.c.previous_secret_expires_at,
)
NEW_DELIVERY_COLUMNS = frozenset(
    {
        "subscription_id",
        "event_id",
        "event_type",
        "aggregate_id",
        "payload",
        "next_attempt_at",
        "retrying_since",
    }
)
LABEL = "webhook"


def _deliverable(table: sa.Table | sa.Alias) -> list[sa.ColumnElement[bool]]:
    """A subscription that receives events: active and not disabled (and live, which
    the scope says)."""
    return [table.c.is_active.is_(True), table.c.disabled_at.is_(None)]


class WebhookRepository(Repository[WebhookSubscription]):
    model = WebhookSubscription

    async def list_page(
        self, page: PageParams, *, include_deleted: bool = False
    ) -> PageResult[Record]:
        return await self.page_rows(
            self.select_rows(include_deleted=include_deleted), page, SUBSCRIPTION_ORDER
        )

    async def get(
        self, subscription_id: uuid.UUID, *, include_deleted: bool = False
    ) -> WebhookSubscription:
        return await self.get_or_404(subscription_id, include_deleted=include_deleted, label=LABEL)

    async def lock(self, subscription_id: uuid.UUID) -> WebhookSubscription | None:
        """The live subscription, its row held until the transaction ends: rotations and
        the failure streak's bookkeeping of concurrent jobs queue rather than overwrite
        each other."""
        statement = self.prebuilt(
            "lock",
            lambda: (
                self.select()
                .where(WebhookSubscription.id == sa.bindparam("subscription_id"))
                .with_for_update()
                .execution_options(populate_existing=True)
            ),
        )
        return await self.one_or_none(statement, {"subscription_id": subscription_id})

    async def receiving(self) -> list[Record]:
        """The subscriptions events go to (`ix_webhook_subscriptions_active`)."""
        statement = self.prebuilt(
            "receiving",
            lambda: self.select_rows(SUBSCRIPTIONS.c.id, SUBSCRIPTIONS.c.events).where(
                *_deliverable(SUBSCRIPTIONS)
            ),
        )
        return await self.rows(statement)

    async def sending(self, subscription_id: uuid.UUID) -> Record | None:
        """What a delivery job needs of a subscription that receives events."""
        statement = self.prebuilt(
            "sending",
            lambda: self.select_rows(*SENDING_COLUMNS).where(
                SUBSCRIPTIONS.c.id == sa.bindparam("subscription_id"),
                *_deliverable(SUBSCRIPTIONS),
            ),
        )
        return await self.row(statement, {"subscription_id": subscription_id})

    async def admin_ids(self) -> list[uuid.UUID]:
        """The organization's live admins (who hear of a disabled endpoint)."""
        statement = sa.select(USERS.c.id).where(*self.scope(User), USERS.c.role == Role.ADMIN)
        return [row["id"] for row in await self.rows(scoped(statement))]


class DeliveryRepository(Repository[WebhookDelivery]):
    model = WebhookDelivery

    async def page_of(
        self,
        subscription_id: uuid.UUID,
        page: PageParams,
        *,
        status: DeliveryStatus | None = None,
        event_type: str | None = None,
    ) -> PageResult[Record]:
        statement = self.select_rows(*DELIVERY_COLUMNS).where(
            DELIVERIES.c.subscription_id == subscription_id
        )
        if status is not None:
            statement = statement.where(DELIVERIES.c.status == status)
        if event_type is not None:
            statement = statement.where(DELIVERIES.c.event_type == event_type)
        return await self.page_rows(statement, page, DELIVERY_ORDER)

    async def insert_new(self, rows: Sequence[Record]) -> None:
        """Insert these deliveries, skipping any (subscription, event) the tenant holds
        already: relaying an event twice makes no second delivery. One executemany."""
        statement = self.prebuilt(
            "insert_new",
            lambda: self.insert_unless_present(
                sorted(NEW_DELIVERY_COLUMNS), ["organization_id", "subscription_id", "event_id"]
            ),
        )
        await self.session.execute(statement, list(rows))

    async def get(self, subscription_id: uuid.UUID, delivery_id: uuid.UUID) -> Record | None:
        statement = self.select_rows().where(
            DELIVERIES.c.subscription_id == subscription_id, DELIVERIES.c.id == delivery_id
        )
        return await self.row(statement)

    async def lock(self, delivery_id: uuid.UUID) -> WebhookDelivery | None:
        statement = (
            self.select()
            .where(WebhookDelivery.id == delivery_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return await self.one_or_none(statement)

    async def lock_all(self, delivery_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, WebhookDelivery]:
        """The deliveries by id, locked in one statement, in id order (two jobs locking
        overlapping batches take the rows in the same order, so neither waits on the
        other in a cycle)."""
        if not delivery_ids:
            return {}
        statement = self.prebuilt(
            "lock_all",
            lambda: (
                self.select()
                .where(WebhookDelivery.id.in_(sa.bindparam("ids", expanding=True)))
                .order_by(WebhookDelivery.id)
                .with_for_update()
                .execution_options(populate_existing=True)
            ),
        )
        found = await self.all(statement, {"ids": sorted(delivery_ids)})
        return {delivery.id: delivery for delivery in found}

    async def claim_due(
        self, subscription_id: uuid.UUID, now: datetime, limit: int
    ) -> list[Record]:
        """Due deliveries of the subscription that may go out now: for each ticket only
        the one of its oldest pending event (a later event waits until the earlier one
        is delivered or given up). Locked; on PostgreSQL rows another job holds are
        skipped, so two jobs never take the same delivery."""

        def build() -> sa.Select[Any]:
            subscription = sa.bindparam("subscription_id", type_=DELIVERIES.c.subscription_id.type)
            earlier = DELIVERIES.alias("earlier")
            waits_for_earlier = sa.exists(
                sa.select(earlier.c.id).where(
                    # The outer table's scope restated: the subquery names it (correlated).
                    *self.scope(),
                    earlier.c.organization_id == self.organization_id,
                    earlier.c.subscription_id == subscription,
                    stated(earlier.c.status, DeliveryStatus.PENDING),
                    earlier.c.aggregate_id == DELIVERIES.c.aggregate_id,
                    earlier.c.event_id < DELIVERIES.c.event_id,
                )
            )
            statement = (
                self.select_rows(DELIVERIES.c.id, DELIVERIES.c.payload)
                .where(
                    DELIVERIES.c.subscription_id == subscription,
                    stated(DELIVERIES.c.status, DeliveryStatus.PENDING),
                    DELIVERIES.c.next_attempt_at <= sa.bindparam("now"),
                    ~waits_for_earlier,
                )
                .order_by(DELIVERIES.c.event_id)
                .limit(sa.bindparam("limit"))
            )
            if self.dialect == "postgresql":
                statement = statement.with_for_update(skip_locked=True, of=DELIVERIES)
            return statement

        arguments = {"subscription_id": subscription_id, "now": now, "limit": limit}
        return await self.rows(self.prebuilt("claim_due", build), arguments)

    async def resume(self, subscription_id: uuid.UUID, now: datetime) -> None:
        """Every pending delivery of the subscription due now (an endpoint enabled
        again: what waited for it goes out at once)."""
        statement = (
            self.update()
            .where(
                DELIVERIES.c.subscription_id == subscription_id,
                stated(DELIVERIES.c.status, DeliveryStatus.PENDING),
                DELIVERIES.c.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
        )
        await self.session.execute(statement)

    async def lease(self, delivery_ids: Sequence[uuid.UUID], until: datetime) -> None:
        """Not due again before `until`: the claimer's, while it sends."""
        statement = self.prebuilt(
            "lease",
            lambda: (
                self.update()
                .where(DELIVERIES.c.id.in_(sa.bindparam("ids", expanding=True)))
                .values(next_attempt_at=sa.bindparam("until"))
            ),
        )
        await self.session.execute(statement, {"ids": list(delivery_ids), "until": until})


class AttemptRepository(Repository[WebhookDeliveryAttempt]):
    model = WebhookDeliveryAttempt

    async def of_delivery(self, delivery_id: uuid.UUID) -> list[Record]:
        statement = (
            self.select_rows()
            .where(ATTEMPTS.c.delivery_id == delivery_id)
            .order_by(ATTEMPTS.c.attempt_number)
        )
        return await self.rows(statement)


class DueDeliveryRepository(PlatformRepository[WebhookDelivery]):
    model = WebhookDelivery

    async def due_subscriptions(
        self, now: datetime, limit: int
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(organization, subscription) of every receiving subscription with a delivery
        due, on `ix_webhook_deliveries_due`."""
        statement = (
            sa.select(DELIVERIES.c.organization_id, DELIVERIES.c.subscription_id)
            .join(
                SUBSCRIPTIONS,
                sa.and_(
                    SUBSCRIPTIONS.c.organization_id == DELIVERIES.c.organization_id,
                    SUBSCRIPTIONS.c.id == DELIVERIES.c.subscription_id,
                    SUBSCRIPTIONS.c.deleted_at.is_(None),
                    *_deliverable(SUBSCRIPTIONS),
                ),
            )
            .where(
                stated(DELIVERIES.c.status, DeliveryStatus.PENDING),
                DELIVERIES.c.next_attempt_at <= now,
            )
            .distinct()
            .limit(limit)
        )
        result = await self.session.execute(statement)
        return [(row[0], row[1]) for row in result]
