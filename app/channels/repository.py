"""Every statement of the channels domain: the channels, their inbox, the look-ups
inbound processing makes of tickets, users and departments to place a message, and what
sending a staff reply back out reads and locks (`ReplyRepository`, `DueReplyRepository`).

One statement runs before the organization is known: which organization a channel
belongs to (`ChannelLookupRepository`, the system session), the way an API key is
found by its prefix. It reads that id and nothing else; the channel itself, its secrets
included, is read afterwards in the organization's own session.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa

from app.channels import parsing
from app.kit.errors import NotFound
from app.kit.pagination import PageParams, PageResult, SortKey
from app.kit.repository import PlatformRepository, Record, Repository, scoped, stated
from app.models.channel import (
    Channel,
    ChannelType,
    InboundMessage,
    InboundStatus,
    MessageDirection,
    TicketMessageId,
)
from app.models.organization import Organization
from app.models.ticket import Priority, ReplyDelivery, Ticket, TicketAttachment, TicketComment
from app.models.user import Department, User

CHANNELS = cast(sa.Table, Channel.__table__)
INBOX = cast(sa.Table, InboundMessage.__table__)
MESSAGE_IDS = cast(sa.Table, TicketMessageId.__table__)
TICKETS = cast(sa.Table, Ticket.__table__)
USERS = cast(sa.Table, User.__table__)
DEPARTMENTS = cast(sa.Table, Department.__table__)
COMMENTS = cast(sa.Table, TicketComment.__table__)
ATTACHMENTS = cast(sa.Table, TicketAttachment.__table__)

CHANNEL_ORDER = [SortKey(CHANNELS.c.id)]


@dataclass(frozen=True, slots=True)
class InboundChannel:
    """A channel as receiving and placing a message reads it (a row, not an ORM object:
    every delivery reads one)."""

    id: uuid.UUID
    type: ChannelType
    secret: str
    previous_secret: str | None
    previous_secret_expires_at: datetime | None
    is_active: bool
    accept_unknown_senders: bool
    new_tickets_per_sender_per_hour: int
    default_department_id: uuid.UUID | None
    default_priority: Priority


INBOUND_COLUMNS = tuple(CHANNELS.c[name] for name in InboundChannel.__dataclass_fields__)
# Newest first: ids are time-ordered, so this is the order messages arrived in.
INBOX_ORDER = [SortKey(INBOX.c.id, descending=True)]
LABEL = "channel"


class ChannelRepository(Repository[Channel]):
    model = Channel

    async def list_page(
        self, page: PageParams, *, include_deleted: bool = False
    ) -> PageResult[Record]:
        return await self.page_rows(
            self.select_rows(include_deleted=include_deleted), page, CHANNEL_ORDER
        )

    async def get(self, channel_id: uuid.UUID, *, include_deleted: bool = False) -> Channel:
        return await self.get_or_404(channel_id, include_deleted=include_deleted, label=LABEL)

    async def lock(self, channel_id: uuid.UUID) -> Channel | None:
        """The live channel, its row held until the transaction ends: two rotations of
        one secret queue rather than lose one."""
        statement = (
            self.select()
            .where(Channel.id == channel_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return await self.one_or_none(statement)

    async def inbound(self, channel_id: uuid.UUID, kind: ChannelType) -> InboundChannel | None:
        """The live channel of this type that a webhook caller names."""

        def build() -> sa.Select[Any]:
            return self.select_rows(*INBOUND_COLUMNS).where(
                CHANNELS.c.id == sa.bindparam("channel_id"),
                CHANNELS.c.type == sa.bindparam("kind"),
            )

        arguments = {"channel_id": channel_id, "kind": kind}
        found = await self.row(self.prebuilt("inbound", build), arguments)
        return InboundChannel(**found) if found is not None else None

    async def placing(self, channel_id: uuid.UUID) -> InboundChannel:
        """The channel a stored message came through, deleted or not (a retry, the
        sweep)."""

        def build() -> sa.Select[Any]:
            statement = self.select_rows(*INBOUND_COLUMNS, include_deleted=True)
            return statement.where(CHANNELS.c.id == sa.bindparam("channel_id"))

        found = await self.row(self.prebuilt("placing", build), {"channel_id": channel_id})
        if found is None:
            raise NotFound("No such channel.")
        return InboundChannel(**found)

    async def check_address_free(
        self, kind: ChannelType, address: str, *, exclude: uuid.UUID | None = None
    ) -> None:
        """One live channel per type and address, ignoring case (`uq_channels_address`)."""
        await self.check_unique(
            Channel.type == kind,
            sa.func.lower(Channel.address) == address.lower(),
            exclude=exclude,
            detail=f"A live {kind.value} channel already has the address '{address}'.",
        )

    async def department_is_live(self, department_id: uuid.UUID) -> bool:
        def build() -> sa.Select[Any]:
            statement = sa.select(DEPARTMENTS.c.id).where(
                *self.scope(Department), DEPARTMENTS.c.id == sa.bindparam("department_id")
            )
            return scoped(statement)

        found = await self.row(
            self.prebuilt("department_is_live", build), {"department_id": department_id}
        )
        return found is not None


class ChannelLookupRepository(PlatformRepository[Channel]):
    model = Channel

    async def organization_of(self, channel_id: uuid.UUID, kind: ChannelType) -> uuid.UUID | None:
        """The organization of a live channel of this type, in a live organization."""
        statement = (
            sa.select(Channel.organization_id)
            .join(
                Organization,
                sa.and_(
                    Organization.id == Channel.organization_id, Organization.deleted_at.is_(None)
                ),
            )
            .where(Channel.id == channel_id, Channel.type == kind, Channel.deleted_at.is_(None))
        )
        found: uuid.UUID | None = (await self.session.execute(statement)).scalar_one_or_none()
        return found


WITHOUT_PAYLOAD = tuple(column for column in INBOX.c if column.name != "raw_body")
# The inbox list's columns: everything but the payload itself, and the payload's size.
INBOX_COLUMNS = (
    *(column for column in INBOX.c if column.name not in {"raw_body", "organization_id"}),
    sa.func.length(INBOX.c.raw_body).label("size"),
)


class InboxRepository(Repository[InboundMessage]):
    model = InboundMessage

    async def insert_new(self, values: dict[str, Any]) -> uuid.UUID | None:
        """Store a payload unless the channel holds its external id already (then None):
        of concurrent deliveries of one message exactly one inserts, none fails."""
        columns = tuple(sorted(values))
        statement = self.prebuilt(
            ("insert_new", columns),
            lambda: self.insert_unless_present(
                columns, ["organization_id", "channel_id", "external_id"]
            ).returning(INBOX.c.id),
        )
        return cast(uuid.UUID | None, await self.scalar(statement, values))

    async def by_external_id(self, channel_id: uuid.UUID, external_id: str) -> Record | None:
        def build() -> sa.Select[Any]:
            return self.select_rows(
                INBOX.c.id, INBOX.c.status, INBOX.c.ticket_id, INBOX.c.comment_id, INBOX.c.reason
            ).where(
                INBOX.c.channel_id == sa.bindparam("channel_id"),
                INBOX.c.external_id == sa.bindparam("external_id"),
            )

        return await self.row(
            self.prebuilt("by_external_id", build),
            {"channel_id": channel_id, "external_id": external_id},
        )

    async def lock(self, inbox_id: uuid.UUID, *, with_payload: bool = True) -> Record | None:
        """The row, held until the transaction ends: whoever holds it is the one
        processing the message; everyone else waits and then finds it done. Without
        `raw_body` for a caller that holds the payload already, or needs none."""

        def build() -> sa.Select[Any]:
            columns = INBOX.c if with_payload else WITHOUT_PAYLOAD
            statement = self.select_rows(*columns).where(INBOX.c.id == sa.bindparam("inbox_id"))
            return statement.with_for_update()

        statement = self.prebuilt(("lock", with_payload), build)
        return await self.row(statement, {"inbox_id": inbox_id})

    async def write(self, inbox_id: uuid.UUID, values: dict[str, Any]) -> None:
        """Set `values` on a row this transaction holds locked."""
        columns = tuple(sorted(values))

        def build() -> sa.Update:
            # Not named after a column: an UPDATE's parameter named so would join its SET.
            bound = {
                name: sa.bindparam(f"new_{name}", type_=INBOX.c[name].type) for name in columns
            }
            return self.update().where(INBOX.c.id == sa.bindparam("inbox_id")).values(bound)

        arguments = {f"new_{name}": value for name, value in values.items()}
        await self.session.execute(
            self.prebuilt(("write", columns), build), {"inbox_id": inbox_id, **arguments}
        )

    async def page_of(
        self,
        channel_id: uuid.UUID,
        page: PageParams,
        *,
        status: InboundStatus | None = None,
        since: datetime | None = None,
    ) -> PageResult[Record]:
        statement = self.select_rows(*INBOX_COLUMNS).where(INBOX.c.channel_id == channel_id)
        if status is not None:
            statement = statement.where(INBOX.c.status == status)
        if since is not None:
            statement = statement.where(INBOX.c.created_at >= since)
        return await self.page_rows(statement, page, INBOX_ORDER)

    async def tickets_opened_since(
        self, channel_id: uuid.UUID, sender_email: str, since: datetime
    ) -> int:
        """New tickets this channel opened for the sender since `since`."""

        def build() -> sa.Select[Any]:
            return self.select_rows(sa.func.count()).where(
                INBOX.c.channel_id == sa.bindparam("channel_id"),
                INBOX.c.sender_email == sa.bindparam("sender_email"),
                stated(INBOX.c.status, InboundStatus.CREATED),  # ix_inbound_messages_sender_created
                INBOX.c.created_at >= sa.bindparam("since", type_=INBOX.c.created_at.type),
            )

        arguments = {"channel_id": channel_id, "sender_email": sender_email, "since": since}
        return int(await self.scalar(self.prebuilt("tickets_opened_since", build), arguments) or 0)

    async def conversation_ticket(
        self, channel_id: uuid.UUID, conversation_id: str
    ) -> uuid.UUID | None:
        """The ticket the conversation's latest placed message went to."""

        def build() -> sa.Select[Any]:
            return (
                self.select_rows(INBOX.c.ticket_id)
                .where(
                    INBOX.c.channel_id == sa.bindparam("channel_id"),
                    INBOX.c.conversation_id == sa.bindparam("conversation_id"),
                    INBOX.c.ticket_id.is_not(None),
                    INBOX.c.status.in_([InboundStatus.CREATED, InboundStatus.THREADED]),
                )
                .order_by(INBOX.c.id.desc())
                .limit(1)
            )

        arguments = {"channel_id": channel_id, "conversation_id": conversation_id}
        found = await self.scalar(self.prebuilt("conversation_ticket", build), arguments)
        return cast(uuid.UUID | None, found)


