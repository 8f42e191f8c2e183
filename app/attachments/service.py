"""Ticket attachments: who may add and read which files, and how bytes get stored.

* A file is streamed to storage in chunks while its size, SHA-256 and content type are
  worked out; past `max_attachment_bytes` the upload stops with a 413 and the partial
  object is deleted. An upload stores nothing before the caller, the ticket and the
  comment have been checked; what is refused after storing (the ticket closed or
  deleted meanwhile) deletes the object again.
* The content type comes from the bytes (magic numbers, then UTF-8 text / JSON), never
  from the client's `Content-Type`, so a download cannot be steered into rendering as
  something else. The client's file name is cleaned and kept for display only; the
  storage key is ours (`<organization_id>/<uuid7 hex>`).
* Customers work on their own tickets only, upload public files only and never see an
  internal one (a hidden file is "not found", as is another customer's ticket). An
  attachment is written by a person: API keys are refused, as they are for comments.
* Each attachment writes one history row through `record_changes` and one
  `ticket.attachment_added` event. If the database write fails after the bytes were
  stored, the object is deleted again (an orphan left by a failed *commit* is for a
  storage sweep to collect).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from app.attachments.repository import AttachmentRepository, StoredKeyRepository
from app.auth.principal import Principal
from app.db.base import new_id
from app.db.unit_of_work import UnitOfWork
from app.kit.errors import Forbidden, NotFound, PayloadTooLarge, ValidationFailed
from app.kit.journal import Journal
from app.kit.pagination import PageParams, PageResult
from app.kit.records import field_error
from app.kit.repository import Record
from app.kit.storage import Storage, storage_from_settings
from app.models.ticket import CommentType, TicketAttachment, TicketComment
from app.tickets import service as tickets

log = structlog.get_logger(__name__)

CHUNK_BYTES = 64 * 1024
ATTACHMENT_ADDED = "ticket.attachment_added"
ORPHAN_SWEEP_JOB = "attachments.sweep"
# Far longer than an upload takes between storing its bytes and committing its row.
ORPHAN_GRACE = timedelta(hours=1)
SWEEP_BATCH = 500
OCTET_STREAM = "application/octet-stream"
MAX_FILE_NAME = 255
FALLBACK_FILE_NAME = "file"


# --- content sniffing ------------------------------------------------------------------

# (signature, offset, content type); the first match wins. Office documents (docx,
# xlsx, …) are ZIP containers and are reported as such.
MAGIC_NUMBERS: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),  # with RIFF at 0, checked below
    (b"%PDF-", 0, "application/pdf"),
    (b"PK\x03\x04", 0, "application/zip"),
    (b"PK\x05\x06", 0, "application/zip"),  # an empty archive
    (b"PK\x07\x08", 0, "application/zip"),  # a spanned archive
    (b"\x1f\x8b", 0, "application/gzip"),
)
HEAD_BYTES = 16
# C0 controls other than tab, line feed, vertical tab, form feed, carriage return and
# escape (ANSI-coloured logs are text), and DEL: their presence means "binary".
_BINARY_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")
# Text is checked as it streams; JSON needs the whole document, so only files up to
# this size are parsed (a larger JSON file is served as text/plain, which is harmless).
JSON_SNIFF_BYTES = 1024 * 1024


class ContentSniffer:
    """Fed every chunk of a file; names its content type at the end."""

    def __init__(self) -> None:
        self._head = bytearray()
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._is_text = True
        self._json: bytearray | None = bytearray()

    def feed(self, chunk: bytes) -> None:
        if len(self._head) < HEAD_BYTES:
            self._head += chunk[: HEAD_BYTES - len(self._head)]
        if self._is_text:
            try:
                text = self._utf8.decode(chunk)
            except UnicodeDecodeError:
                self._is_text = False
            else:
                self._is_text = _BINARY_CONTROLS.search(text) is None
        if self._json is not None:
            if self._is_text and len(self._json) + len(chunk) <= JSON_SNIFF_BYTES:
                self._json += chunk
            else:
                self._json = None

    def content_type(self) -> str:
        head = bytes(self._head)
        for signature, offset, content_type in MAGIC_NUMBERS:
            if head[offset : offset + len(signature)] == signature:
                if content_type == "image/webp" and not head.startswith(b"RIFF"):
                    continue
                return content_type
        if not self._is_text or not self._utf8_complete():
            return OCTET_STREAM
        if self._json is not None and _is_json_document(bytes(self._json)):
            return "application/json"
        return "text/plain"

    def _utf8_complete(self) -> bool:
        try:
            self._utf8.decode(b"", final=True)  # no sequence cut off at the end
        except UnicodeDecodeError:
            return False
        return True


def _is_json_document(data: bytes) -> bool:
    """An object or an array: a text file reading `42` or `true` stays text."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError):
        return False
    return isinstance(value, dict | list)


