"""Channels: where email and chat reach the helpdesk, and what becomes of each message.

**Managing channels** (admins): CRUD + restore, the address unique per type among live
channels, a default department that must be live, and secret rotation with an overlap
during which the replaced secret still verifies.

**Receiving a message** (`receive`), for a caller with no token:

1. The channel's organization is found in the system session (one indexed read of one
   column, as an API key's prefix is found) and remembered by the process for a minute;
   everything after runs in that organization's own units of work, under row-level
   security, starting with a read of the channel itself.
2. The signature is checked over the raw bytes before anything is parsed; the external
   id is read; the raw payload is inserted (`ON CONFLICT DO NOTHING` on the channel and
   external id) and **committed**: from here on nothing accepted can be lost.
3. Processing is a second transaction that starts by locking the inbox row. Whoever
   holds the lock and finds the row `received` processes it; everyone else — a
   redelivery, or any of a hundred concurrent copies — waits for the lock and then
   finds the outcome: `duplicate`, with the same ticket and comment. A row left
   `received` (its request died between the two transactions) is processed by the next
   delivery of the message, or by the inbox sweep (`sweep_inbox`) a few minutes on.
4. If processing fails, its transaction is rolled back and a third one marks the row
   `failed` with the reason (an admin can retry it); the caller gets `202`.

**Placing a message**, in order: noise (auto-replies, bulk mail, bounces; our own mail
coming back) is `ignored`; a Message-ID the organization already placed through another
channel is a `duplicate`; then the threading rules — In-Reply-To, References, the
`[TK-000042]` in the subject, the chat conversation — each only for a sender who is the
ticket's customer or staff, so guessing a number hijacks nothing. A reply becomes a
public comment by its sender through the tickets service (a resolved ticket is reopened
first, so its SLA clocks follow; a closed one gets a follow-up ticket instead).
Anything else opens a ticket for the sender, a customer user created on first contact
unless the channel refuses unknown senders, within the channel's per-sender hourly
limit.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.attachments import service as attachments
from app.auth.principal import Principal, PrincipalKind
from app.channels import parsing
from app.channels.parsing import BadPayload, Message, Unprocessable
from app.channels.repository import (
    ChannelLookupRepository,
    ChannelRepository,
    InboundChannel,
    InboxRepository,
    SenderRepository,
    ThreadingRepository,
    UnplacedInboxRepository,
)
from app.channels.schemas import ChannelCreate, ChannelUpdate, address_problem
from app.channels.signatures import verify
from app.db.base import new_id
from app.db.database import Database
from app.db.dependencies import committing
from app.db.unit_of_work import UnitOfWork
from app.kit.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed
from app.kit.journal import Journal
from app.kit.pagination import PageParams, PageResult
from app.kit.records import apply_changes, field_error
from app.kit.repository import Record
from app.kit.signing_secrets import new_secret
from app.kit.storage import storage_from_settings
from app.models.channel import (
    Channel,
    ChannelType,
    InboundMessage,
    InboundStatus,
    MessageDirection,
    ThreadReason,
    TicketMessageId,
)
from app.models.ticket import CommentType, TicketChannel, TicketStatus
from app.models.user import STAFF_ROLES, Role
from app.tickets import service as tickets
from app.tickets.schemas import CommentCreate, TicketUpdate

log = structlog.get_logger(__name__)

RATE_WINDOW = timedelta(hours=1)
PLACE_JOB = "channels.place_stored"
INBOX_SWEEP_JOB = "channels.sweep_inbox"
INBOX_SWEEP_EVERY_SECONDS = 60.0
INBOX_SWEEP_LIMIT = 1000
# A message still `received` this long after it was stored lost its request: placing
# takes well under a second, and a concurrent redelivery holds the row's lock anyway.
UNPLACED_AFTER = timedelta(minutes=2)
MAX_REASON = 2000
MAX_REFERENCES = 50
# Messages up to this size are parsed on the event loop (`_parse`).
PARSE_INLINE_BYTES = 16 * 1024
# Channels whose organization a process remembers, and for how long (`_organization_of`).
ORGANIZATIONS_REMEMBERED = 10_000
ORGANIZATION_TTL_SECONDS = 60.0
EMPTY_TEXT = "(no text)"
FINAL_TICKET_STATUSES = frozenset({TicketStatus.CLOSED, TicketStatus.CANCELLED})
SUPPORTED_MEDIA = {
    ChannelType.EMAIL: (parsing.JSON_MEDIA, parsing.RFC822),
    ChannelType.CHAT: (parsing.JSON_MEDIA,),
}


class UnsupportedMediaType(AppError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


# --- managing channels --------------------------------------------------------------------


async def list_channels(
    session: AsyncSession, page: PageParams, *, include_deleted: bool = False
) -> PageResult[Record]:
    return await ChannelRepository(session).list_page(page, include_deleted=include_deleted)


async def get_channel(
    session: AsyncSession, channel_id: uuid.UUID, *, include_deleted: bool = False
) -> Channel:
    return await ChannelRepository(session).get(channel_id, include_deleted=include_deleted)


async def create_channel(session: AsyncSession, data: ChannelCreate) -> Channel:
    channels = ChannelRepository(session)
    if data.address is not None:
        await channels.check_address_free(data.type, data.address)
    if data.default_department_id is not None:
        await _check_department(channels, data.default_department_id)
    channel = Channel(**data.model_dump(), secret=new_secret())
    session.add(channel)
    await session.flush()
    return channel


async def update_channel(
    session: AsyncSession, channel_id: uuid.UUID, data: ChannelUpdate
) -> Channel:
    """The type is fixed at creation: the sender's URL names it."""
    channels = ChannelRepository(session)
    channel = await channels.get(channel_id)
    changes = data.changes()
    if changes.get("address") is not None:
        problem = address_problem(channel.type, changes["address"])
        if problem is not None:
            raise ValidationFailed(
                "The address does not fit the channel.", errors=[field_error("address", problem)]
            )
        await channels.check_address_free(channel.type, changes["address"], exclude=channel.id)
    if changes.get("default_department_id") is not None:
        await _check_department(channels, changes["default_department_id"])
    apply_changes(channel, changes)
    await session.flush()
    return channel


