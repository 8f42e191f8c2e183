"""What `app.channels.parsing` makes of real-world-shaped messages: the ids, bodies,
charsets, attachments, quotes and the noise rules, as pure functions of the bytes."""

from __future__ import annotations

import base64
import json
import tracemalloc
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest

from app.channels import parsing
from app.channels.parsing import BadPayload, Unprocessable
from app.models.channel import ChannelType

EMAIL = ChannelType.EMAIL

QUOTED_PRINTABLE = (
    b"From: =?utf-8?q?Ren=C3=A9e_M=C3=BCller?= <renee@example.org>\r\n"
    b"Message-ID: <qp-1@mail.example.org>\r\n"
    b"Subject: =?iso-8859-1?q?Pr=FCfung?= [TK-000042]\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
    b"--alt\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Gr=C3=BC=C3=9Fe, the scanner jams.=\r\nStill.\r\n"
    b"--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>ignored</p>\r\n"
    b"--alt--\r\n"
)

OUTLOOK_REPLY = """The printer is still on fire.

Jane

From: Support <support@example.com>
Sent: Tuesday, March 4, 2025 9:02 AM
To: Jane Doe <jane@example.org>
Subject: RE: [TK-000042] Printer

Please restart the printer.
"""


def test_a_raw_message_is_identified_by_its_message_id() -> None:
    identity = parsing.identify(EMAIL, parsing.RFC822, QUOTED_PRINTABLE)
    assert identity.external_id == identity.message_id == "qp-1@mail.example.org"


def test_quoted_printable_multipart_alternative_and_encoded_headers() -> None:
    message = parsing.parse(EMAIL, parsing.RFC822, QUOTED_PRINTABLE)
    assert message.sender_email == "renee@example.org"
    assert message.sender_name == "Renée Müller"
    assert message.subject == "Prüfung [TK-000042]"
    assert message.subject_number == "TK-000042"
    assert message.text == "Grüße, the scanner jams.Still."
    assert message.attachments == []


def test_an_envelopes_headers_are_decoded_as_a_raw_messages_are() -> None:
    """Providers pass header values through as they arrived: encoded words and folds."""
    envelope = {
        "message_id": "<enc-1@mail.example.org>",
        "from": "=?utf-8?q?Ren=C3=A9e_M=C3=BCller?= <renee@example.org>",
        "subject": "=?iso-8859-1?q?Pr=FCfung?=\r\n [TK-000042]",
        "text": "Hallo",
        "headers": {"Auto-Submitted": "=?us-ascii?q?auto-replied?="},
    }
    message = parsing.parse(EMAIL, parsing.JSON_MEDIA, json.dumps(envelope).encode())
    assert message.sender_email == "renee@example.org"
    assert message.sender_name == "Renée Müller"
    assert message.subject == "Prüfung [TK-000042]"
    assert message.subject_number == "TK-000042"
    assert parsing.noise(message) == "auto_submitted"
    # Plain values read as before; what cannot be decoded is kept as sent.
    plain = dict(envelope, subject="=?utf-8?b?!!!?=", **{"from": "jane@example.org (Jane)"})
    message = parsing.parse(EMAIL, parsing.JSON_MEDIA, json.dumps(plain).encode())
    assert (message.sender_email, message.sender_name) == ("jane@example.org", "Jane")
    assert message.subject == "=?utf-8?b?!!!?="


def test_inline_images_calendar_invites_and_forwarded_mail_are_attachments() -> None:
    raw = (
        b"From: jane@example.org\r\nMessage-ID: <rel@x>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="m"\r\n\r\n'
        b'--m\r\nContent-Type: multipart/related; boundary="r"\r\n\r\n'
        b'--r\r\nContent-Type: text/html\r\n\r\n<p>See <img src="cid:logo"></p>\r\n'
        b"--r\r\nContent-Type: image/png\r\nContent-ID: <logo>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--r--\r\n"
        b"--m\r\nContent-Type: text/calendar; method=REQUEST\r\n\r\nBEGIN:VCALENDAR\r\n"
        b"--m\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: a@example.org\r\nSubject: fw\r\n\r\nold\r\n"
        b"--m--\r\n"
    )
    message = parsing.parse(EMAIL, parsing.RFC822, raw)
    assert message.text == "See"
    names = [a.file_name for a in message.attachments]
    assert names == ["attachment.png", "attachment.ics", "attachment.eml"]
    assert message.attachments[0].data == b"\x89PNG\r\n\x1a\n"
    assert b"Subject: fw" in message.attachments[2].data


