"""From a stored payload to one `Message`, whatever shape it came in: a raw RFC 5322
message (`message/rfc822`), the JSON envelope of an email provider's inbound hook, or a
chat event. Pure functions of the bytes, so a retry parses exactly what was received.

Two steps, because the inbox row must be stored before anything is processed:
`identify` finds the external id (and little else) and refuses, with a 4xx, only what
cannot be stored at all; `parse` reads the whole message and reports what it cannot
make sense of as `Unprocessable`, which marks the stored row `failed`.

Text is what tickets hold: an HTML-only message is sanitized (nh3) and reduced to text;
a declared charset the codecs do not know, or bytes that do not fit it, are decoded with
replacement characters and noted. Quoted earlier mail and signatures are trimmed from
replies with a maintained reply parser (`mail-parser-reply`); the inbox row keeps the
original.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import html
import json
import mimetypes
import re
from dataclasses import dataclass, field
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.message import Message as MimePart
from email.parser import BytesFeedParser, BytesHeaderParser
from email.utils import getaddresses, parseaddr
from typing import Any

import nh3
from mailparser_reply import EmailReplyParser
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.models.channel import ChannelType

RFC822 = "message/rfc822"
JSON_MEDIA = "application/json"
MAX_ID_LENGTH = 998  # a header line's limit (RFC 5322), and the column's
MAX_TEXT = 100_000  # what a ticket's description and a comment hold
MAX_DECODED_HEADER = 4096  # longer envelope header values are kept as sent
FEED_CHUNK = 64 * 1024  # bytes of a raw message handed to the MIME parser at a time
# The ids `derived_id` gives mail that names none end so; no mail program knows them.
DERIVED_ID_SUFFIX = "@derived"
# The reply parser is a set of regular expressions: past this much text a reply is
# kept whole rather than spending the request on finding its quote.
MAX_REPLY_PARSE = 100_000
REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "sv", "da", "cs"]
NOISE_HEADERS = ("auto-submitted", "x-autoreply", "x-autorespond", "precedence")
BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
BOUNCE_SENDERS = frozenset({"mailer-daemon", "postmaster"})
_SUBJECT_NUMBER = re.compile(r"\[(TK-[0-9]{6,})\]", re.IGNORECASE)
_BLOCK_END = re.compile(
    r"<\s*(br|/p|/div|/li|/tr|/h[1-6]|/blockquote|/pre|/table)\b[^>]*>", re.IGNORECASE
)
_BLANK_LINES = re.compile(r"\n[ \t]*\n([ \t]*\n)+")
# An empty line, whatever the line endings (the parser's): where a message's headers end.
_HEADERS_END = re.compile(rb"\r\n\r\n|\n\r?\n|\r\r")
# Controls other than tab and line breaks: never part of a ticket's text.
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class BadPayload(ValueError):
    """The payload cannot be stored: nothing identifies it (answered with a 4xx)."""


class Unprocessable(ValueError):
    """The payload is stored but cannot become a ticket or comment (row `failed`)."""


@dataclass(frozen=True, slots=True)
class Identity:
    external_id: str
    message_id: str | None = None
    conversation_id: str | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    file_name: str | None
    data: bytes


@dataclass(slots=True)
class Message:
    """One inbound message, email or chat, as processing needs it."""

    kind: ChannelType
    sender_email: str
    sender_name: str = ""
    subject: str = ""
    text: str = ""  # the whole body as text
    message_id: str | None = None
    in_reply_to: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    conversation_id: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-cased names
    is_report: bool = False  # multipart/report: a delivery status notification
    attachments: list[Attachment] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was repaired or left out

    @property
    def reply_text(self) -> str:
        """The body without the quoted mail and signature of an email, for a reply's
        comment; worked out when a reply asks (a new ticket keeps the whole body)."""
        return trimmed_reply(self.text) if self.kind is ChannelType.EMAIL else self.text

    @property
    def subject_number(self) -> str | None:
        """The `TK-000042` a subject carries in brackets, if any."""
        match = _SUBJECT_NUMBER.search(self.subject)
        return match.group(1).upper() if match else None


# --- identify: what the inbox row is keyed by -------------------------------------------


def identify(kind: ChannelType, content_type: str, raw: bytes) -> Identity:
    if not raw or raw.isspace():  # (`strip` would copy a large message)
        raise BadPayload("The body is empty.")
    if kind is ChannelType.CHAT:
        event = _json_object(raw)
        event_id = event.get("event_id")
        if not isinstance(event_id, str) or not event_id.strip():
            raise BadPayload("A chat event needs an `event_id` (a non-empty string).")
        conversation = event.get("conversation_id")
        return Identity(
            external_id=_clip(event_id.strip()),
            conversation_id=_clip(conversation.strip(), 255)
            if isinstance(conversation, str) and conversation.strip()
            else None,
        )
    if content_type == RFC822:
        return _identify_raw(raw)
    envelope = _json_object(raw)
    message_id = normalize_message_id(envelope.get("message_id"))
    if message_id is not None:
        return Identity(external_id=message_id, message_id=message_id)
    sender = envelope.get("from")
    if not isinstance(sender, str) or not sender.strip():
        raise BadPayload("An email envelope needs a `message_id` or at least `from`.")
    headers = envelope.get("headers")
    date = (headers.get("Date") or headers.get("date")) if isinstance(headers, dict) else None
    files = envelope.get("attachments")
    content = [
        envelope.get("subject"),
        envelope.get("text"),
        envelope.get("html"),
        [_file_digest(item) for item in files] if isinstance(files, list) else None,
    ]
    body = json.dumps(content, sort_keys=True)
    return Identity(external_id=derived_id(sender, str(date or ""), body.encode()))


def _file_digest(item: object) -> object:
    if not isinstance(item, dict):
        return None
    data = item.get("content_base64")
    digest = hashlib.sha256(data.encode()).hexdigest() if isinstance(data, str) else None
    return [item.get("filename"), digest]


def _identify_raw(raw: bytes) -> Identity:
    try:
        # The header block alone: the parser would otherwise copy the whole message
        # several times over (a str of it, and a StringIO of four bytes a character).
        headers = BytesHeaderParser(policy=policy.default).parsebytes(raw[: _head_end(raw)])
        message_id = normalize_message_id(_header_text(headers, "Message-ID"))
        sender = _header_text(headers, "From") or ""
        date = _header_text(headers, "Date") or ""
        subject = _header_text(headers, "Subject") or ""
    except Exception as exc:  # the parser's many ways of refusing garbage
        raise BadPayload("The message's headers cannot be read.") from exc
    if message_id is not None:
        return Identity(external_id=message_id, message_id=message_id)
    return Identity(external_id=derived_id(sender, date, subject.encode(), b"\0", _raw_body(raw)))


def derived_id(sender: str, date: str, *content: bytes | memoryview) -> str:
    """The id of a message that names none, from its sender, date and content (subject,
    bodies, files; the pieces hashed as one): a redelivery of the same message gets the
    same one, another message of the same sender another one."""
    digest = hashlib.sha256()
    for part in (sender.strip().lower().encode(), date.strip().encode()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    digest.update(sum(len(piece) for piece in content).to_bytes(8, "big"))
    for piece in content:
        digest.update(piece)
    return f"sha256-{digest.hexdigest()}{DERIVED_ID_SUFFIX}"


def _head_end(raw: bytes) -> int:
    """Where the header block ends (its blank line included); the whole message when
    nothing follows the headers."""
    blank = _HEADERS_END.search(raw)
    return blank.end() if blank else len(raw)


def _raw_body(raw: bytes) -> memoryview:
    """What follows the first blank line, as derived ids have always read it (CRLF
    endings first), and without a copy of it."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        at = raw.find(separator)
        if at >= 0:
            return memoryview(raw)[at + len(separator) :]
    return memoryview(b"")