async def delete_channel(session: AsyncSession, channel_id: uuid.UUID) -> None:
    """Soft: deliveries to it answer 404 until it is restored; its inbox stays."""
    (await get_channel(session, channel_id)).soft_delete()
    await session.flush()


async def restore_channel(session: AsyncSession, channel_id: uuid.UUID) -> Channel:
    channels = ChannelRepository(session)
    channel = await channels.get(channel_id, include_deleted=True)
    if channel.is_deleted:
        if channel.address is not None:
            await channels.check_address_free(channel.type, channel.address, exclude=channel.id)
        channel.restore()
        await session.flush()
    return channel


async def rotate_secret(
    session: AsyncSession, channel_id: uuid.UUID, overlap: timedelta
) -> Channel:
    """A new secret; the one it replaces keeps verifying for `overlap` (a zero overlap
    retires it at once). A secret still in its overlap from an earlier rotation is
    retired: two rotations in a row leave the newest two."""
    channel = await ChannelRepository(session).lock(channel_id)
    if channel is None:
        raise NotFound("No such channel.")
    now = datetime.now(UTC)
    if overlap > timedelta(0):
        channel.previous_secret = channel.secret
        channel.previous_secret_expires_at = now + overlap
    else:
        channel.previous_secret = None
        channel.previous_secret_expires_at = None
    channel.secret = new_secret()
    await session.flush()
    return channel


async def _check_department(channels: ChannelRepository, department_id: uuid.UUID) -> None:
    if not await channels.department_is_live(department_id):
        raise ValidationFailed(
            "Some references are not valid.",
            errors=[field_error("default_department_id", "no such department")],
        )


# --- the inbox ------------------------------------------------------------------------------


