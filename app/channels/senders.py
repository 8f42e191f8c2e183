"""How a staff reply leaves: as mail (SMTP, or an `.eml` file in `MAIL_DIR` when no SMTP
server is configured) or as a signed POST to a chat channel's `reply_url`.

Nothing here touches the database: the send job (`app.channels.outgoing`) calls it
between the transaction that claims a reply and the one that records the outcome, so no
transaction waits on a mail server or a chat platform. Each send answers an `Outcome`
that says whether a retry could help.
"""

from __future__ import annotations

import html
import json
import os
import re
import ssl
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import aiosmtplib
import anyio.to_thread
import httpx
from standardwebhooks import Webhook

from app.config import Settings, SmtpServer
from app.kit.storage import Storage
from app.webhooks.connections import client_for
from app.webhooks.targets import TargetRefused, pinned, url_problem

SMTP_TIMEOUT_SECONDS = 30.0
CHAT_TIMEOUT_SECONDS = 10.0
MAX_ERROR = 1000
USER_AGENT = "helpdesk-replies/1.0"
_BLANK_LINES = re.compile(r"\n[ \t]*\n")
_LINE_BREAKS = re.compile(r"[\r\n]+")


@dataclass(frozen=True, slots=True)
class Outcome:
    sent: bool
    error: str | None = None
    # A retry cannot help (a mailbox that does not exist, a refused target): give up.
    permanent: bool = False


SENT = Outcome(sent=True)


def failed(error: str, *, permanent: bool = False) -> Outcome:
    return Outcome(sent=False, error=error[:MAX_ERROR], permanent=permanent)


# --- mail -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredFile:
    file_name: str
    content_type: str
    storage_key: str


@dataclass(frozen=True, slots=True)
class Mail:
    """A reply as mail, every header decided (the send job reads them in its claim)."""

    comment_id: uuid.UUID
    sender_name: str
    sender_address: str
    recipient_name: str
    recipient_address: str
    subject: str
    message_id: str  # without angle brackets, as `ticket_message_ids` keeps ids
    in_reply_to: str | None
    references: list[str]
    text: str
    files: list[StoredFile] = field(default_factory=list)


def reply_subject(subject: str, ticket_number: str) -> str:
    """`Re: <subject> [TK-000042]`: the number threads the customer's answer back even
    when their mail program drops In-Reply-To."""
    subject = _LINE_BREAKS.sub(" ", subject).strip()
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    if f"[{ticket_number}]" not in subject:
        subject = f"{subject} [{ticket_number}]"
    return subject


def html_body(text: str) -> str:
    """The text escaped, in paragraphs (blank lines) and line breaks: nothing the agent
    typed can become markup."""
    paragraphs = [part for part in _BLANK_LINES.split(text.strip()) if part.strip()]
    rendered = "\n".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in part.splitlines()) + "</p>"
        for part in paragraphs
    )
    head = '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n'
    return f"{head}{rendered}\n</body></html>\n"


def _address(name: str, address: str) -> Address:
    local, _, domain = address.rpartition("@")
    return Address(display_name=_LINE_BREAKS.sub(" ", name).strip(), username=local, domain=domain)


async def build_message(mail: Mail, storage: Storage, now: datetime) -> EmailMessage:
    """The reply as an RFC 5322 message (`policy.default`): text with an HTML
    alternative, then the files."""
    message = EmailMessage()
    message["From"] = _address(mail.sender_name, mail.sender_address)
    message["To"] = _address(mail.recipient_name, mail.recipient_address)
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(now.astimezone(UTC))
    message["Message-ID"] = f"<{mail.message_id}>"
    if mail.in_reply_to is not None:
        message["In-Reply-To"] = f"<{mail.in_reply_to}>"
    if mail.references:
        message["References"] = " ".join(f"<{ref}>" for ref in mail.references)
    message.set_content(mail.text)
    message.add_alternative(html_body(mail.text), subtype="html")
    for stored in mail.files:
        data = b"".join([chunk async for chunk in storage.open(stored.storage_key)])
        maintype, _, subtype = stored.content_type.partition("/")
        message.add_attachment(
            data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=stored.file_name,
        )
    return message


async def send_mail(
    settings: Settings, message: EmailMessage, comment_id: uuid.UUID, *, tls: ssl.SSLContext
) -> Outcome:
    """Through `SMTP_URL`'s server (TLS checked against `tls`'s authorities), or without
    one into `MAIL_DIR`."""
    server = settings.smtp
    if server is None:
        await write_eml(settings.mail_dir, message, comment_id)
        return SENT
    return await _smtp(server, message, tls)