def sniff(data: bytes) -> str:
    """The content type of a whole (small) byte string."""
    sniffer = ContentSniffer()
    sniffer.feed(data)
    return sniffer.content_type()


# --- file names ------------------------------------------------------------------------

# Controls, format characters (bidi overrides that make "exe.pdf" read as "fdp.exe"),
# surrogates and line/paragraph separators: never part of a displayed name.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_PATH_SEPARATORS = re.compile(r"[/\\]")
_MAX_KEPT_EXTENSION = 16


def display_name(raw: str | None) -> str:
    """The uploader's name, safe to show and to put in a header: no directories, no
    control characters, at most 255 characters (keeping a short extension)."""
    name = unicodedata.normalize("NFC", raw or "")
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _HIDDEN_CATEGORIES)
    name = _PATH_SEPARATORS.split(name)[-1].strip()
    if name in {"", ".", ".."}:
        return FALLBACK_FILE_NAME
    if len(name) > MAX_FILE_NAME:
        stem, dot, extension = name.rpartition(".")
        if dot and stem and len(extension) <= _MAX_KEPT_EXTENSION:
            name = f"{stem[: MAX_FILE_NAME - len(extension) - 1]}.{extension}"
        else:
            name = name[:MAX_FILE_NAME]
    return name


def new_storage_key(organization_id: uuid.UUID) -> str:
    """Ours alone: unguessable, time-ordered, grouped per organization (so a tenant's
    files can be listed, moved or erased together)."""
    return f"{organization_id}/{new_id().hex}"


_STORAGE_KEY = re.compile(r"(?P<org>[0-9a-f-]{36})/(?P<id>[0-9a-f]{32})")


def storage_key_created_at(key: str) -> tuple[uuid.UUID, datetime] | None:
    """The organization and creation time a key of ours carries (its id is a UUIDv7,
    whose first 48 bits are the Unix time in milliseconds); None for any other key."""
    match = _STORAGE_KEY.fullmatch(key)
    if match is None:
        return None
    try:
        organization_id = uuid.UUID(match["org"])
    except ValueError:
        return None
    milliseconds = int(match["id"][:12], 16)
    return organization_id, datetime.fromtimestamp(milliseconds / 1000, UTC)


# --- orphaned objects ------------------------------------------------------------------


async def sweep_orphaned_files(
    session: AsyncSession, storage: Storage, *, now: datetime | None = None
) -> int:
    """Platform sweep (system session): delete stored objects that no attachment row
    names once they are older than `ORPHAN_GRACE`; returns how many.

    An upload stores its bytes before its row commits, and deletes them on every
    failure it sees; what is left is a commit that failed after the service returned,
    or a crash in between. Every row keeps its object (a deleted ticket's too: it can
    be restored); a key not of our making is never touched."""
    cutoff = (now or datetime.now(UTC)) - ORPHAN_GRACE
    removed = 0
    async for group in storage.key_groups():
        by_organization: dict[uuid.UUID, list[str]] = {}
        for key, modified_at in group:
            parsed = storage_key_created_at(key)
            # Both old: the key is named before streaming starts, so a long upload's
            # object can be young while its name is not.
            if parsed is not None and parsed[1] < cutoff and modified_at < cutoff:
                by_organization.setdefault(parsed[0], []).append(key)
        for organization_id, keys in by_organization.items():
            for start in range(0, len(keys), SWEEP_BATCH):
                batch = keys[start : start + SWEEP_BATCH]
                known = await StoredKeyRepository(session).known_keys(organization_id, batch)
                for key in batch:
                    if key not in known:
                        await storage.delete(key)
                        removed += 1
    if removed:
        log.info("orphaned_files_removed", count=removed)
    return removed


async def sweep_attachments(uow: UnitOfWork) -> int:
    """The periodic job: the storage backend of the settings the job runner was built
    with."""
    return await sweep_orphaned_files(uow.session, storage_from_settings(uow.settings))


# --- upload ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewAttachment:
    """An upload as any caller (HTTP form, inbound e-mail) hands it in."""

    file_name: str | None
    chunks: AsyncIterator[bytes]
    is_public: bool | None = None
    comment_id: uuid.UUID | None = None