async def list_inbox(
    session: AsyncSession,
    channel_id: uuid.UUID,
    page: PageParams,
    *,
    status: InboundStatus | None = None,
    since: datetime | None = None,
) -> PageResult[Record]:
    await get_channel(session, channel_id, include_deleted=True)
    return await InboxRepository(session).page_of(channel_id, page, status=status, since=since)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A webhook call as it arrived: nothing of the body has been parsed."""

    kind: ChannelType
    channel_id: uuid.UUID
    content_type: str
    body: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # an InboundStatus, or "duplicate" for a message already stored
    inbox_id: uuid.UUID
    ticket_id: uuid.UUID | None = None
    comment_id: uuid.UUID | None = None
    reason: str | None = None

    @property
    def http_status(self) -> int:
        return 202 if self.status == InboundStatus.FAILED else 200

    def body(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "ticket_id": str(self.ticket_id) if self.ticket_id else None,
            "comment_id": str(self.comment_id) if self.comment_id else None,
            "inbox_id": str(self.inbox_id),
            "reason": self.reason,
        }

    @classmethod
    def duplicate_of(cls, row: Record) -> Outcome:
        return cls(
            status=InboundStatus.DUPLICATE,
            inbox_id=row["id"],
            ticket_id=row["ticket_id"],
            comment_id=row["comment_id"],
        )


async def receive(database: Database, delivery: Delivery) -> Outcome:
    """Check, store and commit, then process (see the module docstring)."""
    organization_id = await _organization_of(database, delivery.channel_id, delivery.kind)
    if organization_id is None:
        raise NotFound("No such channel.")
    async with committing(database.tenant_unit(organization_id)) as uow:
        channel, inbox_id, existing = await _store(uow, delivery)
    if existing is not None and existing["status"] != InboundStatus.RECEIVED:
        return Outcome.duplicate_of(existing)
    # A message stored just now is placed from the payload in hand; a redelivery of
    # one stored before, from what was stored (the bytes of record).
    payload = None if existing is not None else delivery.body
    return await _process(database, organization_id, channel, inbox_id, payload)


# channel id -> (its organization, its type, when this entry expires)
_organizations: dict[uuid.UUID, tuple[uuid.UUID, ChannelType, float]] = {}


async def _organization_of(
    database: Database, channel_id: uuid.UUID, kind: ChannelType
) -> uuid.UUID | None:
    """The organization of a live channel of this type, in a live organization: looked
    up across tenants (the system session), then remembered for a minute, because a
    channel never moves to another organization. The tenant transaction that stores the
    message checks the channel itself again; a deleted organization's channels are
    refused within the minute."""
    now = time.monotonic()
    known = _organizations.get(channel_id)
    if known is not None and known[1] is kind and known[2] > now:
        return known[0]
    async with database.system_session() as lookup:
        organization_id = await ChannelLookupRepository(lookup).organization_of(channel_id, kind)
    if organization_id is not None:
        if len(_organizations) >= ORGANIZATIONS_REMEMBERED:
            _organizations.clear()
        _organizations[channel_id] = (organization_id, kind, now + ORGANIZATION_TTL_SECONDS)
    return organization_id


async def retry(uow: UnitOfWork, channel_id: uuid.UUID, inbox_id: uuid.UUID) -> Outcome:
    """An admin's second attempt at a failed message, placed like a new one, in the
    request's own transaction: the attempt runs in a savepoint, so a failure rolls back
    what it wrote and leaves the row `failed` with the new reason."""
    channel = await ChannelRepository(uow.session).placing(channel_id)
    row = await InboxRepository(uow.session).lock(inbox_id)
    if row is None or row["channel_id"] != channel_id:
        raise NotFound("No such inbox message.")
    if row["status"] != InboundStatus.FAILED:
        status = InboundStatus(row["status"]).value
        raise Conflict(f"The message is {status}; only failed ones are retried.")
    return await _place_or_fail(uow, row, channel)


async def sweep_inbox(uow: UnitOfWork, *, now: datetime | None = None) -> int:
    """Platform sweep (system session): a placing job for every message stored at least
    `UNPLACED_AFTER` ago and still `received` — its request died between storing and
    placing it, and its sender may never deliver it again. Returns how many."""
    before = (now or datetime.now(UTC)) - UNPLACED_AFTER
    found = await UnplacedInboxRepository(uow.session).unplaced(before, INBOX_SWEEP_LIMIT)
    if uow.jobs is not None:
        for organization_id, inbox_id in found:
            await uow.jobs.enqueue(
                PLACE_JOB,
                organization_id=organization_id,
                job_id=f"{PLACE_JOB}:{inbox_id}",
                inbox_id=str(inbox_id),
            )
    return len(found)


async def place_stored(uow: UnitOfWork, *, inbox_id: str) -> str:
    """Place a stored message the sweep found, as its sender's redelivery would; one
    placed meanwhile is left as it is. Returns the outcome's status."""
    row = await InboxRepository(uow.session).lock(uuid.UUID(inbox_id))
    if row is None or row["status"] != InboundStatus.RECEIVED:
        return "settled"
    log.info("inbound_resumed", inbox_id=inbox_id, by="sweep")
    return str((await _place_or_fail(uow, row)).status)