TICKET_COLUMNS = (
    TICKETS.c.id,
    TICKETS.c.ticket_number,
    TICKETS.c.status,
    TICKETS.c.customer_id,
)


class ThreadingRepository(Repository[TicketMessageId]):
    """What placing a message reads: tickets by id, number or message id, users by
    email; and the message ids it registers."""

    model = TicketMessageId

    async def owners_of(self, message_ids: Sequence[str]) -> list[Record]:
        """The registered ids among `message_ids`, with their ticket and direction."""
        if not message_ids:
            return []

        def build() -> sa.Select[Any]:
            return self.select_rows(
                MESSAGE_IDS.c.message_id,
                MESSAGE_IDS.c.ticket_id,
                MESSAGE_IDS.c.comment_id,
                MESSAGE_IDS.c.direction,
            ).where(MESSAGE_IDS.c.message_id.in_(sa.bindparam("message_ids", expanding=True)))

        named = list(dict.fromkeys(message_ids))
        return await self.rows(self.prebuilt("owners_of", build), {"message_ids": named})

    async def register(self, values: dict[str, Any]) -> None:
        """Remember which ticket a message id went to; the first registration of an id
        stands."""
        columns = tuple(sorted(values))
        statement = self.prebuilt(
            ("register", columns),
            lambda: self.insert_unless_present(columns, ["organization_id", "message_id"]),
        )
        await self.session.execute(statement, values)

    async def ticket(self, ticket_id: uuid.UUID) -> Record | None:
        return await self.row(self._ticket_by(TICKETS.c.id), {"key": ticket_id})

    async def ticket_by_number(self, ticket_number: str) -> Record | None:
        return await self.row(self._ticket_by(TICKETS.c.ticket_number), {"key": ticket_number})

    def _ticket_by(self, key: sa.Column[Any]) -> sa.Select[Any]:
        def build() -> sa.Select[Any]:
            statement = sa.select(*TICKET_COLUMNS).where(
                *self.scope(Ticket), key == sa.bindparam("key")
            )
            return scoped(statement)

        return self.prebuilt(("ticket_by", key.name), build)

    async def user_by_email(self, email: str) -> Record | None:
        """The live user with this address, ignoring case (`uq_users_email`)."""

        def build() -> sa.Select[Any]:
            statement = sa.select(USERS.c.id, USERS.c.role).where(
                *self.scope(User), USERS.c.email == sa.bindparam("email")
            )
            return scoped(statement)

        return await self.row(self.prebuilt("user_by_email", build), {"email": email.lower()})