def test_outlook_and_gmail_quotes_and_signatures_are_trimmed() -> None:
    assert parsing.trimmed_reply(OUTLOOK_REPLY) == "The printer is still on fire.\n\nJane"
    gmail = (
        "Thanks!\n\nBest regards,\nJane\n\n"
        "On Tue, Mar 4, 2025 at 9:02 AM Support <support@example.com> wrote:\n> old text\n"
    )
    assert parsing.trimmed_reply(gmail) == "Thanks!"
    only_quote = "> everything is quoted\n> here"
    assert parsing.trimmed_reply(only_quote) == only_quote


def test_html_is_sanitized_before_it_becomes_text() -> None:
    markup = (
        '<p onclick="x()">A&nbsp;&lt;b&gt;</p><script>steal()</script>'
        "<ul><li>one</li><li>two</li></ul>"
    )
    assert parsing.html_to_text(markup) == "A\xa0<b>\none\ntwo"
    assert "script" not in parsing.sanitize_html(markup)
    assert "onclick" not in parsing.sanitize_html(markup)


def test_a_missing_message_id_is_derived_from_sender_date_and_body() -> None:
    raw = b"From: jane@example.org\r\nDate: Tue, 4 Mar 2025 09:00:00 +0000\r\n\r\nHello\r\n"
    first = parsing.identify(EMAIL, parsing.RFC822, raw)
    relayed = parsing.identify(EMAIL, parsing.RFC822, b"Received: by relay\r\n" + raw)
    other = parsing.identify(EMAIL, parsing.RFC822, raw.replace(b"Hello", b"Hullo"))
    titled = parsing.identify(EMAIL, parsing.RFC822, b"Subject: Invoice\r\n" + raw)
    assert first.message_id is None
    assert first.external_id == relayed.external_id != other.external_id
    assert titled.external_id not in (first.external_id, other.external_id)
    envelope = {"from": "jane@example.org", "text": "See attached"}

    def derived(**fields: object) -> str:
        body = json.dumps({**envelope, **fields}).encode()
        return parsing.identify(EMAIL, parsing.JSON_MEDIA, body).external_id

    assert derived().startswith("sha256-") and derived() == derived()
    # Two mails of one sender with the same text are told apart by subject and files.
    files = [{"filename": "a.pdf", "content_base64": "JVBERg=="}]
    variants = {derived(), derived(subject="Invoice 1"), derived(attachments=files)}
    other_file = [{"filename": "a.pdf", "content_base64": "JVBERi0="}]
    assert len(variants | {derived(attachments=other_file)}) == 4


def test_derived_ids_stay_what_they_were() -> None:
    # A sender redelivering a stored mail after an upgrade must meet the same id, or the
    # mail opens a second ticket: these values are the ids stored mail already has.
    crlf = (
        b"From: Jane Doe <jane@example.org>\r\nDate: Tue, 4 Mar 2025 09:00:00 +0000\r\n"
        b"Subject: =?utf-8?q?Drucker_f=C3=A4llt_aus?=\r\n\r\nThe tray jams.\r\n\r\nJane\r\n"
    )
    envelope = {
        "from": "Jane Doe <jane@example.org>",
        "subject": "Printer on fire",
        "text": "The tray jams.",
        "headers": {"Date": "Tue, 4 Mar 2025 09:00:00 +0000"},
        "attachments": [
            {"filename": "a.txt", "content_type": "text/plain", "content_base64": "aGk="}
        ],
    }
    head = b"From: jane@example.org\r\nDate: Tue, 4 Mar 2025 09:00:00 +0000\r\n"
    raw = [
        crlf,
        crlf.replace(b"\r\n", b"\n"),
        crlf.replace(b"\r\n", b"\r"),  # bare CR line ends
        head + b"Subject: Only headers\r\n",  # nothing after the headers
        head.replace(b"\r\n", b"\n") + b"\r\nBody\r\n\r\nMore\n",  # mixed line ends
    ]
    ids = [parsing.identify(EMAIL, parsing.RFC822, message).external_id for message in raw]
    ids.append(
        parsing.identify(EMAIL, parsing.JSON_MEDIA, json.dumps(envelope).encode()).external_id
    )
    assert ids == [
        "sha256-d78cf8979a02bbbb950759634a024390b3fc31f824c6bc6efdf06db87233348b@derived",
        "sha256-b976a56c8d43399ead73dd06648f396533a1598646c90de297b4d126bad2ade5@derived",
        "sha256-49f3a3590063be867d727637765ce48d5ca908edc5c9c2617431bc58c9552f7f@derived",
        "sha256-a16d6dde5289f45561f25aa372aa2d79e68ff0c75d33bab19eb6990ecf78920c@derived",
        "sha256-df6bcedff960141bd049172e94e03004a13beee7c3391483b6ae1c40ff57f2ba@derived",
        "sha256-78f3d8dbbcf142b797b11c7384d95fabc0efeaece4ce16d08ad0ea5c78d931d8@derived",
    ]