async def _place_or_fail(
    uow: UnitOfWork, row: Record, channel: InboundChannel | None = None
) -> Outcome:
    """Place `row` in a savepoint of the caller's transaction: a failure rolls back what
    the attempt wrote and leaves the row `failed` with the reason."""
    inbox_id = row["id"]
    try:
        async with uow.savepoint():
            return await _place(uow, row, channel)
    except Exception as exc:
        log.exception("inbound_failed", inbox_id=str(inbox_id))
        # Reloaded: the savepoint's changes are gone.
        reloaded = await InboxRepository(uow.session).lock(inbox_id, with_payload=False)
        assert reloaded is not None
        reloaded["attempts"] += 1
        return await _finish(uow.session, reloaded, InboundStatus.FAILED, reason=_failure(exc))


async def _store(
    uow: UnitOfWork, delivery: Delivery
) -> tuple[InboundChannel, uuid.UUID, Record | None]:
    """The channel, the stored row's id, and the row when the message was there
    already."""
    channel = await ChannelRepository(uow.session).inbound(delivery.channel_id, delivery.kind)
    if channel is None:
        raise NotFound("No such channel.")
    verify(channel, delivery.body, delivery.headers, datetime.now(UTC))
    if not channel.is_active:
        raise Forbidden("The channel is disabled; an admin can enable it again.")
    if delivery.content_type not in SUPPORTED_MEDIA[delivery.kind]:
        accepted = " or ".join(SUPPORTED_MEDIA[delivery.kind])
        raise UnsupportedMediaType(f"Send the message as {accepted}.")
    try:
        identity = parsing.identify(delivery.kind, delivery.content_type, delivery.body)
    except BadPayload as exc:
        raise ValidationFailed(
            f"The message cannot be stored: {exc}",
            errors=[field_error((), str(exc))],
        ) from None
    inbox = InboxRepository(uow.session)
    inbox_id = await inbox.insert_new(
        {
            "id": new_id(),
            "channel_id": channel.id,
            "external_id": identity.external_id,
            "message_id": identity.message_id,
            "conversation_id": identity.conversation_id,
            "content_type": delivery.content_type,
            "raw_body": delivery.body,
        }
    )
    if inbox_id is not None:
        return channel, inbox_id, None
    existing = await inbox.by_external_id(channel.id, identity.external_id)
    assert existing is not None  # inserted by a transaction that committed first
    return channel, existing["id"], existing


async def _process(
    database: Database,
    organization_id: uuid.UUID,
    channel: InboundChannel,
    inbox_id: uuid.UUID,
    payload: bytes | None,
) -> Outcome:
    try:
        async with committing(database.tenant_unit(organization_id)) as uow:
            inbox = InboxRepository(uow.session)
            row = await inbox.lock(inbox_id, with_payload=payload is None)
            assert row is not None  # inbox rows are never deleted by hand
            if row["status"] != InboundStatus.RECEIVED:
                return Outcome.duplicate_of(row)
            if payload is None:
                log.info("inbound_resumed", inbox_id=str(inbox_id))
            else:
                row["raw_body"] = payload
            return await _place(uow, row, channel)
    except Exception as exc:
        log.exception("inbound_failed", inbox_id=str(inbox_id))
        return await _mark_failed(database, organization_id, inbox_id, _failure(exc))


def _failure(exc: Exception) -> str:
    if isinstance(exc, AppError):
        return f"{exc.title}: {exc.detail}"
    # Internals (SQL, paths) stay in the log; the row names the kind of failure.
    return f"processing error ({type(exc).__name__}); see the service log"