class SenderRepository(Repository[User]):
    """The customer users inbound messages create for unknown senders."""

    model = User

    async def add_customer(self, values: dict[str, Any]) -> Record | None:
        """Insert the customer user (its `email` in lower case, as stored addresses are)
        unless a live user of the organization holds the address already: then None, and
        nothing is written — of concurrent deliveries from one new sender exactly one
        creates the user."""
        columns = tuple(sorted(values))

        def build() -> sa.Insert:
            statement = self.insert_unless_present(
                columns,
                [USERS.c.organization_id, USERS.c.email],
                where=USERS.c.deleted_at.is_(None),
            )
            return statement.returning(USERS.c.id, USERS.c.role)

        return await self.row(self.prebuilt(("add_customer", columns), build), values)


# --- replies going out -------------------------------------------------------------------

PLACED = (InboundStatus.CREATED, InboundStatus.THREADED)


# What our mail's In-Reply-To and References may name: ids the mail itself carried, not
# the ones derived for mail that had none (no mail program knows those).
_NAMEABLE = ~MESSAGE_IDS.c.message_id.endswith(parsing.DERIVED_ID_SUFFIX, autoescape=True)


class ReplyRepository(Repository[TicketComment]):
    """What sending a staff reply reads and locks: the reply, its ticket and people, the
    channel and conversation it answers through, the thread's Message-IDs, its files."""

    model = TicketComment

    async def route(self, ticket_id: uuid.UUID) -> Record | None:
        """The live channel the ticket's newest placed message came through, with that
        message's chat conversation: where a reply to the ticket goes out. Every public
        staff reply on an email or chat ticket asks, and each attempt to send one, so it
        is built once per tenant."""

        def build() -> sa.Select[Any]:
            statement = (
                sa.select(
                    CHANNELS.c.id,
                    CHANNELS.c.type,
                    CHANNELS.c.name,
                    CHANNELS.c.address,
                    CHANNELS.c.reply_url,
                    CHANNELS.c.secret,
                    INBOX.c.conversation_id,
                )
                .join(CHANNELS, CHANNELS.c.id == INBOX.c.channel_id)
                .where(
                    *self.scope(InboundMessage),
                    *self.scope(Channel),
                    INBOX.c.ticket_id == sa.bindparam("ticket_id"),
                    INBOX.c.status.in_(PLACED),
                )
                .order_by(INBOX.c.id.desc())
                .limit(1)
            )
            return scoped(statement)

        return await self.row(self.prebuilt("route", build), {"ticket_id": ticket_id})

    async def claim(self, comment_id: uuid.UUID, now: datetime) -> TicketComment | None:
        """The reply if it is queued and due, its row held until the transaction ends;
        on PostgreSQL a row another sender holds is skipped rather than waited for. (NO
        KEY UPDATE: files and Message-IDs that reference the comment can still be added
        meanwhile.)"""
        statement = (
            self.select()
            .where(
                TicketComment.id == comment_id,
                stated(TicketComment.delivery_status, ReplyDelivery.QUEUED),
                TicketComment.delivery_next_attempt_at <= now,
            )
            .with_for_update(skip_locked=True, key_share=True)
            .execution_options(populate_existing=True)
        )
        return await self.one_or_none(statement)

    async def lock(self, comment_id: uuid.UUID) -> TicketComment | None:
        statement = (
            self.select()
            .where(TicketComment.id == comment_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
        return await self.one_or_none(statement)

    async def ticket(self, ticket_id: uuid.UUID) -> Record | None:
        statement = sa.select(
            TICKETS.c.id, TICKETS.c.ticket_number, TICKETS.c.subject, TICKETS.c.customer_id
        ).where(*self.scope(Ticket), TICKETS.c.id == ticket_id)
        return await self.row(scoped(statement))

    async def person(self, user_id: uuid.UUID, *, include_deleted: bool = False) -> Record | None:
        statement = sa.select(
            USERS.c.id, USERS.c.email, USERS.c.first_name, USERS.c.last_name
        ).where(*self.scope(User, include_deleted=include_deleted), USERS.c.id == user_id)
        return await self.row(scoped(statement, include_deleted=include_deleted))

    async def thread(self, ticket_id: uuid.UUID, newest: int) -> list[Record]:
        """The ticket's Message-IDs (both directions) oldest first: the first one and the
        `newest` latest, which is what a References header keeps of a long thread."""
        columns = (MESSAGE_IDS.c.id, MESSAGE_IDS.c.message_id, MESSAGE_IDS.c.direction)
        of_ticket = (
            *self.scope(TicketMessageId),
            MESSAGE_IDS.c.ticket_id == ticket_id,
            _NAMEABLE,
        )
        first = sa.select(*columns).where(*of_ticket).order_by(MESSAGE_IDS.c.id).limit(1)
        latest = (
            sa.select(*columns).where(*of_ticket).order_by(MESSAGE_IDS.c.id.desc()).limit(newest)
        )
        found = {row["id"]: row for row in await self.rows(scoped(first))}
        found.update({row["id"]: row for row in await self.rows(scoped(latest))})
        return [found[key] for key in sorted(found)]

    async def newest_inbound_id(self, ticket_id: uuid.UUID) -> str | None:
        statement = (
            sa.select(MESSAGE_IDS.c.message_id)
            .where(
                *self.scope(TicketMessageId),
                MESSAGE_IDS.c.ticket_id == ticket_id,
                MESSAGE_IDS.c.direction == MessageDirection.INBOUND,
                _NAMEABLE,
            )
            .order_by(MESSAGE_IDS.c.id.desc())
            .limit(1)
        )
        return cast(str | None, await self.scalar(scoped(statement)))

    async def public_files(self, ticket_id: uuid.UUID, comment_id: uuid.UUID) -> list[Record]:
        """The files attached to the reply that its customer may see, in upload order."""
        statement = (
            sa.select(
                ATTACHMENTS.c.file_name, ATTACHMENTS.c.content_type, ATTACHMENTS.c.storage_key
            )
            .where(
                *self.scope(TicketAttachment),
                ATTACHMENTS.c.ticket_id == ticket_id,
                ATTACHMENTS.c.comment_id == comment_id,
                ATTACHMENTS.c.is_public.is_(True),
            )
            .order_by(ATTACHMENTS.c.id)
        )
        return await self.rows(scoped(statement))


class DueReplyRepository(PlatformRepository[TicketComment]):
    """The retry sweep's read, across tenants (system session)."""

    model = TicketComment

    async def due(self, now: datetime, limit: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(organization, comment) of queued replies whose next attempt is due, the
        longest waiting first."""
        statement = (
            sa.select(COMMENTS.c.organization_id, COMMENTS.c.id)
            .where(
                stated(COMMENTS.c.delivery_status, ReplyDelivery.QUEUED),
                COMMENTS.c.delivery_next_attempt_at <= now,
            )
            .order_by(COMMENTS.c.delivery_next_attempt_at)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in await self.session.execute(statement)]


class UnplacedInboxRepository(PlatformRepository[InboundMessage]):
    """The inbox sweep's read, across tenants (system session)."""

    model = InboundMessage

    async def unplaced(self, before: datetime, limit: int) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(organization, message) of messages stored before `before` and never placed,
        the oldest first (`ix_inbound_messages_received` holds only those)."""
        statement = (
            sa.select(INBOX.c.organization_id, INBOX.c.id)
            .where(stated(INBOX.c.status, InboundStatus.RECEIVED), INBOX.c.created_at < before)
            .order_by(INBOX.c.created_at)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in await self.session.execute(statement)]