def normalize_message_id(value: Any) -> str | None:
    """`<abc@host>` → `abc@host`; None for anything that is no id."""
    if not isinstance(value, str):
        return None
    match = re.search(r"<([^<>\s]+)>", value)
    token = match.group(1) if match else value.strip()
    if not token or any(ch.isspace() for ch in token) or "<" in token or ">" in token:
        return None
    return token[:MAX_ID_LENGTH]


def message_ids(value: Any) -> list[str]:
    """Every id in an In-Reply-To or References value (a header or a list)."""
    if isinstance(value, list):
        return [i for item in value for i in message_ids(item)]
    if not isinstance(value, str):
        return []
    found = re.findall(r"<([^<>\s]+)>", value)
    if not found:
        found = value.split()
    return [token[:MAX_ID_LENGTH] for token in found if token]


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadPayload("The body is not well-formed JSON.") from exc
    if not isinstance(value, dict):
        raise BadPayload("The body must be a JSON object.")
    return value


# --- parse: the whole message -----------------------------------------------------------


def parse(kind: ChannelType, content_type: str, raw: bytes) -> Message:
    if kind is ChannelType.CHAT:
        return _parse_chat(raw)
    if content_type == RFC822:
        return _parse_raw(raw)
    return _parse_envelope(raw)