async def _mark_failed(
    database: Database, organization_id: uuid.UUID, inbox_id: uuid.UUID, reason: str
) -> Outcome:
    async with committing(database.tenant_unit(organization_id)) as uow:
        row = await InboxRepository(uow.session).lock(inbox_id, with_payload=False)
        assert row is not None
        if row["status"] not in (InboundStatus.RECEIVED, InboundStatus.FAILED):
            # Placed by someone else between the rollback and this transaction.
            return Outcome.duplicate_of(row)
        row["attempts"] += 1
        return await _finish(uow.session, row, InboundStatus.FAILED, reason=reason)


# --- placing a message ----------------------------------------------------------------------


@dataclass(slots=True)
class _Placement:
    """What one attempt at a message learns on its way."""

    uow: UnitOfWork
    row: Record  # the inbox row, locked; `_finish` writes what the attempt set on it
    channel: InboundChannel
    message: Message
    sender: Record | None
    notes: list[str] = field(default_factory=list)

    @property
    def session(self) -> AsyncSession:
        return self.uow.session


async def _place(uow: UnitOfWork, row: Record, channel: InboundChannel | None = None) -> Outcome:
    """Place a stored message; `channel` is the row's, when the caller has it. What the
    attempt learns of the message and its outcome are set on `row` and written once, by
    `_finish`."""
    row["attempts"] += 1
    session = uow.session
    if channel is None:
        channel = await ChannelRepository(session).placing(row["channel_id"])
    try:
        message = await _parse(channel.type, row["content_type"], row["raw_body"])
    except Unprocessable as exc:
        return await _finish(session, row, InboundStatus.FAILED, reason=str(exc))
    if message.kind is ChannelType.EMAIL and message.message_id is None:
        # A mail that names no Message-ID goes by the one derived from it (its inbox
        # row's external id), registered like any other: the same mail through another
        # channel is then recognised too.
        message.message_id = row["external_id"]
    _describe(row, message)
    if (noise := parsing.noise(message)) is not None:
        return await _finish(session, row, InboundStatus.IGNORED, reason=noise)
    sender_problem = address_problem(ChannelType.EMAIL, message.sender_email)
    if sender_problem is not None:
        return await _finish(
            session,
            row,
            InboundStatus.FAILED,
            reason=f"the sender '{message.sender_email[:320]}' is not an email address",
        )
    threads = ThreadingRepository(session)
    # Every id the message names, looked up at once: its own, then those it answers.
    named = [message.message_id] if message.message_id is not None else []
    named += message.in_reply_to[:MAX_REFERENCES] + message.references[-MAX_REFERENCES:]
    owners = {owner["message_id"]: owner for owner in await threads.owners_of(named)}
    if (known := owners.get(message.message_id or "")) is not None:
        if known["direction"] == MessageDirection.OUTBOUND:
            return await _finish(session, row, InboundStatus.IGNORED, reason="own_message")
        return await _finish(
            session,
            row,
            InboundStatus.DUPLICATE,
            ticket_id=known["ticket_id"],
            comment_id=known["comment_id"],
            reason="the organization received this message through another channel",
        )
    placement = _Placement(
        uow, row, channel, message, await threads.user_by_email(message.sender_email)
    )
    placement.notes += message.notes
    target, reason = await _thread(placement, threads, owners)
    if target is None:
        return await _open(placement, ThreadReason.NEW)
    if TicketStatus(target["status"]) in FINAL_TICKET_STATUSES:
        return await _open(placement, reason, follow_up_of=target)
    return await _reply(placement, target, reason)


async def _parse(kind: ChannelType, content_type: str, body: bytes) -> Message:
    """MIME parsing and sanitizing are CPU work: a large message is parsed off the event
    loop (a small one costs less than the thread hop)."""
    if len(body) <= PARSE_INLINE_BYTES:
        return parsing.parse(kind, content_type, body)
    return await anyio.to_thread.run_sync(parsing.parse, kind, content_type, body)


async def _reply_text(message: Message) -> str:
    """Trimming quoted mail is CPU work too: a long body is trimmed off the event loop."""
    if len(message.text) <= PARSE_INLINE_BYTES:
        return message.reply_text
    return await anyio.to_thread.run_sync(lambda: message.reply_text)