async def write_eml(directory: Path, message: EmailMessage, comment_id: uuid.UUID) -> Path:
    """`<MAIL_DIR>/<comment id>.eml`, written whole or not at all (a retry rewrites the
    same file)."""
    target = directory / f"{comment_id}.eml"
    temporary = directory / f".{comment_id}.eml.tmp"
    data = message.as_bytes()

    def write() -> None:
        directory.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(data)
        os.replace(temporary, target)

    await anyio.to_thread.run_sync(write)
    return target


async def _smtp(server: SmtpServer, message: EmailMessage, tls: ssl.SSLContext) -> Outcome:
    """One SMTP transaction. A recipient refused with 5xx, or a message refused with
    5xx after DATA, will be refused again: permanent. Everything else — 4xx, a refused
    sender or login (a configuration an admin can fix), a connection that fails or
    times out — is retried."""
    try:
        await aiosmtplib.send(
            message,
            hostname=server.host,
            port=server.port,
            username=server.username,
            password=server.password,
            use_tls=server.implicit_tls,
            start_tls=server.starttls,
            tls_context=tls,
            timeout=SMTP_TIMEOUT_SECONDS,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refusals = exc.recipients
        permanent = bool(refusals) and all(500 <= r.code < 600 for r in refusals)
        detail = "; ".join(f"{r.code} {r.message}" for r in refusals)
        return failed(f"SMTP recipient refused: {detail}", permanent=permanent)
    except aiosmtplib.SMTPDataError as exc:
        return failed(f"SMTP message refused: {exc.code} {exc.message}", permanent=exc.code >= 500)
    except aiosmtplib.SMTPResponseException as exc:
        return failed(f"SMTP {exc.code} {exc.message}")
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        return failed(f"SMTP server {server.host}:{server.port}: {type(exc).__name__}: {exc}")
    return SENT


# --- chat -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChatReply:
    comment_id: uuid.UUID
    reply_url: str
    secret: str
    conversation_id: str
    ticket_number: str
    author_name: str
    text: str

    def body(self) -> bytes:
        return json.dumps(
            {
                "conversation_id": self.conversation_id,
                "text": self.text,
                "ticket_number": self.ticket_number,
                "comment_id": str(self.comment_id),
                "author": {"name": self.author_name},
            },
            ensure_ascii=False,
        ).encode()


def chat_target_problem(reply_url: str, *, allow_private: bool) -> str | None:
    """Why `reply_url` can never be posted to (checked without the network), or None."""
    problem = url_problem(reply_url, https_only=False, allow_private=allow_private)
    return f"the channel's reply_url {problem}" if problem else None


async def send_chat(reply: ChatReply, *, allow_private: bool, tls: ssl.SSLContext) -> Outcome:
    """POST the reply, signed the Standard Webhooks way with the channel's secret over the
    exact bytes sent; `webhook-id` is the comment's id on every retry, so the platform
    can drop a copy it has seen. 2xx: sent; anything else is retried."""
    try:
        target = await pinned(reply.reply_url, allow_private=allow_private)
    except TargetRefused as refused:
        # The name may resolve elsewhere later (or resolve at all): retried.
        return failed(f"refused: {refused}")
    body = reply.body()
    # The wall clock: receivers reject a timestamp more than a few minutes off theirs.
    now = datetime.now(UTC)
    msg_id = str(reply.comment_id)
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(reply.secret).sign(msg_id, now, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "host": target.host_header,
    }
    try:
        async with client_for(target, tls) as client:
            response = await client.post(
                target.url,
                content=body,
                headers=headers,
                extensions=target.extensions,
                timeout=CHAT_TIMEOUT_SECONDS,
            )
    except httpx.TimeoutException:
        return failed(f"the chat platform did not answer within {CHAT_TIMEOUT_SECONDS:g} s")
    except (httpx.HTTPError, OSError) as exc:  # OSError: a TLS failure past the handshake
        return failed(f"{type(exc).__name__}: {exc}")
    if 200 <= response.status_code < 300:
        return SENT
    excerpt = response.text[:200].replace("\x00", "")
    return failed(f"the chat platform answered HTTP {response.status_code}: {excerpt}")