def large_mail(size: int, message_id: str | None = "<large-1@mail.example.org>") -> bytes:
    mail = EmailMessage()
    mail["From"] = "jane@example.org"
    mail["Subject"] = "The full scan"
    if message_id is not None:
        mail["Message-ID"] = message_id
    mail.set_content("See the scan.")
    mail.add_attachment(b"\x89PNG" * (size // 4), maintype="image", subtype="png")
    return mail.as_bytes()


def allocated_at_peak(work: Callable[[], Any]) -> int:
    """Bytes Python allocated at the peak of `work`, beyond what was held before it."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        work()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("message_id", ["<large-1@mail.example.org>", None])
def test_identifying_a_large_mail_reads_its_headers_not_a_copy_of_it(
    message_id: str | None,
) -> None:
    raw = large_mail(4 * 1024 * 1024, message_id)
    # Without a Message-ID the body is hashed, still without being copied.
    assert allocated_at_peak(lambda: parsing.identify(EMAIL, parsing.RFC822, raw)) < 256 * 1024


def test_parsing_a_large_mail_holds_a_few_times_its_size_at_most() -> None:
    raw = large_mail(6 * 1024 * 1024)
    parsed: list[parsing.Message] = []
    peak = allocated_at_peak(lambda: parsed.append(parsing.parse(EMAIL, parsing.RFC822, raw)))
    [scan] = parsed[0].attachments
    assert scan.data == b"\x89PNG" * (6 * 1024 * 1024 // 4)
    # The raw text, the parser's pieces of it and the decoded file: the whole message
    # parsed at once (`parsebytes`) held more than seven times its size.
    assert peak < 3 * len(raw), f"{peak / len(raw):.1f} times the message"


def test_base64_with_bad_padding_or_stray_bytes_is_still_decoded() -> None:
    data = b"%PDF-1.4 scan"
    encoded = base64.b64encode(data).decode()
    for body in (encoded.rstrip("="), encoded[:8] + "!*" + encoded[8:]):
        raw = (
            b"From: jane@example.org\r\nMessage-ID: <pad-1@mail.example.org>\r\n"
            b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
            b"--b\r\nContent-Type: text/plain\r\n\r\nSee the scan.\r\n"
            b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
            b'Content-Disposition: attachment; filename="scan.pdf"\r\n\r\n'
            + body.encode()
            + b"\r\n--b--\r\n"
        )
        [scan] = parsing.parse(EMAIL, parsing.RFC822, raw).attachments
        assert (scan.file_name, scan.data) == ("scan.pdf", data)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<abc@host>", "abc@host"),
        ("  <abc@host> (comment)", "abc@host"),
        ("abc@host", "abc@host"),
        ("", None),
        ("two words", None),
        (42, None),
    ],
)
def test_message_ids_are_normalised(value: object, expected: str | None) -> None:
    assert parsing.normalize_message_id(value) == expected


def test_references_are_read_from_headers_and_lists() -> None:
    assert parsing.message_ids("<a@x> <b@y>\r\n <c@z>") == ["a@x", "b@y", "c@z"]
    assert parsing.message_ids(["<a@x>", "b@y"]) == ["a@x", "b@y"]
    assert parsing.message_ids(None) == []


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"[]", b'{"subject": "x"}', b'{"message_id": 5}'],
)
def test_an_envelope_nothing_identifies_cannot_be_stored(body: bytes) -> None:
    with pytest.raises(BadPayload):
        parsing.identify(EMAIL, parsing.JSON_MEDIA, body)


def test_a_stored_envelope_with_wrong_fields_is_unprocessable() -> None:
    with pytest.raises(Unprocessable, match="from"):
        parsing.parse(EMAIL, parsing.JSON_MEDIA, b'{"message_id": "<a@b>", "text": "x"}')
    with pytest.raises(Unprocessable, match="author"):
        parsing.parse(
            ChannelType.CHAT, parsing.JSON_MEDIA, b'{"event_id": "e", "conversation_id": "c"}'
        )


@pytest.mark.parametrize(
    ("headers", "sender", "expected"),
    [
        ({}, "jane@example.org", None),
        ({"auto-submitted": "no"}, "jane@example.org", None),
        ({"auto-submitted": "auto-replied"}, "jane@example.org", "auto_submitted"),
        ({"x-autorespond": "1"}, "jane@example.org", "auto_reply"),
        ({"precedence": "Bulk"}, "jane@example.org", "bulk_mail"),
        ({"precedence": "first-class"}, "jane@example.org", None),
        ({}, "mailer-daemon@mx.example.org", "bounce"),
        ({}, "postmaster@example.org", "bounce"),
    ],
)
def test_noise(headers: dict[str, str], sender: str, expected: str | None) -> None:
    message = parsing.Message(kind=EMAIL, sender_email=sender, headers=headers)
    assert parsing.noise(message) == expected