def _describe(row: Record, message: Message) -> None:
    row["sender_email"] = message.sender_email[:320] or None
    row["subject"] = message.subject or None
    row["message_id"] = message.message_id
    row["in_reply_to"] = message.in_reply_to[0] if message.in_reply_to else None
    row["reference_ids"] = message.references[-MAX_REFERENCES:]
    row["conversation_id"] = (message.conversation_id or "")[:255] or row["conversation_id"]


async def _thread(
    placement: _Placement, threads: ThreadingRepository, owners: dict[str, Record]
) -> tuple[Record | None, ThreadReason]:
    """The ticket the message continues and the rule that found it; each rule counts
    only for a sender who may write on that ticket. `owners`: the registered message
    ids among those the message names."""
    message = placement.message
    rules: list[tuple[ThreadReason, list[str]]] = [
        (ThreadReason.IN_REPLY_TO, message.in_reply_to[:MAX_REFERENCES]),
        # The newest reference is the one most likely to be ours.
        (ThreadReason.REFERENCES, list(reversed(message.references[-MAX_REFERENCES:]))),
    ]
    for reason, ids in rules:
        for message_id in ids:
            owner = owners.get(message_id)
            if owner is None:
                continue
            ticket = await threads.ticket(owner["ticket_id"])
            if ticket is not None and _may_write(placement.sender, ticket):
                return ticket, reason
    if (number := message.subject_number) is not None:
        ticket = await threads.ticket_by_number(number)
        if ticket is not None and _may_write(placement.sender, ticket):
            return ticket, ThreadReason.SUBJECT_NUMBER
    if message.conversation_id:
        ticket_id = await InboxRepository(placement.session).conversation_ticket(
            placement.channel.id, message.conversation_id
        )
        ticket = await threads.ticket(ticket_id) if ticket_id is not None else None
        if ticket is not None and _may_write(placement.sender, ticket):
            return ticket, ThreadReason.CONVERSATION
    return None, ThreadReason.NEW


def _may_write(sender: Record | None, ticket: Record) -> bool:
    """The ticket's customer, or staff of the organization."""
    if sender is None:
        return False
    return Role(sender["role"]) in STAFF_ROLES or sender["id"] == ticket["customer_id"]


def _principal(placement: _Placement, user: Record) -> Principal:
    return Principal(
        kind=PrincipalKind.USER,
        id=user["id"],
        organization_id=placement.uow.organization_id,
        role=Role(user["role"]),
    )


async def _open(
    placement: _Placement, reason: ThreadReason, *, follow_up_of: Record | None = None
) -> Outcome:
    session, row, channel, message = (
        placement.session,
        placement.row,
        placement.channel,
        placement.message,
    )
    sender = placement.sender
    follow_up_id = follow_up_of["id"] if follow_up_of is not None else None
    if sender is not None and Role(sender["role"]) is not Role.CUSTOMER:
        why = "ticket_closed" if follow_up_of is not None else "sender_is_staff"
        return await _finish(session, row, InboundStatus.IGNORED, reason=why)
    if sender is None and not channel.accept_unknown_senders:
        return await _finish(session, row, InboundStatus.IGNORED, reason="unknown_sender")
    if sender is not None:
        customer, first_contact = sender, False
    else:
        customer, first_contact = await _customer_for(session, message)
    # A sender whose user this transaction has just created has opened nothing yet (a
    # concurrent delivery of theirs waited for that user's commit, then counts this
    # one). Everyone else's new messages to a channel are counted one at a time, until
    # each commits, so concurrent deliveries cannot all pass under the limit together.
    # (A sender whose user was deleted meanwhile is counted again from their next
    # message on.)
    if not first_contact:
        since = datetime.now(UTC) - RATE_WINDOW
        inbox = InboxRepository(session)
        await inbox.advisory_lock(f"new_tickets:{channel.id}:{message.sender_email.lower()}")
        opened = await inbox.tickets_opened_since(channel.id, message.sender_email, since)
        if opened >= channel.new_tickets_per_sender_per_hour:
            return await _finish(session, row, InboundStatus.IGNORED, reason="rate_limited")
    description = message.text or EMPTY_TEXT
    if follow_up_of is not None:
        description = f"Follow-up to {follow_up_of['ticket_number']}.\n\n{description}"
    department_id = channel.default_department_id
    if department_id is not None and not await ChannelRepository(session).department_is_live(
        department_id
    ):
        department_id = None
    # The ticket's statement also registers the message and settles the inbox row, so
    # the organization's number counter, locked by that statement, is held over it, the
    # attachments' rows and the commit only: the files are stored before it.
    ticket_id = new_id()
    async with _stored_files(placement) as files:
        journal = _registration(placement, ticket_id, None)
        _settle(
            row,
            InboundStatus.CREATED,
            ticket_id=ticket_id,
            thread_reason=reason,
            follow_up_of=follow_up_id,
            reason="; ".join(placement.notes) or None,
        )
        journal.update(InboundMessage, row["id"], **_written(row))
        await tickets.open_ticket(
            placement.uow,
            subject=(message.subject or _fallback_subject(message))[:255],
            description=description[: parsing.MAX_TEXT],
            customer_id=customer["id"],
            created_by_id=customer["id"],
            priority=channel.default_priority,
            channel=TicketChannel(channel.type.value),
            department_id=department_id,
            ticket_id=ticket_id,
            journal=journal,
        )
        await _attach(placement, customer, ticket_id, files, comment_id=None)
    return _placed(row)