class _Author(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email: str = Field(min_length=3, max_length=320)
    name: str = Field(default="", max_length=300)


class _ChatEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_id: str
    conversation_id: str = Field(min_length=1, max_length=255)
    author: _Author
    text: str
    sent_at: str | None = None


def _parse_chat(raw: bytes) -> Message:
    event = _validated(_ChatEvent, raw)
    text = _clean_text(event.text)
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return Message(
        kind=ChannelType.CHAT,
        sender_email=_address(event.author.email),
        sender_name=_one_line(event.author.name),
        subject=_shorten(first_line, 80) or "Chat conversation",
        text=text,
        conversation_id=event.conversation_id.strip(),
    )


class _EnvelopeAttachment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    filename: str | None = None
    content_type: str | None = None
    content_base64: str


class _Envelope(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    message_id: str | None = None
    sender: str = Field(alias="from", min_length=3)
    to: str | list[str] | None = None
    subject: str = ""
    text: str | None = None
    html: str | None = None
    in_reply_to: str | None = None
    references: list[str] | str = Field(default_factory=list)
    headers: dict[str, str | list[str]] = Field(default_factory=dict)
    attachments: list[_EnvelopeAttachment] = Field(default_factory=list)


def _parse_envelope(raw: bytes) -> Message:
    envelope = _validated(_Envelope, raw)
    name, address = parseaddr(_unfolded(envelope.sender))
    notes: list[str] = []
    text = _body_text(envelope.text, envelope.html)
    attachments = []
    for index, item in enumerate(envelope.attachments):
        try:
            data = base64.b64decode(item.content_base64, validate=True)
        except (binascii.Error, ValueError):
            notes.append(f"attachment {index} ({item.filename or 'unnamed'}) is not base64")
            continue
        attachments.append(Attachment(item.filename, data))
    headers = {
        key.lower(): _encoded_words(value if isinstance(value, str) else ", ".join(value))
        for key, value in envelope.headers.items()
        if key.lower() in NOISE_HEADERS
    }
    return Message(
        kind=ChannelType.EMAIL,
        sender_email=_address(address),
        sender_name=_one_line(_encoded_words(name)),
        subject=_one_line(_encoded_words(envelope.subject)),
        text=text,
        message_id=normalize_message_id(envelope.message_id),
        in_reply_to=message_ids(envelope.in_reply_to),
        references=message_ids(envelope.references),
        headers=headers,
        attachments=attachments,
        notes=notes,
    )


def _parse_raw(raw: bytes) -> Message:
    try:
        mime = _mime(raw)
    except Exception as exc:
        raise Unprocessable(f"the MIME structure cannot be read ({type(exc).__name__})") from exc
    assert isinstance(mime, EmailMessage)
    sender_header = _header_text(mime, "From")
    if not sender_header:
        raise Unprocessable("the message has no From header")
    name, address = next(iter(getaddresses([sender_header])), ("", ""))
    notes: list[str] = []
    plain: str | None = None
    rich: str | None = None
    attachments: list[Attachment] = []
    for part in _leaves(mime):
        content_type = part.get_content_type()
        as_file = part.get_content_disposition() == "attachment" or part.get_filename()
        if content_type == "text/plain" and plain is None and not as_file:
            plain = _decoded(part, notes)
        elif content_type == "text/html" and rich is None and not as_file:
            rich = _decoded(part, notes)
        else:
            data = _part_bytes(part, notes)
            if data:
                attachments.append(Attachment(_file_name(part), data))
    headers = {
        header: value
        for header in NOISE_HEADERS
        if (value := _header_text(mime, header)) is not None
    }
    return Message(
        kind=ChannelType.EMAIL,
        sender_email=_address(address),
        sender_name=_one_line(name),
        subject=_one_line(_header_text(mime, "Subject") or ""),
        text=_body_text(plain, rich),
        message_id=normalize_message_id(_header_text(mime, "Message-ID")),
        in_reply_to=message_ids(_header_text(mime, "In-Reply-To")),
        references=message_ids(_header_text(mime, "References")),
        headers=headers,
        is_report=mime.get_content_type() == "multipart/report",
        attachments=attachments,
        notes=notes,
    )


def _mime(raw: bytes) -> MimePart:
    """The parsed message, fed to the parser a piece at a time: `parsebytes` first
    copies the whole message into a str and then into a StringIO (four bytes a
    character), several times the message's size at once."""
    parser = BytesFeedParser(policy=policy.default)
    for start in range(0, len(raw), FEED_CHUNK):
        parser.feed(raw[start : start + FEED_CHUNK])
    return parser.close()


def _leaves(part: MimePart) -> list[MimePart]:
    """The parts that carry content, in order; a forwarded message (message/rfc822) is
    one part — an attachment — not a source of body text."""
    if part.get_content_maintype() == "multipart" and part.is_multipart():
        payload = part.get_payload()
        assert isinstance(payload, list)
        return [leaf for sub in payload if isinstance(sub, MimePart) for leaf in _leaves(sub)]
    return [part]


def _decoded(part: MimePart, notes: list[str]) -> str:
    data = _part_bytes(part, notes)
    charset = part.get_content_charset() or "us-ascii"
    try:
        codecs.lookup(charset)
    except LookupError:
        notes.append(f"unknown charset {charset!r}: read as UTF-8 with replacements")
        return data.decode("utf-8", errors="replace")
    try:
        return data.decode(charset)
    except UnicodeDecodeError:
        pass
    try:
        # Mail declared as ASCII (or nothing) but written in UTF-8 is common.
        return data.decode("utf-8")
    except UnicodeDecodeError:
        notes.append(f"bytes that are not {charset}: replaced")
        return data.decode(charset, errors="replace")


def _part_bytes(part: MimePart, notes: list[str]) -> bytes:
    if part.get_content_type() == RFC822:
        inner = part.get_payload()
        try:
            message = inner[0] if isinstance(inner, list) else inner
            if isinstance(message, MimePart):
                return message.as_bytes(policy=policy.default)
        except Exception:  # an unserializable forwarded message: leave it out, say so
            notes.append("a forwarded message could not be kept")
            return b""
    payload = part.get_payload()
    if isinstance(payload, str) and part.get("content-transfer-encoding", "").lower() == "base64":
        # Decoded from the text as it stands; `get_payload(decode=True)` splits it into
        # lines and joins them first, about four copies of a large file at once.
        try:
            return base64.b64decode(payload)
        except (binascii.Error, ValueError):
            pass  # bad padding or stray bytes: the email package's decoder mends those
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _file_name(part: MimePart) -> str | None:
    name = part.get_filename()
    if name:
        return name
    extension = mimetypes.guess_extension(part.get_content_type()) or ""
    return f"attachment{extension}"


def _unfolded(value: str) -> str:
    return " ".join(value.splitlines())


def _encoded_words(value: str) -> str:
    """An envelope's header text as a raw message's reads: folding undone and RFC 2047
    encoded words decoded (`email.header`, linear in the length; the header registry's
    address parser is not, and the sender controls these values). A value too long to
    be a header, or not decodable, is kept as sent."""
    text = _unfolded(value)
    if "=?" not in text or len(text) > MAX_DECODED_HEADER:
        return text
    try:
        decoded = str(make_header(decode_header(text)))
    except Exception:  # the decoder's many ways of refusing a malformed word
        return text
    return decoded if decoded.strip() else text


def _header_text(message: MimePart, name: str) -> str | None:
    """A header's decoded text; None when absent. A header the parser cannot decode
    counts as absent rather than failing the message."""
    try:
        value = message.get(name)
    except Exception:
        return None
    if value is None:
        return None
    try:
        return str(value)
    except Exception:
        return None


def _validated(model: type[Any], raw: bytes) -> Any:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors()[:10]
        )
        raise Unprocessable(f"missing or invalid fields: {problems}") from exc


def _address(value: str) -> str:
    return _one_line(value).lower()


# --- text ---------------------------------------------------------------------------------


def _body_text(plain: str | None, rich: str | None) -> str:
    if plain is not None and plain.strip():
        return _clean_text(plain)
    if rich is not None:
        return _clean_text(html_to_text(rich))
    return ""


def sanitize_html(markup: str) -> str:
    """HTML without scripts, styles, event handlers or dangerous URLs."""
    return nh3.clean(markup)


def html_to_text(markup: str) -> str:
    """The text a reader sees: sanitized first, block ends as line breaks, no tags."""
    safe = _BLOCK_END.sub(lambda m: "\n" + m.group(0), sanitize_html(markup))
    text = html.unescape(nh3.clean(safe, tags=set()))
    return "\n".join(line.rstrip() for line in text.splitlines())


def _clean_text(text: str) -> str:
    text = _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()[:MAX_TEXT]


def trimmed_reply(text: str) -> str:
    """The newest part of a reply: quoted earlier mail and the signature removed. A
    message that is nothing but quote keeps its text."""
    if not text or len(text) > MAX_REPLY_PARSE:
        return text
    replies = EmailReplyParser(languages=REPLY_LANGUAGES).read(text).replies
    newest = replies[0].body.strip() if replies else ""
    return newest or text


def _one_line(value: str) -> str:
    return " ".join(_CONTROLS.sub("", value).split())


def _shorten(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def _clip(value: str, limit: int = MAX_ID_LENGTH) -> str:
    return value[:limit]


# --- noise ---------------------------------------------------------------------------------


def noise(message: Message) -> str | None:
    """Why the message must not create anything (an auto-reply, bulk mail, a bounce),
    or None. Answering such mail is how mail loops start."""
    headers = message.headers
    auto_submitted = headers.get("auto-submitted", "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return "auto_submitted"
    if "x-autoreply" in headers or "x-autorespond" in headers:
        return "auto_reply"
    if headers.get("precedence", "").strip().lower() in BULK_PRECEDENCE:
        return "bulk_mail"
    local_part = message.sender_email.partition("@")[0]
    if message.is_report or local_part in BOUNCE_SENDERS:
        return "bounce"
    return None
