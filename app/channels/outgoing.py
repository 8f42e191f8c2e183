"""Replies going back out: a staff member's public comment on an email or chat ticket is
sent to the ticket's customer through the channel the ticket came in by.

**Queueing** (`queue_reply`, called by the tickets service while it writes the
comment): the comment is written `queued`, due `REPLY_SEND_DELAY_SECONDS` later (files
uploaded to the reply right after it go out with it), in the comment's own transaction,
so nothing accepted is lost; its send job is queued for after the commit. Internal
notes, customers' comments and tickets that no channel brought in leave nothing.

**Sending** (`send_reply`, a job in the organization's unit of work): the claim takes
the reply if it is still queued and due, its row locked (`SKIP LOCKED` on PostgreSQL),
counts the attempt, moves `delivery_next_attempt_at` a lease ahead and commits before
anything is sent: no transaction waits on a mail server, and a second job for the same
reply finds nothing to take — one message, however many jobs run. If the sender dies
mid-send the lease runs out and the reply is due again. A mail's Message-ID is chosen at
its first claim and registered in `ticket_message_ids` as `outbound` (the customer's
answer naming it threads back into the ticket, and our own mail bouncing back is
ignored); every retry sends the same id. The outcome is recorded in a second
transaction: `sent`; `queued` with the error and the next attempt's time while
retrying; `failed` with the reason on a permanent refusal or after the last retry.

**Retries** wait in the database, not in Redis: the periodic sweep (`sweep_replies`)
queues a send job for every queued reply whose next attempt is due — retries, and
whatever a lost enqueue or an emptied Redis dropped.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import make_msgid
from typing import Any

import structlog

from app.auth.principal import Principal
from app.channels import senders
from app.channels.repository import DueReplyRepository, ReplyRepository, ThreadingRepository
from app.channels.senders import ChatReply, Mail, Outcome, StoredFile
from app.db.base import new_id
from app.db.unit_of_work import UnitOfWork
from app.kit.repository import Record
from app.kit.storage import storage_from_settings
from app.models.channel import ChannelType, MessageDirection
from app.models.ticket import CommentType, ReplyDelivery, TicketChannel, TicketComment
from app.webhooks.targets import tls_context

log = structlog.get_logger(__name__)

SEND_JOB = "channels.send_reply"
SWEEP_JOB = "channels.sweep_replies"
SWEEP_EVERY_SECONDS = 10.0
SWEEP_LIMIT = 1000
# Longer than one send can take (an SMTP transaction's steps time out after 30 s each).
LEASE = timedelta(minutes=5)
# After the 1st, 2nd, … failed attempt; the attempt after the last step is the last.
BACKOFF_SECONDS = (30, 120, 600, 3600, 6 * 3600, 12 * 3600, 24 * 3600)
# The first Message-ID of the thread and the newest ones (RFC 5322 allows trimming the
# middle of a long References header).
MAX_REFERENCES = 20
REPLY_CHANNELS = frozenset({TicketChannel.EMAIL, TicketChannel.CHAT})

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReplySchedule:
    """Exponential backoff with jitter, over about two days."""

    backoff: tuple[float, ...] = BACKOFF_SECONDS
    # Each delay stretched or shrunk by up to this share, so replies that failed
    # together (a mail server's outage) are not all retried at the same moment.
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random, compare=False)

    @property
    def max_attempts(self) -> int:
        return len(self.backoff) + 1

    def next_attempt(self, attempts: int, now: datetime) -> datetime | None:
        """When to try again after `attempts` failed attempts; None: give up."""
        if attempts >= self.max_attempts:
            return None
        base = self.backoff[attempts - 1]
        return now + timedelta(seconds=base * (1 + self.jitter * (2 * self.rng.random() - 1)))


DEFAULT_SCHEDULE = ReplySchedule()


# --- queueing -----------------------------------------------------------------------------


async def queue_reply(
    uow: UnitOfWork,
    actor: Principal,
    ticket: Record,
    comment_id: uuid.UUID,
    comment_type: CommentType,
) -> dict[str, Any]:
    """The delivery columns of a new comment (none for a comment that leaves nothing),
    its first attempt queued for after the commit."""
    if comment_type is not CommentType.PUBLIC or actor.is_customer:
        return {}
    if TicketChannel(ticket["channel"]) not in REPLY_CHANNELS:
        return {}
    if await ReplyRepository(uow.session).route(ticket["id"]) is None:
        return {}  # opened by hand with channel email/chat: nowhere to answer to
    due = utcnow() + timedelta(seconds=uow.settings.reply_send_delay_seconds)
    _queue_send(uow, comment_id, due)
    return {"delivery_status": ReplyDelivery.QUEUED, "delivery_next_attempt_at": due}


def _queue_send(uow: UnitOfWork, comment_id: uuid.UUID, due: datetime) -> None:
    jobs = uow.jobs
    if jobs is None:
        return  # the sweep sends it
    organization_id = uow.organization_id

    async def send() -> None:
        run_at = due.timestamp()
        await jobs.enqueue(
            SEND_JOB,
            organization_id=organization_id,
            job_id=f"{SEND_JOB}:{comment_id}",
            run_at=run_at if run_at > utcnow().timestamp() else None,
            comment_id=str(comment_id),
        )

    uow.after_commit(send)


# --- sending ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    comment_id: uuid.UUID
    message: Mail | ChatReply


async def send_reply(
    uow: UnitOfWork,
    *,
    comment_id: str,
    clock: Clock = utcnow,
    schedule: ReplySchedule = DEFAULT_SCHEDULE,
) -> str | None:
    """Claim, send, record (see the module docstring); the reply's status afterwards,
    or None when there was nothing to send. Commits between the steps: the claim must
    be durable before a byte leaves, and no transaction waits on the network; `run_job`'s
    own commit then finds nothing left."""
    claimed = await claim(uow, uuid.UUID(comment_id), clock())
    await uow.commit()
    if claimed is None:
        return None
    outcome = await _send(uow, claimed, clock())
    status = await record(uow, claimed.comment_id, outcome, clock(), schedule)
    await uow.commit()
    return status.value if status is not None else None


async def claim(uow: UnitOfWork, comment_id: uuid.UUID, now: datetime) -> Claimed | None:
    """The reply, leased and ready to send; None when it is not queued and due, or when
    it cannot be sent at all (then it is `failed` with the reason)."""
    replies = ReplyRepository(uow.session)
    comment = await replies.claim(comment_id, now)
    if comment is None:
        return None
    comment.delivery_attempts += 1
    comment.delivery_next_attempt_at = now + LEASE
    message = await _prepare(uow, replies, comment)
    if isinstance(message, str):
        _give_up(comment, message)
        log.warning("reply_failed", comment_id=str(comment.id), reason=message)
    await uow.session.flush()
    return None if isinstance(message, str) else Claimed(comment.id, message)


async def _prepare(
    uow: UnitOfWork, replies: ReplyRepository, comment: TicketComment
) -> Mail | ChatReply | str:
    """What to send, or why it cannot be sent."""
    ticket = await replies.ticket(comment.ticket_id)
    if ticket is None:
        return "the ticket was deleted"
    route = await replies.route(ticket["id"])
    if route is None:
        return "the channel the ticket came in by was deleted"
    if ChannelType(route["type"]) is ChannelType.CHAT:
        return await _chat(uow, replies, comment, ticket, route)
    return await _mail(uow, replies, comment, ticket, route)


async def _mail(
    uow: UnitOfWork,
    replies: ReplyRepository,
    comment: TicketComment,
    ticket: Record,
    route: Record,
) -> Mail | str:
    address = route["address"]
    if not address:
        return "the email channel has no address to send from"
    customer = await replies.person(ticket["customer_id"])
    if customer is None:
        return "the ticket's customer was deleted"
    if comment.outgoing_message_id is None:
        comment.outgoing_message_id = make_msgid(domain=address.rpartition("@")[2]).strip("<>")
        await ThreadingRepository(uow.session).register(
            {
                "id": new_id(),
                "message_id": comment.outgoing_message_id,
                "ticket_id": ticket["id"],
                "comment_id": comment.id,
                "inbound_message_id": None,
                "direction": MessageDirection.OUTBOUND,
            }
        )
    thread = await replies.thread(ticket["id"], MAX_REFERENCES)
    references = [
        row["message_id"] for row in thread if row["message_id"] != comment.outgoing_message_id
    ]
    files = await replies.public_files(ticket["id"], comment.id)
    return Mail(
        comment_id=comment.id,
        sender_name=route["name"],
        sender_address=address,
        recipient_name=_full_name(customer),
        recipient_address=customer["email"],
        subject=senders.reply_subject(ticket["subject"], ticket["ticket_number"]),
        message_id=comment.outgoing_message_id,
        in_reply_to=await replies.newest_inbound_id(ticket["id"]),
        references=references[-MAX_REFERENCES:],
        text=comment.content,
        files=[StoredFile(f["file_name"], f["content_type"], f["storage_key"]) for f in files],
    )


async def _chat(
    uow: UnitOfWork,
    replies: ReplyRepository,
    comment: TicketComment,
    ticket: Record,
    route: Record,
) -> ChatReply | str:
    reply_url = route["reply_url"]
    if not reply_url:
        return "the chat channel has no reply_url"
    problem = senders.chat_target_problem(
        reply_url, allow_private=uow.settings.webhook_allow_private_targets
    )
    if problem is not None:
        return problem
    if not route["conversation_id"]:
        return "the ticket's chat messages name no conversation"
    author = await replies.person(comment.author_id, include_deleted=True)
    return ChatReply(
        comment_id=comment.id,
        reply_url=reply_url,
        secret=route["secret"],
        conversation_id=route["conversation_id"],
        ticket_number=ticket["ticket_number"],
        author_name=_full_name(author) if author is not None else "",
        text=comment.content,
    )


def _full_name(person: Record) -> str:
    name = f"{person['first_name'] or ''} {person['last_name'] or ''}".strip()
    return name or str(person["email"])


async def _send(uow: UnitOfWork, claimed: Claimed, now: datetime) -> Outcome:
    message = claimed.message
    settings = uow.settings
    if isinstance(message, ChatReply):
        return await senders.send_chat(
            message,
            allow_private=settings.webhook_allow_private_targets,
            tls=tls_context(settings.outbound_ca_file),
        )
    try:
        mail = await senders.build_message(message, storage_from_settings(settings), now)
    except (OSError, ValueError) as exc:
        # A file gone from storage, an address the mail format cannot carry.
        return senders.failed(f"the message cannot be built: {exc}", permanent=True)
    return await senders.send_mail(
        settings, mail, message.comment_id, tls=tls_context(settings.outbound_ca_file)
    )


async def record(
    uow: UnitOfWork,
    comment_id: uuid.UUID,
    outcome: Outcome,
    now: datetime,
    schedule: ReplySchedule,
) -> ReplyDelivery | None:
    """The attempt's outcome on the reply (see the module docstring)."""
    comment = await ReplyRepository(uow.session).lock(comment_id)
    if comment is None or comment.delivery_status is not ReplyDelivery.QUEUED:
        return None
    if outcome.sent:
        comment.delivery_status = ReplyDelivery.SENT
        comment.delivery_sent_at = now
        comment.delivery_next_attempt_at = None
        comment.delivery_error = None
        log.info("reply_sent", comment_id=str(comment_id), attempts=comment.delivery_attempts)
    else:
        retry_at = (
            None if outcome.permanent else schedule.next_attempt(comment.delivery_attempts, now)
        )
        comment.delivery_error = outcome.error
        if retry_at is None:
            _give_up(comment, outcome.error or "failed")
        else:
            comment.delivery_next_attempt_at = retry_at
        log.warning(
            "reply_attempt_failed",
            comment_id=str(comment_id),
            attempts=comment.delivery_attempts,
            error=outcome.error,
            retry_at=retry_at.isoformat() if retry_at else None,
        )
    await uow.session.flush()
    return comment.delivery_status


def _give_up(comment: TicketComment, reason: str) -> None:
    comment.delivery_status = ReplyDelivery.FAILED
    comment.delivery_error = reason[: senders.MAX_ERROR]
    comment.delivery_next_attempt_at = None


async def sweep_replies(uow: UnitOfWork, *, clock: Clock = utcnow) -> int:
    """Platform sweep (system session): a send job for every queued reply whose next
    attempt is due; returns how many."""
    due = await DueReplyRepository(uow.session).due(clock(), SWEEP_LIMIT)
    if uow.jobs is not None:
        for organization_id, comment_id in due:
            await uow.jobs.enqueue(
                SEND_JOB,
                organization_id=organization_id,
                job_id=f"{SEND_JOB}:{comment_id}",
                comment_id=str(comment_id),
            )
    return len(due)