def _fallback_subject(message: Message) -> str:
    return "(no subject)" if message.kind is ChannelType.EMAIL else "Chat conversation"


async def _reply(placement: _Placement, ticket: Record, reason: ThreadReason) -> Outcome:
    sender = placement.sender
    assert sender is not None  # `_thread` placed it for a known sender only
    actor = _principal(placement, sender)
    # The files are stored before the ticket is locked (by the reopening or the comment).
    async with _stored_files(placement) as files:
        if TicketStatus(ticket["status"]) is TicketStatus.RESOLVED and actor.is_customer:
            # Through the tickets service, so the move is in history and the clocks
            # resume.
            await tickets.update_ticket(
                placement.uow, actor, ticket["id"], TicketUpdate(status=TicketStatus.OPEN)
            )
        text = (await _reply_text(placement.message)).strip() or EMPTY_TEXT
        # The comment's journal also registers the message and settles the inbox row.
        comment_id = new_id()
        journal = _registration(placement, ticket["id"], comment_id)
        _settle(
            placement.row,
            InboundStatus.THREADED,
            ticket_id=ticket["id"],
            comment_id=comment_id,
            thread_reason=reason,
            reason="; ".join(placement.notes) or None,
        )
        journal.update(InboundMessage, placement.row["id"], **_written(placement.row))
        await tickets.add_comment(
            placement.uow,
            actor,
            ticket["id"],
            CommentCreate(content=text[: parsing.MAX_TEXT], comment_type=CommentType.PUBLIC),
            may_write_internal=False,
            comment_id=comment_id,
            journal=journal,
        )
        await _attach(placement, sender, ticket["id"], files, comment_id=comment_id)
    return _placed(placement.row)


async def _customer_for(session: AsyncSession, message: Message) -> tuple[Record, bool]:
    """The sender as a customer user (no password: they write by mail until someone
    gives them a login), and whether this call created it; another delivery creating
    the same user at the same moment wins and is used."""
    first, _, last = message.sender_name.strip().partition(" ")
    created = await SenderRepository(session).add_customer(
        {
            "email": message.sender_email,
            "role": Role.CUSTOMER,
            "first_name": first[:150],
            "last_name": last.strip()[:150],
        }
    )
    if created is not None:
        return created, True
    found = await ThreadingRepository(session).user_by_email(message.sender_email)
    if found is None:
        raise RuntimeError("the sender's user was neither created nor found")
    return found, False


@asynccontextmanager
async def _stored_files(placement: _Placement) -> AsyncIterator[list[attachments.StoredFile]]:
    """The message's files, in storage (through the attachments service: its limits, its
    type sniffing) before the block writes the rows they belong to, so neither the
    organization's number counter nor the ticket's row is locked while their bytes
    move; removed again when the block fails. An empty or oversized file is left out
    and noted on the inbox row."""
    settings = placement.uow.settings
    limit = settings.max_attachment_bytes
    organization_id = placement.uow.organization_id
    assert organization_id is not None  # placing runs in the channel's tenant unit
    storage = storage_from_settings(settings)
    stored: list[attachments.StoredFile] = []
    try:
        for item in placement.message.attachments:
            name = item.file_name or "file"
            if not item.data:
                placement.notes.append(f"attachment {name!r} is empty: left out")
            elif len(item.data) > limit:
                placement.notes.append(f"attachment {name!r} is over {limit} bytes: left out")
            else:
                stored.append(
                    await attachments.store_file(
                        storage,
                        organization_id,
                        item.file_name,
                        _chunks(item.data),
                        max_bytes=limit,
                    )
                )
        yield stored
    except BaseException:
        await attachments.discard(storage, [file.key for file in stored])
        raise