class _Meter:
    """Counts, hashes and sniffs the bytes on their way to storage; stops the stream
    the moment it passes the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.digest = hashlib.sha256()
        self.sniffer = ContentSniffer()

    async def through(self, first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        yield self._take(first)
        async for chunk in rest:
            yield self._take(chunk)

    def _take(self, chunk: bytes) -> bytes:
        self.size += len(chunk)
        if self.size > self.limit:
            raise PayloadTooLarge(f"The file exceeds the limit of {self.limit} bytes.")
        self.digest.update(chunk)
        self.sniffer.feed(chunk)
        return chunk


async def _first_chunk(chunks: AsyncIterator[bytes]) -> bytes:
    async for chunk in chunks:
        if chunk:
            return chunk
    return b""


@dataclass(frozen=True, slots=True)
class StoredFile:
    """Bytes in storage under `key`, not yet any ticket's (`record_stored` makes them an
    attachment; `discard` removes them)."""

    key: str
    file_name: str
    size: int
    content_type: str
    sha256: str


async def store_file(
    storage: Storage,
    organization_id: uuid.UUID,
    file_name: str | None,
    chunks: AsyncIterator[bytes],
    *,
    max_bytes: int,
) -> StoredFile:
    """Stream a file to storage while it is measured, hashed and sniffed; an empty one
    is refused before anything is stored, and a failure midway (past `max_bytes`: a
    413) leaves nothing behind. No database row is touched: a caller that stores before
    it locks keeps its locks off the bytes' path."""
    first = await _first_chunk(chunks)
    if not first:
        raise ValidationFailed(
            "The file is empty.", errors=[field_error("file", "must not be empty")]
        )
    key = new_storage_key(organization_id)
    meter = _Meter(limit=max_bytes)
    try:
        await storage.save(key, meter.through(first, chunks))
    except BaseException:
        await discard(storage, [key])
        raise
    return StoredFile(
        key=key,
        file_name=display_name(file_name),
        size=meter.size,
        content_type=meter.sniffer.content_type(),
        sha256=meter.digest.hexdigest(),
    )


async def discard(storage: Storage, keys: Iterable[str]) -> None:
    """Delete stored objects whose rows will not commit, while the caller's failure
    propagates: an object that cannot be deleted is logged and left for the orphan
    sweep. Shielded: a client that hangs up mid-upload cancels the request, and the
    cleanup must still run."""
    with anyio.CancelScope(shield=True):
        for key in keys:
            try:
                await storage.delete(key)
            except Exception:
                log.warning("stored_file_not_deleted", key=key, exc_info=True)


async def add_attachment(
    uow: UnitOfWork,
    storage: Storage,
    actor: Principal,
    ticket_id: uuid.UUID,
    upload: NewAttachment,
    *,
    may_write_internal: bool,
    max_bytes: int,
) -> TicketAttachment:
    """Check, stream to storage, then record under the ticket's lock; no failure after
    the bytes are stored leaves the object behind."""
    organization_id = _uploader_organization(actor)
    ticket = await tickets.get_ticket(uow.session, actor, ticket_id)
    tickets.check_open(ticket)
    comment = await _target_comment(uow.session, actor, ticket, upload.comment_id)
    is_public = _visibility(actor, upload.is_public, comment, may_write_internal)
    stored = await store_file(
        storage, organization_id, upload.file_name, upload.chunks, max_bytes=max_bytes
    )
    try:
        # The ticket is locked only now that the bytes are in (a slow client must not
        # hold up every writer of the ticket) and checked again: deleted or closed
        # meanwhile, the upload is refused; otherwise a delete or close waits for this
        # transaction and finds the attachment in place.
        ticket = await tickets.get_ticket(uow.session, actor, ticket_id, lock=True)
        tickets.check_open(ticket)
        return await _record(uow, actor, ticket, stored, comment, is_public)
    except BaseException:
        await discard(storage, [stored.key])
        raise


async def record_stored(
    uow: UnitOfWork,
    actor: Principal,
    ticket_id: uuid.UUID,
    files: Sequence[StoredFile],
    *,
    comment_id: uuid.UUID | None,
    may_write_internal: bool,
) -> None:
    """Make files stored before their ticket or comment was written (`store_file`) its
    attachments, with the checks and rows of an upload. Whoever stored them discards
    them if this fails."""
    _uploader_organization(actor)
    ticket = await tickets.get_ticket(uow.session, actor, ticket_id, lock=True)
    tickets.check_open(ticket)
    comment = await _target_comment(uow.session, actor, ticket, comment_id)
    is_public = _visibility(actor, None, comment, may_write_internal)
    for stored in files:
        await _record(uow, actor, ticket, stored, comment, is_public)