async def _attach(
    placement: _Placement,
    uploader: Record,
    ticket_id: uuid.UUID,
    files: list[attachments.StoredFile],
    *,
    comment_id: uuid.UUID | None,
) -> None:
    if files:
        await attachments.record_stored(
            placement.uow,
            _principal(placement, uploader),
            ticket_id,
            files,
            comment_id=comment_id,
            may_write_internal=False,
        )


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), attachments.CHUNK_BYTES):
        yield data[start : start + attachments.CHUNK_BYTES]


def _registration(
    placement: _Placement, ticket_id: uuid.UUID, comment_id: uuid.UUID | None
) -> Journal:
    """The message's Message-ID registered to the ticket (and comment) it goes to, so a
    reply naming it threads there: a journal row, written in the same statement as the
    ticket or the comment's journal. (It is not registered yet: `_place` found no owner.
    Should the same message, delivered through another channel, register it first, this
    placement fails on the unique id and the inbox row says so.)"""
    journal = Journal(placement.uow)
    message_id = placement.message.message_id
    if message_id is not None:
        journal.add(
            TicketMessageId,
            message_id=message_id,
            ticket_id=ticket_id,
            comment_id=comment_id,
            inbound_message_id=placement.row["id"],
            direction=MessageDirection.INBOUND,
        )
    return journal


# What placing a message sets on its inbox row (`_describe`, `_finish`).
WRITTEN = (
    "attempts",
    "sender_email",
    "subject",
    "message_id",
    "in_reply_to",
    "reference_ids",
    "conversation_id",
    "status",
    "ticket_id",
    "comment_id",
    "thread_reason",
    "follow_up_of_ticket_id",
    "reason",
    "processed_at",
)


async def _finish(
    session: AsyncSession,
    row: Record,
    status: InboundStatus,
    *,
    reason: str | None,
    ticket_id: uuid.UUID | None = None,
    comment_id: uuid.UUID | None = None,
) -> Outcome:
    """End an attempt that places nothing (failed, ignored, another channel's
    duplicate): settle the row and write it. A message that opens or continues a ticket
    has its row written with the ticket's statement instead (`_open`, `_reply`)."""
    _settle(row, status, ticket_id=ticket_id, comment_id=comment_id, reason=reason)
    await InboxRepository(session).write(row["id"], _written(row))
    return _placed(row)


def _settle(
    row: Record,
    status: InboundStatus,
    *,
    ticket_id: uuid.UUID | None = None,
    comment_id: uuid.UUID | None = None,
    thread_reason: ThreadReason | None = None,
    follow_up_of: uuid.UUID | None = None,
    reason: str | None = None,
) -> None:
    row["status"] = status
    row["ticket_id"] = ticket_id
    row["comment_id"] = comment_id
    row["thread_reason"] = thread_reason
    row["follow_up_of_ticket_id"] = follow_up_of
    row["reason"] = reason[:MAX_REASON] if reason else None
    row["processed_at"] = datetime.now(UTC)


def _written(row: Record) -> dict[str, Any]:
    return {name: row[name] for name in WRITTEN}


def _placed(row: Record) -> Outcome:
    """The outcome of a row settled and written."""
    thread_reason = row["thread_reason"]
    log.info(
        "inbound_placed",
        inbox_id=str(row["id"]),
        status=InboundStatus(row["status"]).value,
        thread_reason=thread_reason.value if thread_reason else None,
        reason=row["reason"],
    )
    return Outcome(
        status=row["status"],
        inbox_id=row["id"],
        ticket_id=row["ticket_id"],
        comment_id=row["comment_id"],
        reason=row["reason"],
    )