def _uploader_organization(actor: Principal) -> uuid.UUID:
    if actor.user_id is None or actor.organization_id is None:
        raise Forbidden("Attachments are uploaded by users; API keys cannot upload them.")
    return actor.organization_id


async def _record(
    uow: UnitOfWork,
    actor: Principal,
    ticket: Record,
    stored: StoredFile,
    comment: TicketComment | None,
    is_public: bool,
) -> TicketAttachment:
    """The attachment's row and journal, on a ticket the caller has locked."""
    assert actor.user_id is not None
    attachment = TicketAttachment(
        ticket_id=ticket["id"],
        comment_id=comment.id if comment is not None else None,
        uploaded_by_id=actor.user_id,
        file_name=stored.file_name,
        file_size=stored.size,
        content_type=stored.content_type,
        storage_key=stored.key,
        sha256=stored.sha256,
        is_public=is_public,
    )
    uow.session.add(attachment)
    if comment is not None:
        comment.has_attachments = True
    await uow.session.flush()
    # The one history/event mechanism: one row, one `ticket.attachment_added` event
    # (and whatever else `record_changes` feeds), in this transaction.
    journal = Journal(uow)
    tickets.record_changes(
        journal,
        ticket,
        actor.user_id,
        {"attachment": (None, attachment.id)},
        event=ATTACHMENT_ADDED,
    )
    await journal.write()
    return attachment


async def _target_comment(
    session: AsyncSession, actor: Principal, ticket: Record, comment_id: uuid.UUID | None
) -> TicketComment | None:
    """A comment of this very ticket; for a customer, a public one — an internal note
    is as unknown to them as a missing comment."""
    if comment_id is None:
        return None
    comment = await AttachmentRepository(session).comment_of_ticket(actor, ticket["id"], comment_id)
    if comment is None:
        raise ValidationFailed(
            "The comment is not one of this ticket's.",
            errors=[field_error("comment_id", "no such comment on this ticket")],
        )
    return comment


def _visibility(
    actor: Principal,
    requested: bool | None,
    comment: TicketComment | None,
    may_write_internal: bool,
) -> bool:
    """Public unless asked otherwise or attached to an internal note (whose files are
    internal too: a public file would show the customer part of the note)."""
    if actor.is_customer:
        if requested is False:
            raise Forbidden("Customers' attachments are always public.")
        return True
    on_internal_note = comment is not None and comment.comment_type is CommentType.INTERNAL
    if on_internal_note and requested is True:
        raise ValidationFailed(
            "An internal note's attachments are internal.",
            errors=[field_error("is_public", "must be false for an internal comment")],
        )
    is_public = not on_internal_note if requested is None else requested
    if not is_public and not may_write_internal:
        raise Forbidden("Only staff upload internal attachments.")
    return is_public


# --- reading ---------------------------------------------------------------------------


async def list_attachments(
    session: AsyncSession, actor: Principal, ticket_id: uuid.UUID, page: PageParams
) -> PageResult[TicketAttachment]:
    await tickets.get_ticket(session, actor, ticket_id)
    return await AttachmentRepository(session).of_ticket(actor, ticket_id, page)


async def get_attachment(
    session: AsyncSession, actor: Principal, attachment_id: uuid.UUID
) -> TicketAttachment:
    """Readable through its ticket: another organization's, a deleted ticket's, another
    customer's or (for customers) an internal file is one and the same "not found"."""
    missing = NotFound("No such attachment.")
    attachment = await AttachmentRepository(session).by_id(attachment_id)
    if attachment is None:
        raise missing
    try:
        await tickets.get_ticket(session, actor, attachment.ticket_id)
    except NotFound:
        raise missing from None
    if actor.is_customer and not attachment.is_public:
        raise missing
    return attachment


class StoredObjectMissing(RuntimeError):
    """A row whose bytes are gone: an operational fault (a 500 that alerts), not a
    client error."""


@dataclass(frozen=True, slots=True)
class Download:
    attachment: TicketAttachment
    chunks: AsyncIterator[bytes]


async def open_download(
    session: AsyncSession, storage: Storage, actor: Principal, attachment_id: uuid.UUID
) -> Download:
    """Checks, counts the download (atomically, in the database: concurrent downloads
    each add one) and opens the stream. The object's presence is checked before the
    response starts, which a failure mid-stream could no longer turn into an error."""
    attachment = await get_attachment(session, actor, attachment_id)
    if not await storage.exists(attachment.storage_key):
        log.error("attachment_object_missing", attachment_id=str(attachment.id))
        raise StoredObjectMissing(f"no stored object for attachment {attachment.id}")
    await AttachmentRepository(session).count_download(attachment.id)
    return Download(attachment, storage.open(attachment.storage_key))
